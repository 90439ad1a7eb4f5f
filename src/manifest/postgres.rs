//! The PostgreSQL manifest, and its schema migrations.

use std::sync::Arc;
use std::time::Duration;

use super::{Backend, Manifest, ManifestRow};
use crate::error::{Error, Result, Status};
use crate::key::lock_key;
use crate::lock::Held;
use crate::options::check_identifier;
use crate::pg::{pg_error, retry_unavailable, PgPool, Pooled};
use crate::request::{Request, Wait};

/// Schema versions, each applied once, in order, under an advisory lock.
/// `{s}` stands for the (validated) schema name.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE {s}.entries (
             entry_id    text PRIMARY KEY,
             feature_set text NOT NULL,
             symbol      text NOT NULL,
             start_date  date NOT NULL,
             end_date    date NOT NULL,
             config      text NOT NULL,
             path        text NOT NULL,
             rows        bigint NOT NULL,
             bytes       bigint NOT NULL,
             checksum    text NOT NULL,
             created_at  timestamptz NOT NULL
         );
         CREATE INDEX entries_symbol_dates ON {s}.entries (symbol, start_date, end_date);
         CREATE INDEX entries_feature_set ON {s}.entries (feature_set);
         CREATE INDEX entries_created_at ON {s}.entries (created_at);",
    ),
    (
        // Names this manifest, so that a cache directory bound to it can tell
        // it from another schema or server reached under the same name.
        2,
        "CREATE TABLE {s}.installation (
             id         text NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now()
         );
         INSERT INTO {s}.installation (id)
             VALUES (md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text));",
    ),
];

pub(crate) const LATEST_SCHEMA_VERSION: i32 = 2;

/// Microseconds since the epoch, exactly (no float on the way).
const CREATED_AT_US: &str = "(extract(epoch FROM created_at) * 1000000)::bigint";

pub(crate) struct PostgresManifest {
    pool: Arc<PgPool>,
    schema: String,
    /// Bounds each wait for a pooled connection.
    timeout: Duration,
}

/// Which manifest a store talks to, as recorded in a cache directory's binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub database: String,
    pub schema: String,
    pub installation: String,
}

impl PostgresManifest {
    pub fn open(pool: Arc<PgPool>, schema: &str, auto_migrate: bool, timeout: Duration) -> Result<Self> {
        let manifest = Self::unchecked(pool, schema, timeout)?;
        // A current schema is only read, so that workers whose role may not
        // run DDL open it with the default options.
        let current = manifest.current_version()?;
        if auto_migrate && current < LATEST_SCHEMA_VERSION {
            manifest.migrate()?;
        } else {
            manifest.check_version(current)?;
        }
        Ok(manifest)
    }

    /// A manifest whose schema version has not been checked: for migrating
    /// it. The schema name is checked here, on every open, because it is
    /// spliced into SQL.
    pub fn unchecked(pool: Arc<PgPool>, schema: &str, timeout: Duration) -> Result<Self> {
        check_identifier(schema)
            .map_err(|why| Error::invalid_argument(format!("postgres.schema '{schema}' is not valid: expected {why}")))?;
        Ok(PostgresManifest { pool, schema: schema.to_string(), timeout })
    }

    fn conn(&self) -> Result<Pooled> {
        let request = Request::new();
        let wait = Wait::new(&request, self.timeout);
        retry_unavailable(&wait, &|| format!("PostgreSQL at {}", self.pool.target()), || self.pool.get(&wait))
    }

