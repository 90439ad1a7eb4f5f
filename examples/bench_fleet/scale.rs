//! Scale: how the manifest's size affects a store. Bulk-loads manifest rows
//! (no files behind them: a hit never reads the manifest, and maintenance
//! must check every row's file either way), then measures at each size the
//! latency of a hit and of a miss that computes a one-row entry, through the
//! C API; and at the largest size how long listing, the summary and
//! maintenance take. Maintenance re-checks every row against its file: the
//! dry run counts the bulk rows as rows without a file, the real run removes
//! them all (so it runs last).

use std::time::Instant;

use fstore::maintenance::MaintainOptions;
use fstore::{Options, Store};

use crate::capi::{CStore, Compute};
use crate::data::BenchKey;
use crate::setup::{Mode, RunDir};
use crate::stats::{millis, percentile, Figures, Unit};
use crate::worker::{Design, Task};
use crate::Context;

pub fn run(ctx: &Context, mode: &Mode, figures: &mut Figures) -> Result<(), String> {
    let run = RunDir::new(Design::Libfstore, mode)?;
    let spec = run.spec(Design::Libfstore, Task::Rounds, "HIT", 0);
    let options = spec.store_options();
    let hit = BenchKey::range("HIT", 0);
    CStore::open(&options)?.get_or_compute(&hit, &mut Compute::new(0))?;
    let mut loaded = 0;
    let mut sizes = ctx.args.scale_sizes.clone();
    sizes.sort();
    for &size in &sizes {
        let started = Instant::now();
        bulk_load(&run, mode, loaded, size)?;
        let load_s = started.elapsed().as_secs_f64();
        loaded = size;
        let label = rows_label(size);
        let name = |what: &str| format!("scale | {} | libfstore | {what} at {label} rows", mode.name);
        for memory_mb in [64, 0] {
            let mut options = options.clone();
            options.retain(|(n, _)| *n != "memory_cache_mb");
            options.push(("memory_cache_mb", memory_mb.to_string()));
            let store = CStore::open(&options)?;
            let mut hits = Vec::new();
            for _ in 0..ctx.args.scale_calls {
                let t = Instant::now();
                store.get(&hit)?.ok_or("the hit entry is gone")?;
                hits.push(millis(t.elapsed()));
            }
            let what = if memory_mb > 0 { "hit p50 (memory cache)" } else { "hit p50 (from file)" };
            figures.add(&name(what), Unit::Millis, percentile(&hits, 0.5));
            if memory_mb == 0 {
                let mut misses = Vec::new();
                for i in 0..ctx.args.scale_misses {
                    let key = BenchKey::with_days(&format!("MISS{size}"), i, 1);
                    let t = Instant::now();
                    store.get_or_compute(&key, &mut Compute::new(0))?;
                    misses.push(millis(t.elapsed()));
                }
                figures.add(&name("miss p50 (one-row compute)"), Unit::Millis, percentile(&misses, 0.5));
            }
        }
        println!(
            "  scale {} {label} rows (loaded in {load_s:.1} s): hit p50 {:.1} us (memory), {:.0} us (file); miss p50 {:.2} ms",
            mode.name,
            figures_last(figures, &name("hit p50 (memory cache)")) * 1e3,
            figures_last(figures, &name("hit p50 (from file)")) * 1e3,
            figures_last(figures, &name("miss p50 (one-row compute)")),
        );
    }
    let Some(&largest) = sizes.last() else { return Ok(()) };
    let label = rows_label(largest);
    let name = |what: &str| format!("scale | {} | libfstore | {what} at {label} rows", mode.name);
    let mut rust_options = Options::default();
    for (n, v) in &options {
        rust_options.set(n, v).map_err(|e| e.to_string())?;
    }
    let store = Store::open(rust_options).map_err(|e| e.to_string())?;
    let timed = |f: &dyn Fn() -> Result<usize, String>| -> Result<(f64, usize), String> {
        let t = Instant::now();
        let n = f()?;
        Ok((millis(t.elapsed()), n))
    };
    let (list_ms, listed) = timed(&|| Ok(store.entries().map_err(|e| e.to_string())?.num_rows()))?;
    let (summary_ms, _) = timed(&|| Ok(store.summary().map_err(|e| e.to_string())?.num_rows()))?;
    // Until the manifest has recorded the removals (the embedded manifest
    // writes them in the background), the real run is not done.
    let maintain = |dry_run: bool| {
        let options = MaintainOptions { dry_run, grace: std::time::Duration::ZERO, ..Default::default() };
        let report = store.maintain(&options).map_err(|e| e.to_string())?;
        store.flush().map_err(|e| e.to_string())?;
        Ok(report.rows_without_file as usize)
    };
    let (dry_ms, dry_found) = timed(&|| maintain(true))?;
    let (real_ms, removed) = timed(&|| maintain(false))?;
    store.close().map_err(|e| e.to_string())?;
    figures.add(&name("list"), Unit::Millis, list_ms);
    figures.add(&name("summary"), Unit::Millis, summary_ms);
    figures.add(&name("maintenance, dry run"), Unit::Millis, dry_ms);
    figures.add(&name("maintenance, removing the bulk rows"), Unit::Millis, real_ms);
    println!(
        "  scale {} {label} rows: list {list_ms:.0} ms ({listed} rows), summary {summary_ms:.0} ms, maintenance dry run {dry_ms:.0} ms ({dry_found} rows without file), real {real_ms:.0} ms ({removed} removed)",
        mode.name
    );
    if listed < largest || dry_found < largest {
        return Err(format!("scale ({}): listed {listed} and checked {dry_found} rows, expected at least {largest}", mode.name));
    }
    Ok(())
}

