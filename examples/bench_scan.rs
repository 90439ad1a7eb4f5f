//! A scan of many entries against one single get per entry. Writes N
//! entries of 252 rows x 16 float64 (default 500: 5 symbols x 100 date
//! ranges), then measures, medians of `--runs`:
//! - memory cache off: N gets, one after another, against one scan, and
//!   DuckDB's parallel `read_parquet([...])` over the same files (2 threads,
//!   no verification: the engine the scan did not pick, for reference);
//! - memory cache on, every entry in memory: N gets against one scan.
//!
//!     cargo run --release --example bench_scan -- --runs 5
//!     cargo run --release --example bench_scan -- --smoke
//!
//! Prints the command and commit, each run's figures, the medians and the
//! ratios against the targets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use fstore::arrow::array::{ArrayRef, Float64Array, RecordBatch};
use fstore::arrow::datatypes::{DataType, Field, Schema};
use fstore::arrow::record_batch::RecordBatchIterator;
use fstore::{Key, Options, Request, ScanRequest, Store};

#[derive(Parser)]
struct Args {
    /// Entries to write and read.
    #[arg(long, default_value_t = 500)]
    entries: usize,
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// A quick check that everything works (100 entries, 1 run).
    #[arg(long)]
    smoke: bool,
}

const ROWS: usize = 252;
const COLUMNS: usize = 16;
const SYMBOLS: usize = 5;
const FEATURE_SET: &str = "bench_scan";

fn main() {
    let mut args = Args::parse();
    if args.smoke {
        args.entries = 100;
        args.runs = 1;
    }
    println!("command: {}", std::env::args().collect::<Vec<_>>().join(" "));
    println!("commit: {}", commit());
    let dir = tempfile::tempdir().expect("temp dir");
    let off = open(dir.path(), 0);
    let keys = write_entries(&off, args.entries);
    off.flush().unwrap();
    let window = ScanRequest::new(FEATURE_SET, 0, i32::try_from(keys.len()).unwrap() * 300 + 1000);
    let files: Vec<String> =
        off.manifest_rows().unwrap().iter().map(|r| dir.path().join(&r.path).display().to_string()).collect();
    println!("{} entries of {ROWS} rows x {COLUMNS} float64, {} threads available", keys.len(), threads());

    let on = open(dir.path(), 256);
    for key in &keys {
        on.get(key, &Request::new()).unwrap().unwrap(); // into memory
    }
    let duck = duckdb::Connection::open_in_memory().unwrap();
    duck.execute_batch("SET threads = 2").unwrap();
    let list: Vec<String> = files.iter().map(|f| format!("'{f}'")).collect();
    let duck_sql = format!("SELECT * FROM read_parquet([{}])", list.join(", "));

    let expected_rows = keys.len() * ROWS;
    let mut figures: Vec<(&str, Vec<Duration>)> = vec![
        ("cache off: gets, one per entry", vec![]),
        ("cache off: scan", vec![]),
        ("cache off: duckdb read_parquet, 2 threads, unverified", vec![]),
        ("cache off: manifest listing alone (part of scan)", vec![]),
        ("cache on: gets, one per entry", vec![]),
        ("cache on: scan", vec![]),
    ];
    for run in 0..args.runs {
        let times = [
            time(|| gets(&off, &keys)),
            time(|| scan(&off, &window)),
            time(|| {
                let batches: Vec<RecordBatch> = duck.prepare(&duck_sql).unwrap().query_arrow(duckdb::params![]).unwrap().collect();
                batches.iter().map(|b| b.num_rows()).sum()
            }),
            time(|| off.manifest_rows().unwrap().len() * ROWS),
            time(|| gets(&on, &keys)),
            time(|| scan(&on, &window)),
        ];
        for ((_, all), (elapsed, rows)) in figures.iter_mut().zip(times) {
            assert_eq!(rows, expected_rows, "every case reads every row");
            all.push(elapsed);
        }
        eprintln!("run {} of {} done", run + 1, args.runs);
    }
    println!("{:<58} {:>10}   per-run", "case", "median");
    let mut medians = Vec::new();
    for (name, runs) in &figures {
        let shown: Vec<String> = runs.iter().map(|d| ms(*d)).collect();
        let m = median(runs);
        medians.push(m);
        println!("{name:<58} {:>10}   [{}]", ms(m), shown.join(", "));
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let off_ratio = ratio(medians[0], medians[1]);
    let on_ratio = ratio(medians[4], medians[5]);
    println!(
        "cache off: scan is {off_ratio:.2}x faster than the gets (target: at least 3x): {}",
        if off_ratio >= 3.0 { "met" } else { "NOT met" }
    );
    println!(
        "cache on: scan is {on_ratio:.2}x the speed of the gets (target: no slower, at least 1x): {}",
        if on_ratio >= 1.0 { "met" } else { "NOT met" }
    );
    println!("duckdb read_parquet against the scan (cache off): {:.2}x the scan's time", ratio(medians[2], medians[1]));
}

fn open(dir: &std::path::Path, memory_cache_mb: usize) -> Store {
    let mut options = Options::default();
    options.set("cache_dir", dir.to_str().unwrap()).unwrap();
    options.set("memory_cache_mb", &memory_cache_mb.to_string()).unwrap();
    Store::open(options).unwrap()
}

/// Writes `count` entries: `SYMBOLS` symbols, consecutive date ranges.
fn write_entries(store: &Store, count: usize) -> Vec<Key> {
    let batch = sample();
    (0..count)
        .map(|i| {
            let start = i32::try_from((i / SYMBOLS) * 300).unwrap();
            let key = Key::new(FEATURE_SET, format!("SYM{}", i % SYMBOLS), start, start + 251, "{}");
            let mut reader = RecordBatchIterator::new(vec![Ok(batch.clone())], batch.schema());
            store.put(&key, &mut reader).unwrap();
            key
        })
        .collect()
}

fn gets(store: &Store, keys: &[Key]) -> usize {
    keys.iter().map(|k| store.get(k, &Request::new()).unwrap().expect("written").num_rows()).sum()
}

fn scan(store: &Store, window: &ScanRequest) -> usize {
    let scan = store.scan(window).unwrap();
    assert!(scan.missing.is_empty(), "{:?}", scan.missing);
    scan.data.num_rows()
}

fn time(f: impl FnOnce() -> usize) -> (Duration, usize) {
    let started = Instant::now();
    let rows = f();
    (started.elapsed(), rows)
}

fn sample() -> RecordBatch {
    let fields: Vec<Field> = (0..COLUMNS).map(|c| Field::new(format!("c{c}"), DataType::Float64, false)).collect();
    let columns: Vec<ArrayRef> = (0..COLUMNS)
        .map(|c| Arc::new(Float64Array::from_iter_values((0..ROWS).map(|r| ((r * 31 + c * 7) as f64).sin() * 100.0))) as ArrayRef)
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

fn median(runs: &[Duration]) -> Duration {
    let mut sorted = runs.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown (not a git checkout)".into())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
