//! Scale: how the manifest's size affects a store. Bulk-loads manifest rows
//! (no files behind them: a hit never reads the manifest, and maintenance
//! must check every row's file either way), then measures at each size the
//! latency of a hit and of a miss that computes a one-row entry, through the
//! C API; and at the largest size how long listing, the summary and a dry
//! run of maintenance take. Maintenance re-checks every row against its
//! file: the dry run counts the bulk rows as rows without a file; a real run
//! removing such rows is timed on a manifest of its own.

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
    let store = Store::open(rust_options(&options)?).map_err(|e| e.to_string())?;
    let timed = |f: &dyn Fn() -> Result<usize, String>| -> Result<(f64, usize), String> {
        let t = Instant::now();
        let n = f()?;
        Ok((millis(t.elapsed()), n))
    };
    let (list_ms, listed) = timed(&|| Ok(store.entries().map_err(|e| e.to_string())?.num_rows()))?;
    let (summary_ms, _) = timed(&|| Ok(store.summary().map_err(|e| e.to_string())?.num_rows()))?;
    let (dry_ms, dry_found) = timed(&|| maintain(&store, true))?;
    store.close().map_err(|e| e.to_string())?;
    figures.add(&name("list"), Unit::Millis, list_ms);
    figures.add(&name("summary"), Unit::Millis, summary_ms);
    figures.add(&name("maintenance, dry run"), Unit::Millis, dry_ms);
    println!(
        "  scale {} {label} rows: list {list_ms:.0} ms ({listed} rows), summary {summary_ms:.0} ms, maintenance dry run {dry_ms:.0} ms ({dry_found} rows without file)",
        mode.name
    );
    if listed < largest || dry_found < largest {
        return Err(format!("scale ({}): listed {listed} and checked {dry_found} rows, expected at least {largest}", mode.name));
    }
    real_maintenance(ctx, mode, figures)
}

/// Times a real maintenance run that removes `--maintenance-rows` rows
/// without files, in a manifest of its own: removing a million rows takes
/// minutes in the embedded manifest, beyond a full run's budget, so the
/// default is fewer (`--maintenance-rows 1000000` measures it).
fn real_maintenance(ctx: &Context, mode: &Mode, figures: &mut Figures) -> Result<(), String> {
    let rows = ctx.args.maintenance_rows;
    let run = RunDir::new(Design::Libfstore, mode)?;
    bulk_load(&run, mode, 0, rows)?;
    let store = Store::open(rust_options(&run.spec(Design::Libfstore, Task::Rounds, "HIT", 0).store_options())?)
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let removed = maintain(&store, false)?;
    let real_ms = millis(started.elapsed());
    store.close().map_err(|e| e.to_string())?;
    let label = rows_label(rows);
    figures.add(&format!("scale | {} | libfstore | maintenance removing {label} rows without file", mode.name), Unit::Millis, real_ms);
    println!("  scale {}: maintenance removing {label} rows without file {real_ms:.0} ms ({removed} removed)", mode.name);
    if removed != rows {
        return Err(format!("scale ({}): maintenance removed {removed} rows, expected {rows}", mode.name));
    }
    Ok(())
}

/// Runs maintenance (no grace period: the bulk rows are all old); a real
/// run is done once the manifest has recorded its removals (the embedded
/// manifest writes them in the background). Returns the rows without file.
fn maintain(store: &Store, dry_run: bool) -> Result<usize, String> {
    let options = MaintainOptions { dry_run, grace: std::time::Duration::ZERO, ..Default::default() };
    let report = store.maintain(&options).map_err(|e| e.to_string())?;
    store.flush().map_err(|e| e.to_string())?;
    Ok(report.rows_without_file as usize)
}

fn rust_options(options: &[(&str, String)]) -> Result<Options, String> {
    let mut rust_options = Options::default();
    for (n, v) in options {
        rust_options.set(n, v).map_err(|e| e.to_string())?;
    }
    Ok(rust_options)
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
        // The secondary indexes are dropped for the load and built again
        // after it, as a bulk load would: building them once is faster.
        Some(dsn) => crate::baseline::connect(dsn)?
            .batch_execute(&format!(
                "CREATE TEMP TABLE bench_indexes AS
                     SELECT indexname, indexdef FROM pg_indexes
                     WHERE schemaname = '{s}' AND tablename = 'entries' AND indexname <> 'entries_pkey';
                 DO $$ DECLARE i record; BEGIN
                     FOR i IN SELECT indexname FROM bench_indexes LOOP
                         EXECUTE format('DROP INDEX {s}.%I', i.indexname);
                     END LOOP;
                 END $$;
                 INSERT INTO {s}.entries
                 SELECT id, 'bulk', 'B' || (i % 1000), DATE '2000-01-01' + (i / 1000)::int,
                        DATE '2000-01-01' + (i / 1000)::int + 251, '{{}}',
                        'data/' || substr(id, 1, 2) || '/' || id || '.parquet', 252, 40000, repeat('0', 64),
                        now() - interval '400 days'
                 FROM (SELECT i, lpad(to_hex(i), 64, '0') AS id FROM generate_series({from}::bigint, {to} - 1) i) g;
                 DO $$ DECLARE i record; BEGIN
                     FOR i IN SELECT indexdef FROM bench_indexes LOOP
                         EXECUTE i.indexdef;
                     END LOOP;
                 END $$;
                 ANALYZE {s}.entries;",
                s = run.schema
            ))
            .map_err(|e| format!("cannot bulk-load the PostgreSQL manifest: {e}")),
    }
}
