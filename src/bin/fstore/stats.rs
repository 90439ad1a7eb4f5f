//! `fstore stats`: what the store holds and how it runs.

use std::collections::BTreeMap;

use fstore::{Result, Store};
use serde_json::{json, Value};

use crate::dates::{format_bytes, format_time_us};
use crate::output::{emit, fields, table};

#[derive(Default)]
struct Totals {
    entries: u64,
    rows: u64,
    bytes: u64,
    oldest_us: Option<i64>,
    newest_us: Option<i64>,
}

impl Totals {
    fn add(&mut self, rows: u64, bytes: u64, created_us: i64) {
        self.entries += 1;
        self.rows += rows;
        self.bytes += bytes;
        self.oldest_us = Some(self.oldest_us.map_or(created_us, |t| t.min(created_us)));
        self.newest_us = Some(self.newest_us.map_or(created_us, |t| t.max(created_us)));
    }

    fn json(&self) -> Value {
        json!({
            "entries": self.entries,
            "rows": self.rows,
            "bytes": self.bytes,
            "oldest": self.oldest_us.map(format_time_us),
            "newest": self.newest_us.map(format_time_us),
        })
    }
}

pub fn stats(store: &Store, json: bool) -> Result<()> {
    let rows = store.manifest_rows()?;
    let mut total = Totals::default();
    let mut groups: BTreeMap<(&str, &str), Totals> = BTreeMap::new();
    for r in &rows {
        total.add(r.rows, r.bytes, r.created_at_us);
        groups.entry((&r.feature_set, &r.symbol)).or_default().add(r.rows, r.bytes, r.created_at_us);
    }
    let feature_sets: std::collections::BTreeSet<&str> = groups.keys().map(|k| k.0).collect();
    let symbols: std::collections::BTreeSet<&str> = groups.keys().map(|k| k.1).collect();
    let pool = store.pool_stats();
    let locks = store.lock_stats()?;
    let value = json!({
        "backend": store.manifest_backend().name(),
        "cache_dir": store.cache_dir().display().to_string(),
        "warnings": store.warnings(),
        "total": total.json(),
        "feature_sets": feature_sets.len(),
        "symbols": symbols.len(),
        "groups": groups.iter().map(|((f, s), t)| {
            let mut g = t.json();
            g["feature_set"] = json!(f);
            g["symbol"] = json!(s);
            g
        }).collect::<Vec<_>>(),
        "pool": pool.map(|p| json!({"size": p.size, "idle": p.idle, "in_use": p.in_use, "waits": p.waits})),
        "advisory_locks": locks.map(|l| json!({"held": l.held, "waiting": l.waiting})),
    });
    emit(json, &value, || {
        let mut lines = vec![
            ("backend", store.manifest_backend().name().to_string()),
            ("cache dir", store.cache_dir().display().to_string()),
            ("entries", total.entries.to_string()),
            ("rows", total.rows.to_string()),
            ("size", format_bytes(total.bytes)),
            ("feature sets", feature_sets.len().to_string()),
            ("symbols", symbols.len().to_string()),
        ];
        if let Some(p) = pool {
            lines.push(("pool", format!("{} open, {} idle, {} in use, {} waits", p.size, p.idle, p.in_use, p.waits)));
        }
        if let Some(l) = locks {
            lines.push(("advisory locks", format!("{} held, {} waiting", l.held, l.waiting)));
        }
        for w in store.warnings() {
            lines.push(("warning", w.clone()));
        }
        let when = |t: Option<i64>| t.map(format_time_us).unwrap_or_default();
        let groups = table(
            ["feature set", "symbol", "entries", "rows", "size", "oldest", "newest"],
            groups.iter().map(|((f, s), t)| {
                [
                    f.to_string(),
                    s.to_string(),
                    t.entries.to_string(),
                    t.rows.to_string(),
                    format_bytes(t.bytes),
                    when(t.oldest_us),
                    when(t.newest_us),
                ]
            }),
        );
        format!("{}\n{groups}", fields(&lines))
    });
    Ok(())
}
