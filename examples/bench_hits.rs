//! Hot hits: how many hits of one entry (252 rows: a date column and 16
//! float64 features, a trading year) a store answers per second, from 1 and
//! 2 threads, and the latency of one call. Three paths:
//! - `rust`: `Store::get`, memory cache on;
//! - `c`: `fstore_store_get`, then the Arrow C stream consumed and released
//!   the way a C caller does (schema, every batch, release);
//! - `projected`: `Store::get` of 2 of the 16 features with the memory
//!   cache off, so every call decodes its file;
//! - `labels`: what per-symbol metrics cost. Hits cycle over 64 entries of
//!   64 symbols on two stores that differ only in `metrics.max_symbols`:
//!   1000 (a series per symbol, the default) and 0 (every symbol folded
//!   into one `other` series). Runs alternate between the two (and which
//!   goes first), and the ratio of each pair is printed with the median.
//!
//!     cargo run --release --example bench_hits -- --runs 5 --seconds 2
//!     cargo run --release --example bench_hits -- --smoke
//!
//! Prints each run's figures, then the median of the runs per path and
//! thread count. `--calls N` makes each thread do exactly N calls (for
//! instruction counts under a profiler) instead of running for a time.

use std::ffi::CString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use fstore::arrow::array::{Date32Array, Float64Array, RecordBatch};
use fstore::arrow::datatypes::{DataType, Field, Schema};
use fstore::arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use fstore::arrow::ffi_stream::FFI_ArrowArrayStream;
use fstore::arrow::record_batch::RecordBatchIterator;
use fstore::ffi::{self as c, fstore_error, fstore_key, fstore_store, FSTORE_STATUS_OK};
use fstore::{Key, Options, Request, Store};

#[derive(Parser)]
struct Args {
    /// Thread counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2])]
    threads: Vec<usize>,
    /// How long each measurement runs.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Exactly this many calls per thread instead of a time.
    #[arg(long)]
    calls: Option<u64>,
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Paths to measure, comma-separated: rust, c, projected, labels.
    #[arg(long, value_delimiter = ',', default_values_t = ["rust".to_string(), "c".to_string(), "projected".to_string(), "labels".to_string()])]
    paths: Vec<String>,
    /// `labels` path: measure only one side, `per-symbol` or `folded` (for
    /// instruction counts under a profiler).
    #[arg(long, value_parser = ["per-symbol", "folded"])]
    labels_only: Option<String>,
    /// A few seconds in all: one short run of everything, for the test command.
    #[arg(long)]
    smoke: bool,
}

const ROWS: i32 = 252;
const FEATURES: usize = 16;
const PROJECTION: [&str; 2] = ["f3", "f11"];
const LABELLED_SYMBOLS: usize = 64;

