//! `fstore locks` and `fstore pool`: the PostgreSQL side.

use std::collections::BTreeMap;

use fstore::admin::{AdvisoryLock, LockedObject};
use fstore::{Error, Result, Store};
use serde_json::{json, Value};

use crate::output::{emit, fields, table};

fn needs_postgres(store: &Store, what: &str) -> Error {
    Error::not_found(format!(
        "{what} exist only with the PostgreSQL manifest; this store uses {}",
        store.manifest_backend().name()
    ))
}

fn object_json(object: &LockedObject) -> Value {
    match object {
        LockedObject::Symbol(symbol) => json!({"kind": "symbol", "symbol": symbol}),
        LockedObject::Entry { entry_id, feature_set, symbol } => {
            json!({"kind": "entry", "entry_id": entry_id, "feature_set": feature_set, "symbol": symbol})
        }
        LockedObject::SchemaMigration => json!({"kind": "schema_migration"}),
        LockedObject::Unknown => json!({"kind": "unknown"}),
    }
}

fn object_text(object: &LockedObject) -> String {
    match object {
        LockedObject::Symbol(symbol) => format!("symbol {symbol}"),
        LockedObject::Entry { entry_id, feature_set, symbol } => format!("entry {} ({feature_set}/{symbol})", &entry_id[..12]),
        LockedObject::SchemaMigration => "schema migration".into(),
        LockedObject::Unknown => "unknown (a new entry, or another program's)".into(),
    }
}

fn symbol_of(lock: &AdvisoryLock) -> Option<&str> {
    match &lock.object {
        LockedObject::Symbol(s) | LockedObject::Entry { symbol: s, .. } => Some(s),
        _ => None,
    }
}

pub fn locks(store: &Store, extra_symbols: &[String], json: bool) -> Result<()> {
    let locks = store.advisory_locks(extra_symbols)?.ok_or_else(|| needs_postgres(store, "advisory locks"))?;
    // Per symbol: locks held and waited for on the symbol's key or its entries'.
    let mut per_symbol: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for lock in &locks {
        if let Some(symbol) = symbol_of(lock) {
            let counts = per_symbol.entry(symbol).or_default();
            if lock.granted {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
    }
    let (held, waiting) = (locks.iter().filter(|l| l.granted).count(), locks.iter().filter(|l| !l.granted).count());
    let value = json!({
        "held": held,
        "waiting": waiting,
        "locks": locks.iter().map(|l| json!({
            "key": l.key,
            "int4_pair": l.int4_pair,
            "pid": l.pid,
            "mode": l.mode,
            "granted": l.granted,
            "application_name": l.application_name,
            "transaction_seconds": l.transaction_seconds,
            "object": object_json(&l.object),
        })).collect::<Vec<_>>(),
        "symbols": per_symbol.iter().map(|(s, (h, w))| json!({"symbol": s, "held": h, "waiting": w})).collect::<Vec<_>>(),
    });
    emit(json, &value, || {
        let all = table(
            ["key", "pid", "mode", "state", "for", "application", "guards"],
            locks.iter().map(|l| {
                [
                    l.key.to_string(),
                    l.pid.to_string(),
                    l.mode.clone(),
                    if l.granted { "held" } else { "waiting" }.to_string(),
                    l.transaction_seconds.map_or(String::new(), |s| format!("{s:.1}s")),
                    l.application_name.clone(),
                    object_text(&l.object),
                ]
            }),
        );
        let symbols = table(
            ["symbol", "held", "waiting"],
            per_symbol.iter().map(|(s, (h, w))| [s.to_string(), h.to_string(), w.to_string()]),
        );
        format!("{held} held, {waiting} waiting\n{all}\n{symbols}")
    });
    Ok(())
}

pub fn pool(store: &Store, json: bool) -> Result<()> {
    let pool = store.pool_stats().ok_or_else(|| needs_postgres(store, "connection pools"))?;
    let server = store.server_connections()?.ok_or_else(|| needs_postgres(store, "connection pools"))?;
    let pg = &store.options().postgres;
    let libfstore: u64 = server.libfstore.iter().map(|s| s.connections).sum();
    let value = json!({
        "pool": {
            "size": pool.size, "idle": pool.idle, "in_use": pool.in_use, "waits": pool.waits,
            "min": pg.pool_min, "max": pg.pool_max,
        },
        "server": {
            "max_connections": server.max_connections,
            "connections": server.total,
            "libfstore_connections": libfstore,
            "libfstore_by_state": server.libfstore.iter().map(|s| json!({"state": s.state, "connections": s.connections})).collect::<Vec<_>>(),
        },
    });
    emit(json, &value, || {
        let summary = fields(&[
            ("this pool", format!("{} open ({} idle, {} in use), {} waits; min {}, max {}", pool.size, pool.idle, pool.in_use, pool.waits, pg.pool_min, pg.pool_max)),
            ("server", format!("{} of max_connections {} in use, {libfstore} by libfstore", server.total, server.max_connections)),
        ]);
        let states = table(["state", "libfstore connections"], server.libfstore.iter().map(|s| [s.state.clone(), s.connections.to_string()]));
        format!("{summary}\n{states}")
    });
    Ok(())
}
