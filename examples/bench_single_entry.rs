//! Which engine serves one entry fastest? Reads and writes one entry of 252
//! rows x 16 float64 columns (a trading year of features) through arrow-rs's
//! Parquet (libfstore's path, with and without checksum verification) and
//! through DuckDB (prepared `read_parquet` to Arrow; appender plus `COPY TO`).
//!
//!     cargo run --release --example bench_single_entry -- --iterations 300 --runs 5
//!
//! Prints the median per operation of each run, then the median of the runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use duckdb::Connection;
use fstore::arrow::array::{ArrayRef, Float64Array, RecordBatch};
use fstore::arrow::datatypes::{DataType, Field, Schema};
use fstore::arrow::record_batch::RecordBatchIterator;
use fstore::{Key, Options, Request, Store};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 300)]
    iterations: usize,
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

const ROWS: usize = 252;
const COLUMNS: usize = 16;

fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("temp dir");
    let batch = sample();
    let mut options = Options::default();
    options.set("cache_dir", dir.path().to_str().unwrap()).unwrap();
    let store = Store::open(options.clone()).unwrap();
    options.set("verify_checksums", "false").unwrap();
    options.set("cache_dir", dir.path().to_str().unwrap()).unwrap();
    let unverified = Store::open(options).unwrap();
    let key = Key::new("bench", "AAPL", 19358, 19722, "{}");
    let put = |store: &Store, key: &Key| {
        let mut reader = RecordBatchIterator::new(vec![Ok(batch.clone())], batch.schema());
        store.put(key, &mut reader).unwrap();
    };
    put(&store, &key);
    let entry = walk(dir.path()).into_iter().find(|p| p.ends_with(".parquet")).unwrap();
    println!("entry: {ROWS} rows x {COLUMNS} float64, {} bytes of zstd Parquet", std::fs::metadata(&entry).unwrap().len());

    let duck = Connection::open_in_memory().unwrap();
    let mut read_stmt = duck.prepare("SELECT * FROM read_parquet(?)").unwrap();
    let copy_target = dir.path().join("duck.parquet");

    let mut results: Vec<(&str, Vec<Duration>)> = vec![
        ("read: libfstore get (arrow-rs parquet, checksum verified)", vec![]),
        ("read: libfstore get (arrow-rs parquet, no checksum)", vec![]),
        ("read: duckdb prepared read_parquet -> arrow", vec![]),
        ("read: duckdb SELECT 1 alone (floor of any query)", vec![]),
        ("write: libfstore put (arrow-rs parquet zstd-3, fsync, rename)", vec![]),
        ("write: duckdb appender + COPY TO parquet zstd (no fsync)", vec![]),
    ];
    for run in 0..args.runs {
        let medians = [
            median_of(args.iterations, || {
                store.get(&key, &Request::new()).unwrap().unwrap();
            }),
            median_of(args.iterations, || {
                unverified.get(&key, &Request::new()).unwrap().unwrap();
            }),
            median_of(args.iterations, || {
                let rows: Vec<RecordBatch> = read_stmt.query_arrow([entry.as_str()]).unwrap().collect();
                assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), ROWS);
            }),
            median_of(args.iterations, || {
                let _: i32 = duck.query_row("SELECT 1", [], |r| r.get(0)).unwrap();
            }),
            median_of(args.iterations / 3, || put(&store, &key)),
            median_of(args.iterations / 3, || duck_write(&duck, &batch, &copy_target)),
        ];
        for ((_, all), m) in results.iter_mut().zip(medians) {
            all.push(m);
        }
        eprintln!("run {} of {} done", run + 1, args.runs);
    }
    println!("{:<64} {:>12}   per-run medians", "operation", "median");
    for (name, mut runs) in results {
        let shown: Vec<String> = runs.iter().map(|d| fmt(*d)).collect();
        runs.sort();
        println!("{name:<64} {:>12}   [{}]", fmt(runs[runs.len() / 2]), shown.join(", "));
    }
}

fn duck_write(duck: &Connection, batch: &RecordBatch, target: &std::path::Path) {
    let columns: Vec<String> = (0..COLUMNS).map(|c| format!("c{c} DOUBLE")).collect();
    duck.execute_batch(&format!("CREATE OR REPLACE TABLE entry ({})", columns.join(", "))).unwrap();
    {
        let mut appender = duck.appender("entry").unwrap();
        let cols: Vec<&Float64Array> = batch.columns().iter().map(|c| c.as_any().downcast_ref().unwrap()).collect();
        for row in 0..batch.num_rows() {
            let values: Vec<f64> = cols.iter().map(|c| c.value(row)).collect();
            appender.append_row(duckdb::appender_params_from_iter(values)).unwrap();
        }
    }
    duck.execute_batch(&format!(
        "COPY entry TO '{}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 3)",
        target.display()
    ))
    .unwrap();
}

fn sample() -> RecordBatch {
    let fields: Vec<Field> = (0..COLUMNS).map(|c| Field::new(format!("c{c}"), DataType::Float64, false)).collect();
    let columns: Vec<ArrayRef> = (0..COLUMNS)
        .map(|c| Arc::new(Float64Array::from_iter_values((0..ROWS).map(|r| ((r * 31 + c * 7) as f64).sin() * 100.0))) as ArrayRef)
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

fn median_of(iterations: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    let mut times: Vec<Duration> = (0..iterations.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

fn fmt(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}
