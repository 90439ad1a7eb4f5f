//! The training-workers demo: N worker threads ask for rolling features
//! (returns, moving averages, volatility) over synthetic daily prices for
//! several symbols, windows and date ranges, epoch after epoch, as a training
//! job's data loaders would. Every key is computed once; everything else hits.
//!
//!     cargo run --release --example training_workers -- --workers 8 --epochs 5

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use fstore::arrow::array::{Date32Array, Float64Array, RecordBatch};
use fstore::arrow::datatypes::{DataType, Field, Schema};
use fstore::arrow::record_batch::{RecordBatchIterator, RecordBatchReader};
use fstore::{Key, Options, Request, Stats, Store};

#[derive(Parser)]
#[command(about = "Training workers sharing one libfstore feature cache")]
struct Args {
    /// Worker threads, each walking every task once per epoch.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Epochs; the first is cold, the rest show the steady state.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Extra time each compute takes, standing in for an expensive feature job.
    #[arg(long, default_value_t = 20)]
    compute_ms: u64,
    /// Cache directory (default: $FSTORE_CACHE_DIR, else ~/.feature_cache).
    #[arg(long)]
    cache_dir: Option<String>,
    /// Use a new empty cache directory, so the first epoch is cold.
    #[arg(long)]
    fresh: bool,
}

const SYMBOLS: &[&str] = &["AAPL", "MSFT", "GOOGL", "TSLA", "BRK.B", "^GSPC"];
/// (feature set, window in days)
const FEATURES: &[(&str, usize)] = &[("returns", 1), ("sma", 5), ("sma", 20), ("volatility", 20)];
/// Quarters of 2023, as days since 1970-01-01.
const RANGES: &[(i32, i32)] = &[(19358, 19447), (19448, 19538), (19539, 19630), (19631, 19722)];