/// One measurement: calls made, wall time, and every call's latency.
struct Measured {
    calls: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

fn main() {
    let mut args = Args::parse();
    if args.smoke {
        args.seconds = 0.2;
        args.runs = 1;
    }
    println!("command: {}", std::env::args().collect::<Vec<_>>().join(" "));
    println!("commit: {}", git_commit());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let key = Key::new("bench_hits", "AAPL", 19358, 19358 + ROWS - 1, r#"{"window": 20, "kind": "sma"}"#);
    let cached = open(dir.path(), 64);
    let uncached = open(dir.path(), 0);
    let mut reader = features(&key);
    cached.put(&key, &mut reader).expect("publish the entry");
    println!(
        "entry: {ROWS} rows x (date + {FEATURES} float64), {} bytes of Parquet; {} s per measurement, {} runs",
        entry_bytes(dir.path()),
        args.seconds,
        args.runs
    );
    let c_store = CStore::open(dir.path());
    let c_key = CKey::new(&key);
    let projected = Request::new().with_columns(PROJECTION);
    let all = Request::new();

    println!("{:<10} {:>7} {:>12} {:>9} {:>9}   per-run hits/s", "path", "threads", "hits/s", "p50", "p99");
    for path in &args.paths {
        if path == "labels" {
            measure_labels(dir.path(), &args);
            continue;
        }
        for &threads in &args.threads {
            let mut runs = Vec::new();
            for _ in 0..args.runs {
                let measured = match path.as_str() {
                    "rust" => measure(threads, &args, || {
                        let data = cached.get(&key, &all).unwrap().expect("a hit");
                        assert_eq!(data.num_rows(), ROWS as usize);
                    }),
                    "c" => measure(threads, &args, || c_store.get(&c_key)),
                    "projected" => measure(threads, &args, || {
                        let data = uncached.get(&key, &projected).unwrap().expect("a hit");
                        assert_eq!(data.schema.fields().len(), PROJECTION.len());
                    }),
                    other => panic!("unknown path '{other}' (rust, c, projected, labels)"),
                };
                runs.push(measured);
            }
            report(path, threads, &runs);
        }
    }
    let stats = cached.stats();
    println!("rust store: {} hits, {} misses, {} bytes read from files", stats.hits, stats.misses, stats.bytes_read);
}

fn open(dir: &std::path::Path, memory_cache_mb: u64) -> Store {
    open_with(dir, &[("memory_cache_mb", &memory_cache_mb.to_string())])
}

fn open_with(dir: &std::path::Path, settings: &[(&str, &str)]) -> Store {
    let mut options = Options::default();
    options.set("cache_dir", dir.to_str().expect("a UTF-8 path")).unwrap();
    for (name, value) in settings {
        options.set(name, value).unwrap();
    }
    Store::open(options).expect("open the store")
}

/// The `labels` path: hits over many symbols with a metrics series per
/// symbol, against the same hits counted in one folded series.
fn measure_labels(dir: &std::path::Path, args: &Args) {
    let keys: Vec<Key> = (0..LABELLED_SYMBOLS)
        .map(|i| Key::new("bench_labels", format!("S{i:02}"), 19358, 19358 + ROWS - 1, r#"{"window": 20}"#))
        .collect();
    let per_symbol = open_with(dir, &[("metrics.max_symbols", "1000")]);
    let folded = open_with(dir, &[("metrics.max_symbols", "0")]);
    for key in &keys {
        per_symbol.put(key, &mut features(key)).expect("publish an entry");
    }
    let all = Request::new();
    let cycle = |store: &Store| {
        thread_local!(static NEXT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) });
        let i = NEXT.with(|n| {
            let i = n.get();
            n.set(i.wrapping_add(1));
            i
        });
        let data = store.get(&keys[i % keys.len()], &all).unwrap().expect("a hit");
        assert_eq!(data.num_rows(), ROWS as usize);
    };
    for store in [&per_symbol, &folded] {
        keys.iter().for_each(|_| cycle(store)); // every entry decoded into the memory cache
    }
    if let Some(side) = &args.labels_only {
        let store = if side == "per-symbol" { &per_symbol } else { &folded };
        for &threads in &args.threads {
            let runs: Vec<Measured> = (0..args.runs).map(|_| measure(threads, args, || cycle(store))).collect();
            report(side, threads, &runs);
        }
        return;
    }
    for &threads in &args.threads {
        let (mut labelled_runs, mut folded_runs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..args.runs {
            // Alternate which goes first, so that drift in the machine's
            // load does not favour one.
            let (labelled_run, folded_run) = if run % 2 == 0 {
                let labelled_run = measure(threads, args, || cycle(&per_symbol));
                (labelled_run, measure(threads, args, || cycle(&folded)))
            } else {
                let folded_run = measure(threads, args, || cycle(&folded));
                (measure(threads, args, || cycle(&per_symbol)), folded_run)
            };
            ratios.push(labelled_run.per_second() / folded_run.per_second());
            labelled_runs.push(labelled_run);
            folded_runs.push(folded_run);
        }
        report("per-symbol", threads, &labelled_runs);
        report("folded", threads, &folded_runs);
        let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "labels     {threads:>7} per-symbol/folded hits/s: median {:.3} [{}]",
            ratios[ratios.len() / 2],
            shown.join(", ")
        );
    }
    // The two stores must really have counted differently.
    let text = per_symbol.metrics().expect("render metrics");
    let named = (0..LABELLED_SYMBOLS).filter(|i| text.contains(&format!("featurestore_hits_total{{symbol=\"S{i:02}\"}}"))).count();
    assert_eq!(named, LABELLED_SYMBOLS, "the per-symbol store has a series per symbol");
    let text = folded.metrics().expect("render metrics");
    assert!(!text.contains("symbol=\"S00\""), "the folded store names no symbol");
    assert!(text.contains("featurestore_hits_total{symbol=\"other\"}"), "the folded store counts under other");
}

/// Runs `call` on `threads` threads, for `--seconds` or `--calls` each.
fn measure(threads: usize, args: &Args, call: impl Fn() + Sync) -> Measured {
    call(); // warm: the first call may decode the file
    let duration = Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let per_thread: Vec<Vec<Duration>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut latencies = Vec::with_capacity(1 << 16);
                    let thread_started = Instant::now();
                    loop {
                        let before = Instant::now();
                        call();
                        let after = Instant::now();
                        latencies.push(after - before);
                        let done = match args.calls {
                            Some(n) => latencies.len() as u64 >= n,
                            None => after - thread_started >= duration,
                        };
                        if done {
                            return latencies;
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a benchmark thread panicked")).collect()
    });
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = per_thread.into_iter().flatten().collect();
    latencies.sort_unstable();
    Measured { calls: latencies.len() as u64, elapsed, latencies }
}

fn report(path: &str, threads: usize, runs: &[Measured]) {
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let rates: Vec<f64> = runs.iter().map(Measured::per_second).collect();
    let p50 = median(runs.iter().map(|r| pct(&r.latencies, 0.50)).collect());
    let p99 = median(runs.iter().map(|r| pct(&r.latencies, 0.99)).collect());
    let shown: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "{path:<10} {threads:>7} {:>12.0} {:>6.2} us {:>6.2} us   [{}]",
        median(rates.clone()),
        p50,
        p99,
        shown.join(", ")
    );
}

/// The `q` quantile of sorted latencies, in microseconds.
fn pct(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6
}

fn features(key: &Key) -> RecordBatchIterator<std::vec::IntoIter<Result<RecordBatch, fstore::arrow::error::ArrowError>>> {
    let days: Vec<i32> = (key.start_date..=key.end_date).collect();
    let mut fields = vec![Field::new("date", DataType::Date32, false)];
    let mut columns: Vec<Arc<dyn fstore::arrow::array::Array>> = vec![Arc::new(Date32Array::from(days.clone()))];
    for c in 0..FEATURES {
        fields.push(Field::new(format!("f{c}"), DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from_iter_values(days.iter().map(|d| (f64::from(*d) * (c + 1) as f64).sin()))));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    RecordBatchIterator::new(vec![Ok(batch)].into_iter(), schema)
}

fn entry_bytes(dir: &std::path::Path) -> u64 {
    let mut pending = vec![dir.join("data")];
    let mut total = 0;
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                total += entry.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown (not a git checkout)".into())
}

/// A zero-initialised error, as C callers declare it.
fn no_error() -> fstore_error {
    unsafe { std::mem::zeroed::<fstore_error>() }
}

/// A store opened through the C API, as a C program holds it.
struct CStore(*mut fstore_store);

// SAFETY: fstore_store is thread-safe (the C API says so).
unsafe impl Sync for CStore {}

impl CStore {
    fn open(dir: &std::path::Path) -> CStore {
        let mut error = no_error();
        let dir = CString::new(dir.to_str().unwrap()).unwrap();
        unsafe {
            let mut options = c::fstore_options_new();
            assert_eq!(c::fstore_options_set(options, c"cache_dir".as_ptr(), dir.as_ptr(), &mut error), FSTORE_STATUS_OK);
            let mut store = std::ptr::null_mut();
            assert_eq!(c::fstore_store_open(options, &mut store, &mut error), FSTORE_STATUS_OK);
            c::fstore_options_free(&mut options);
            CStore(store)
        }
    }

    /// One hit: the call, then the stream read to its end and released.
    fn get(&self, key: &CKey) {
        let mut error = no_error();
        let mut stream = FFI_ArrowArrayStream::empty();
        unsafe {
            let status = c::fstore_store_get(self.0, &key.key, std::ptr::null(), &mut stream, &mut error);
            assert_eq!(status, FSTORE_STATUS_OK, "fstore_store_get");
            let mut schema = FFI_ArrowSchema::empty();
            assert_eq!((stream.get_schema().unwrap())(&mut stream, &mut schema), 0);
            assert_eq!(schema.children().count(), FEATURES + 1);
            drop(schema); // its release callback
            let mut rows = 0;
            loop {
                let mut array = FFI_ArrowArray::empty();
                assert_eq!((stream.get_next().unwrap())(&mut stream, &mut array), 0);
                if array.is_released() {
                    break;
                }
                rows += array.len();
                drop(array); // its release callback
            }
            assert_eq!(rows, ROWS as usize);
            // FFI_ArrowArrayStream's Drop calls the stream's release callback.
        }
    }
}

impl Drop for CStore {
    fn drop(&mut self) {
        unsafe { c::fstore_store_close(&mut self.0) };
    }
}

/// A key as C strings, kept alive while calls use it.
struct CKey {
    key: fstore_key,
    _strings: [CString; 3],
}

// SAFETY: read-only pointers into the strings it owns.
unsafe impl Sync for CKey {}

impl CKey {
    fn new(key: &Key) -> CKey {
        let strings = [
            CString::new(key.feature_set.as_str()).unwrap(),
            CString::new(key.symbol.as_str()).unwrap(),
            CString::new(key.config.as_str()).unwrap(),
        ];
        let key = fstore_key {
            feature_set: strings[0].as_ptr(),
            symbol: strings[1].as_ptr(),
            start_date: key.start_date,
            end_date: key.end_date,
            config: strings[2].as_ptr(),
            reserved: [std::ptr::null(); 4],
        };
        CKey { key, _strings: strings }
    }
}