fn figures_last(figures: &Figures, name: &str) -> f64 {
    figures.last(name).unwrap_or(f64::NAN)
}

pub fn rows_label(size: usize) -> String {
    match size {
        s if s >= 1_000_000 && s % 1_000_000 == 0 => format!("{}M", s / 1_000_000),
        s if s >= 1_000 && s % 1_000 == 0 => format!("{}k", s / 1_000),
        s => s.to_string(),
    }
}

/// Adds manifest rows `from..to` (ids are the row number in hex, 1,000
/// symbols, no files), straight into the manifest's table.
fn bulk_load(run: &RunDir, mode: &Mode, from: usize, to: usize) -> Result<(), String> {
    if to <= from {
        return Ok(());
    }
    match &mode.dsn {
        None => {
            let path = run.dir.path().join("manifest.duckdb");
            let duck = duckdb::Connection::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            duck.execute_batch(&format!(
                "INSERT INTO fstore_entries
                 SELECT id, 'bulk', 'B' || (i % 1000), DATE '2000-01-01' + (i // 1000)::INTEGER,
                        DATE '2000-01-01' + (i // 1000)::INTEGER + 251, '{{}}',
                        'data/' || substr(id, 1, 2) || '/' || id || '.parquet', 252, 40000, repeat('0', 64),
                        TIMESTAMP '2020-01-01'
                 FROM (SELECT i, lower(lpad(hex(i), 64, '0')) AS id FROM range({from}, {to}) t(i))"
            ))
            .map_err(|e| format!("cannot bulk-load the embedded manifest: {e}"))
        }
        Some(dsn) => crate::baseline::connect(dsn)?
            .batch_execute(&format!(
                "INSERT INTO {s}.entries
                 SELECT id, 'bulk', 'B' || (i % 1000), DATE '2000-01-01' + (i / 1000)::int,
                        DATE '2000-01-01' + (i / 1000)::int + 251, '{{}}',
                        'data/' || substr(id, 1, 2) || '/' || id || '.parquet', 252, 40000, repeat('0', 64),
                        now() - interval '400 days'
                 FROM (SELECT i, lpad(to_hex(i), 64, '0') AS id FROM generate_series({from}::bigint, {to} - 1) i) g;
                 ANALYZE {s}.entries;",
                s = run.schema
            ))
            .map_err(|e| format!("cannot bulk-load the PostgreSQL manifest: {e}")),
    }
}