fn main() {
    let args = Args::parse();
    let mut options = Options::default();
    let fresh_dir = args.fresh.then(|| std::env::temp_dir().join(format!("fstore-demo-{}", std::process::id())));
    if let Some(dir) = args.cache_dir.clone().or_else(|| fresh_dir.as_ref().map(|d| d.display().to_string())) {
        options.set("cache_dir", &dir).expect("valid cache_dir");
    }
    let store = Arc::new(Store::open(options).unwrap_or_else(|e| {
        eprintln!("cannot open the feature cache: {e}");
        std::process::exit(1);
    }));
    let tasks = tasks();
    println!(
        "libfstore {} demo: {} workers x {} tasks x {} epochs, cache {} (manifest: {})",
        fstore::VERSION,
        args.workers,
        tasks.len(),
        args.epochs,
        store.cache_dir().display(),
        store.manifest_backend().name()
    );
    println!("{:>5} {:>8} {:>6} {:>6} {:>8} {:>6} {:>9} {:>10} {:>10}", "epoch", "requests", "hits", "misses", "computes", "waits", "hit ratio", "p50", "p99");

    let mut steady = (0u64, 0u64, Vec::new());
    for epoch in 1..=args.epochs {
        let before = store.stats();
        let latencies = run_epoch(&store, &tasks, args.workers, epoch, args.compute_ms);
        let delta = diff(store.stats(), before);
        let ratio = ratio(delta.hits, delta.misses);
        println!(
            "{epoch:>5} {:>8} {:>6} {:>6} {:>8} {:>6} {:>8.1}% {:>10} {:>10}",
            latencies.len(),
            delta.hits,
            delta.misses,
            delta.computes,
            delta.waits,
            ratio * 100.0,
            fmt(percentile(&latencies, 0.50)),
            fmt(percentile(&latencies, 0.99)),
        );
        if epoch > 1 {
            steady.0 += delta.hits;
            steady.1 += delta.misses;
            steady.2.extend(latencies);
        }
    }
    let total = store.stats();
    println!(
        "total: hits {} misses {} computes {} waits {} written {} B read {} B",
        total.hits, total.misses, total.computes, total.waits, total.bytes_written, total.bytes_read
    );
    if args.epochs > 1 {
        steady.2.sort();
        let ratio = ratio(steady.0, steady.1);
        println!(
            "steady state (epochs 2..{}): hit ratio {:.1}% (objective: at least 95%), p50 {} p99 {}",
            args.epochs,
            ratio * 100.0,
            fmt(percentile(&steady.2, 0.50)),
            fmt(percentile(&steady.2, 0.99)),
        );
    }
    match Arc::try_unwrap(store) {
        Ok(store) => store.close().expect("manifest flushed"),
        Err(_) => unreachable!("workers have finished"),
    }
    if let Some(dir) = fresh_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn tasks() -> Vec<Key> {
    let mut tasks = Vec::new();
    for symbol in SYMBOLS {
        for (feature, window) in FEATURES {
            for (start, end) in RANGES {
                let config = format!("{{\"window\": {window}, \"source\": \"synthetic-v1\"}}");
                tasks.push(Key::new(*feature, *symbol, *start, *end, config));
            }
        }
    }
    tasks
}

/// Every worker walks all tasks in its own order, so workers collide on keys.
fn run_epoch(store: &Arc<Store>, tasks: &[Key], workers: usize, epoch: usize, compute_ms: u64) -> Vec<Duration> {
    let mut latencies: Vec<Duration> = thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let store = Arc::clone(store);
                s.spawn(move || {
                    let mut order: Vec<usize> = (0..tasks.len()).collect();
                    shuffle(&mut order, (epoch * 1000 + w) as u64);
                    let mut latencies = Vec::with_capacity(order.len());
                    for i in order {
                        let started = Instant::now();
                        let data = store
                            .get_or_compute(&tasks[i], &Request::new(), |key| compute(key, compute_ms))
                            .unwrap_or_else(|e| panic!("worker {w}: {e}"));
                        latencies.push(started.elapsed());
                        assert_eq!(data.num_rows(), (tasks[i].end_date - tasks[i].start_date + 1) as usize);
                    }
                    latencies
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    latencies.sort();
    latencies
}

/// The feature job: synthetic prices for the range (plus warm-up), then the feature.
fn compute(key: &Key, compute_ms: u64) -> fstore::Result<Box<dyn RecordBatchReader>> {
    let window: usize = key.config.split("\"window\": ").nth(1).and_then(|s| s.split(',').next()).and_then(|s| s.parse().ok()).unwrap_or(1);
    thread::sleep(Duration::from_millis(compute_ms));
    let warmup = window as i32;
    let days: Vec<i32> = (key.start_date - warmup..=key.end_date).collect();
    let prices = prices(&key.symbol, &days);
    let returns: Vec<f64> = std::iter::once(0.0).chain(prices.windows(2).map(|w| w[1] / w[0] - 1.0)).collect();
    let values: Vec<f64> = (0..days.len())
        .map(|i| {
            let lo = i.saturating_sub(window - 1);
            match key.feature_set.as_str() {
                "returns" => returns[i],
                "sma" => prices[lo..=i].iter().sum::<f64>() / (i - lo + 1) as f64,
                _ => std_dev(&returns[lo..=i]) * (252f64).sqrt(),
            }
        })
        .collect();
    let skip = warmup as usize;
    let schema = Arc::new(Schema::new(vec![
        Field::new("date", DataType::Date32, false),
        Field::new("close", DataType::Float64, false),
        Field::new(key.feature_set.as_str(), DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Date32Array::from(days[skip..].to_vec())),
            Arc::new(Float64Array::from(prices[skip..].to_vec())),
            Arc::new(Float64Array::from(values[skip..].to_vec())),
        ],
    )
    .map_err(|e| fstore::Error::new(fstore::Status::CallbackFailed, e.to_string()))?;
    Ok(Box::new(RecordBatchIterator::new(vec![Ok(batch)], schema)))
}

/// A geometric random walk, the same for a symbol on every run.
fn prices(symbol: &str, days: &[i32]) -> Vec<f64> {
    let seed = fstore::lock_key(symbol).expect("valid symbol") as u64;
    let mut price = 100.0;
    days.iter()
        .map(|&day| {
            let u = (splitmix(seed ^ day as u64) >> 11) as f64 / (1u64 << 53) as f64;
            price *= 1.0 + (u - 0.5) * 0.04;
            price
        })
        .collect()
}

fn std_dev(xs: &[f64]) -> f64 {
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D049BB133111EB);
    x ^ (x >> 31)
}

fn shuffle(items: &mut [usize], seed: u64) {
    let mut state = seed;
    for i in (1..items.len()).rev() {
        state = splitmix(state);
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

fn diff(after: Stats, before: Stats) -> Stats {
    Stats {
        hits: after.hits - before.hits,
        misses: after.misses - before.misses,
        computes: after.computes - before.computes,
        compute_failures: after.compute_failures - before.compute_failures,
        waits: after.waits - before.waits,
        timeouts: after.timeouts - before.timeouts,
        cancellations: after.cancellations - before.cancellations,
        bytes_written: after.bytes_written - before.bytes_written,
        bytes_read: after.bytes_read - before.bytes_read,
    }
}

fn ratio(hits: u64, misses: u64) -> f64 {
    if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} us", d.as_micros())
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}
