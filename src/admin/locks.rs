//! Advisory locks in the manifest's database (`pg_locks`), named where the
//! key is known: a symbol's lock key and an entry's are computable from the
//! manifest's rows (and the store's lock namespace), so a lock is shown as
//! the symbol or entry it guards.

use std::collections::HashMap;

use crate::error::Result;
use crate::key::{entry_lock_key, is_entry_id, lock_key, namespaced, symbol_lock_key};
use crate::pg::pg_error;
use crate::request::Request;
use crate::store::Store;

/// What an advisory lock guards, as far as this store can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockedObject {
    /// A symbol's key: held shared by computes under `symbol` granularity,
    /// exclusively by a program excluding every compute of the symbol.
    Symbol(String),
    /// An entry's key, held exclusively by its compute (or a put,
    /// invalidation or maintenance).
    Entry { entry_id: String, feature_set: String, symbol: String },
    /// The lock that serialises schema migrations.
    SchemaMigration,
    /// Not a key of a symbol or entry this store knows (an entry being
    /// computed for the first time, another program's lock).
    Unknown,
}

/// One row of `pg_locks`: a session holding or waiting for an advisory lock.
#[derive(Clone, Debug, PartialEq)]
pub struct AdvisoryLock {
    /// The bigint key; for the two-int4 form, `(classid << 32) | objid`.
    pub key: i64,
    /// Whether the key is of the two-int4 form (never libfstore's).
    pub int4_pair: bool,
    pub pid: i32,
    /// `ExclusiveLock` or `ShareLock`.
    pub mode: String,
    pub granted: bool,
    pub application_name: String,
    /// Seconds since the session's transaction began, when it is in one.
    pub transaction_seconds: Option<f64>,
    pub object: LockedObject,
}

impl Store {
    /// Every advisory lock held or waited for in the manifest's database,
    /// named where possible; `extra_symbols` are named too, although the
    /// manifest has no entry of theirs yet. `None` without PostgreSQL.
    pub fn advisory_locks(&self, extra_symbols: &[String]) -> Result<Option<Vec<AdvisoryLock>>> {
        let Some(pool) = self.pg_pool() else { return Ok(None) };
        let names = self.lock_names(extra_symbols)?;
        let request = Request::new();
        let mut conn = pool.get(&self.default_wait(&request))?;
        let rows = conn
            .query(
                "SELECT ((l.classid::int8 << 32) | l.objid::int8), l.objsubid = 2, l.pid, l.mode, l.granted,
                        coalesce(a.application_name, ''),
                        extract(epoch FROM clock_timestamp() - a.xact_start)::float8
                 FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory'
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 ORDER BY 1, l.granted DESC, l.pid",
                &[],
            )
            .map_err(|e| pg_error(pool.target(), "cannot read pg_locks", &e))?;
        Ok(Some(
            rows.iter()
                .map(|r| {
                    let (key, int4_pair): (i64, bool) = (r.get(0), r.get(1));
                    let object = if int4_pair { None } else { names.get(&key).cloned() };
                    AdvisoryLock {
                        key,
                        int4_pair,
                        pid: r.get(2),
                        mode: r.get(3),
                        granted: r.get(4),
                        application_name: r.get(5),
                        transaction_seconds: r.get(6),
                        object: object.unwrap_or(LockedObject::Unknown),
                    }
                })
                .collect(),
        ))
    }

    /// The lock key of every symbol and entry in the manifest (and of
    /// `extra_symbols`), under this store's namespace.
    fn lock_names(&self, extra_symbols: &[String]) -> Result<HashMap<i64, LockedObject>> {
        let ns = |k: i64| namespaced(k, &self.options().lock_namespace);
        let mut names = HashMap::new();
        let schema = &self.options().postgres.schema;
        names.insert(lock_key(&format!("libfstore schema {schema}"))?, LockedObject::SchemaMigration);
        for row in self.manifest_rows()? {
            names.insert(ns(symbol_lock_key(&row.symbol)), LockedObject::Symbol(row.symbol.clone()));
            if !is_entry_id(&row.entry_id) {
                continue; // a damaged row names no lock
            }
            let entry = LockedObject::Entry { entry_id: row.entry_id.clone(), feature_set: row.feature_set, symbol: row.symbol };
            names.insert(ns(entry_lock_key(&row.entry_id)), entry);
        }
        for symbol in extra_symbols {
            names.insert(ns(lock_key(symbol)?), LockedObject::Symbol(symbol.clone()));
        }
        Ok(names)
    }
}