    /// Creates or upgrades the schema; safe when many processes start at
    /// once. Returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<i32>> {
        let target = self.pool.target();
        let fail = |what: &str| {
            let what = what.to_string();
            move |e: postgres::Error| pg_error(target, &what, &e)
        };
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(fail("cannot begin the migration"))?;
        let migration_lock = lock_key(&format!("libfstore schema {}", self.schema))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&migration_lock]).map_err(fail("cannot take the migration lock"))?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {s}.schema_version (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now());",
            s = self.schema
        ))
        .map_err(fail(&format!("cannot create schema {}", self.schema)))?;
        let current: i32 = tx
            .query_one(format!("SELECT coalesce(max(version), 0) FROM {}.schema_version", self.schema).as_str(), &[])
            .map_err(fail("cannot read the schema version"))?
            .get(0);
        self.refuse_newer(current)?;
        let mut applied = Vec::new();
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.batch_execute(&sql.replace("{s}", &self.schema)).map_err(fail(&format!("schema migration {version} failed")))?;
            tx.execute(format!("INSERT INTO {}.schema_version (version) VALUES ($1)", self.schema).as_str(), &[version])
                .map_err(fail("cannot record the schema version"))?;
            applied.push(*version);
        }
        tx.commit().map_err(fail("cannot commit the migration"))?;
        Ok(applied)
    }

    /// The schema's version, read without DDL: 0 when it does not exist.
    fn current_version(&self) -> Result<i32> {
        let target = self.pool.target();
        let mut conn = self.conn()?;
        let table = format!("{}.schema_version", self.schema);
        let exists: bool = conn
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .map_err(|e| pg_error(target, "cannot look for the schema", &e))?
            .get(0);
        if !exists {
            return Ok(0);
        }
        Ok(conn
            .query_one(format!("SELECT coalesce(max(version), 0) FROM {table}").as_str(), &[])
            .map_err(|e| pg_error(target, "cannot read the schema version", &e))?
            .get(0))
    }

    fn check_version(&self, current: i32) -> Result<()> {
        self.refuse_newer(current)?;
        if current < LATEST_SCHEMA_VERSION {
            return Err(Error::invalid_state(format!(
                "PostgreSQL schema {} is at version {current}, this libfstore needs {LATEST_SCHEMA_VERSION}, and \
                 postgres.auto_migrate is off: run the migrate step (fstore_migrate_schema or `fstore migrate --schema`) \
                 with a role that may create tables",
                self.schema
            )));
        }
        Ok(())
    }

    fn refuse_newer(&self, current: i32) -> Result<()> {
        if current > LATEST_SCHEMA_VERSION {
            return Err(Error::invalid_state(format!(
                "PostgreSQL schema {} is at version {current}, newer than this libfstore ({LATEST_SCHEMA_VERSION}): upgrade libfstore",
                self.schema
            )));
        }
        Ok(())
    }

    /// The database, schema and installation id of this manifest.
    pub fn identity(&self) -> Result<Identity> {
        let mut conn = self.conn()?;
        let row = conn
            .query_one(
                format!("SELECT current_database()::text, (SELECT id FROM {}.installation LIMIT 1)", self.schema).as_str(),
                &[],
            )
            .map_err(|e| pg_error(self.pool.target(), "cannot read the manifest's installation id", &e))?;
        Ok(Identity { database: row.get(0), schema: self.schema.clone(), installation: row.get(1) })
    }

    fn insert_sql(&self) -> String {
        format!(
            "INSERT INTO {}.entries (entry_id, feature_set, symbol, start_date, end_date, config, path, rows, bytes, checksum, created_at)
             VALUES ($1, $2, $3, DATE '1970-01-01' + $4::integer, DATE '1970-01-01' + $5::integer, $6, $7, $8, $9, $10,
                     timestamptz 'epoch' + $11::bigint * interval '1 microsecond')",
            self.schema
        )
    }

    /// Runs `f` on the lock's transaction when there is one, else on a
    /// pooled connection of its own.
    /// Runs `f` on the lock's session when there is one, else on a pooled
    /// connection. Without a session `f` must be idempotent: a connection
    /// the server dropped (a restart, `pg_terminate_backend`) fails the
    /// statement, and the pool may hold more such connections, so it is
    /// tried again on a fresh one a few times.
    fn on<T>(&self, held: Option<&mut dyn Held>, mut f: impl FnMut(&mut Pooled) -> Result<T>) -> Result<T> {
        if let Some(session) = held.and_then(|h| h.session()) {
            return f(session);
        }
        const ATTEMPTS: usize = 4;
        let mut attempt = 1;
        loop {
            match f(&mut self.conn()?) {
                Err(e) if e.status() == Status::Unavailable && attempt < ATTEMPTS => {
                    log::warn!("libfstore: {e}; trying again on another connection");
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }
}

fn params(row: &ManifestRow) -> [Box<dyn postgres::types::ToSql + Sync>; 11] {
    [
        Box::new(row.entry_id.clone()),
        Box::new(row.feature_set.clone()),
        Box::new(row.symbol.clone()),
        Box::new(row.start_date),
        Box::new(row.end_date),
        Box::new(row.config.clone()),
        Box::new(row.path.clone()),
        Box::new(row.rows as i64),
        Box::new(row.bytes as i64),
        Box::new(row.checksum.clone()),
        Box::new(row.created_at_us),
    ]
}

fn as_refs(params: &[Box<dyn postgres::types::ToSql + Sync>; 11]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    params.iter().map(|p| p.as_ref()).collect()
}

impl Manifest for PostgresManifest {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    /// Idempotent: a second publish of the same entry replaces the row.
    fn record(&self, row: &ManifestRow, held: Option<&mut dyn Held>) -> Result<()> {
        let sql = format!(
            "{} ON CONFLICT (entry_id) DO UPDATE SET path = EXCLUDED.path, rows = EXCLUDED.rows, bytes = EXCLUDED.bytes,
                 checksum = EXCLUDED.checksum, created_at = EXCLUDED.created_at",
            self.insert_sql()
        );
        let values = params(row);
        self.on(held, |conn| {
            conn.execute(sql.as_str(), &as_refs(&values))
                .map(drop)
                .map_err(|e| pg_error(self.pool.target(), "cannot record a manifest row", &e))
        })
    }

    fn forget(&self, entry_id: &str, held: Option<&mut dyn Held>) -> Result<()> {
        let sql = format!("DELETE FROM {}.entries WHERE entry_id = $1", self.schema);
        self.on(held, |conn| {
            conn.execute(sql.as_str(), &[&entry_id])
                .map(drop)
                .map_err(|e| pg_error(self.pool.target(), "cannot remove a manifest row", &e))
        })
    }

    fn forget_unchanged(&self, rows: &[(String, i64)]) -> Result<()> {
        let ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
        let created: Vec<i64> = rows.iter().map(|(_, c)| *c).collect();
        let sql = format!(
            "DELETE FROM {s}.entries e USING unnest($1::text[], $2::bigint[]) AS d(id, created)
             WHERE e.entry_id = d.id AND (extract(epoch FROM e.created_at) * 1000000)::bigint = d.created",
            s = self.schema
        );
        self.conn()?
            .execute(sql.as_str(), &[&ids, &created])
            .map(drop)
            .map_err(|e| pg_error(self.pool.target(), "cannot remove manifest rows", &e))
    }

    fn find(&self, entry_id: &str, held: Option<&mut dyn Held>) -> Result<Option<ManifestRow>> {
        let sql = format!("{} WHERE entry_id = $1", self.select_sql());
        self.on(held, |conn| {
            conn.query_opt(sql.as_str(), &[&entry_id])
                .map(|row| row.as_ref().map(to_row))
                .map_err(|e| pg_error(self.pool.target(), "cannot look up a manifest row", &e))
        })
    }

    /// Inserts rows that are not there yet; returns how many were inserted.
    fn insert_missing(&self, rows: &[ManifestRow]) -> Result<u64> {
        let target = self.pool.target();
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(|e| pg_error(target, "cannot begin", &e))?;
        let stmt = tx
            .prepare(format!("{} ON CONFLICT (entry_id) DO NOTHING", self.insert_sql()).as_str())
            .map_err(|e| pg_error(target, "cannot prepare the insert", &e))?;
        let mut inserted = 0;
        for row in rows {
            inserted += tx
                .execute(&stmt, &as_refs(&params(row)))
                .map_err(|e| pg_error(target, "cannot insert a manifest row", &e))?;
        }
        tx.commit().map_err(|e| pg_error(target, "cannot commit", &e))?;
        Ok(inserted)
    }

    fn rows(&self) -> Result<Vec<ManifestRow>> {
        let sql = format!("{} ORDER BY feature_set, symbol, start_date, end_date, entry_id", self.select_sql());
        let rows = self
            .conn()?
            .query(sql.as_str(), &[])
            .map_err(|e| pg_error(self.pool.target(), "cannot list the manifest", &e))?;
        Ok(rows.iter().map(to_row).collect())
    }

    fn flush(&self) -> Result<()> {
        Ok(()) // every change is applied before its call returns
    }

    fn shutdown(&self) -> Result<()> {
        Ok(())
    }
}

impl PostgresManifest {
    fn select_sql(&self) -> String {
        format!(
            "SELECT entry_id, feature_set, symbol, start_date - DATE '1970-01-01', end_date - DATE '1970-01-01',
                    config, path, rows, bytes, checksum, {CREATED_AT_US}
             FROM {}.entries",
            self.schema
        )
    }
}

fn to_row(r: &postgres::Row) -> ManifestRow {
    ManifestRow {
        entry_id: r.get(0),
        feature_set: r.get(1),
        symbol: r.get(2),
        start_date: r.get(3),
        end_date: r.get(4),
        config: r.get(5),
        path: r.get(6),
        rows: r.get::<_, i64>(7) as u64,
        bytes: r.get::<_, i64>(8) as u64,
        checksum: r.get(9),
        created_at_us: r.get(10),
    }
}
