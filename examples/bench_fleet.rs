//! The fleet benchmark: 32 worker processes on one symbol, the scenario where
//! the design libfstore replaces waited 620 ms at p99 on manifest row locks
//! (34 ms with advisory locks). Each worker asks for the same set of keys of
//! one symbol (different date ranges) in its own random order, round after
//! round; the first round is cold (every key computed once in the fleet, all
//! others wait for it), the rest are the steady state.
//!
//!     cargo run --release --example bench_fleet -- --runs 3
//!     cargo run --release --example bench_fleet -- --runs 3 --postgres "host=... user=..."
//!
//! Prints p50/p99/max per phase and mode for each run, then the median of the runs.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use fstore::arrow::array::{Date32Array, Float64Array, RecordBatch};
use fstore::arrow::datatypes::{DataType, Field, Schema};
use fstore::arrow::record_batch::RecordBatchIterator;
use fstore::{Key, Options, Request, Store};

#[derive(Parser, Clone)]
struct Args {
    #[arg(long, default_value_t = 32)]
    workers: usize,
    /// Distinct keys (date ranges) of the one symbol.
    #[arg(long, default_value_t = 16)]
    keys: usize,
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// How long one compute takes.
    #[arg(long, default_value_t = 50)]
    compute_ms: u64,
    /// Training work between two requests of a worker (0: request back to back).
    #[arg(long, default_value_t = 0)]
    think_ms: u64,
    /// The stores' memory cache (0: every hit decodes its file).
    #[arg(long, default_value_t = 64)]
    memory_cache_mb: u64,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also run with a PostgreSQL manifest and advisory locks on this server.
    #[arg(long)]
    postgres: Option<String>,
    #[arg(long, hide = true)]
    worker: Option<String>,
    #[arg(long, hide = true, default_value_t = 0)]
    worker_index: u64,
}

fn main() {
    let args = Args::parse();
    if let Some(spec) = &args.worker {
        return worker(&args, spec);
    }
    println!(
        "{} worker processes, one symbol, {} keys, {} rounds, compute {} ms, think {} ms, memory cache {} MiB, {} runs",
        args.workers, args.keys, args.rounds, args.compute_ms, args.think_ms, args.memory_cache_mb, args.runs
    );
    let mut modes = vec![("embedded, per-symbol locks", None, "symbol"), ("embedded, per-entry locks", None, "entry")];
    if let Some(dsn) = &args.postgres {
        modes.push(("postgres, per-symbol locks", Some(dsn.clone()), "symbol"));
        modes.push(("postgres, per-entry locks", Some(dsn.clone()), "entry"));
    }
    for (name, dsn, granularity) in modes {
        let mut cold_p99 = Vec::new();
        let mut warm_p99 = Vec::new();
        let mut warm_p50 = Vec::new();
        for run in 0..args.runs {
            let r = fleet_run(&args, dsn.as_deref(), granularity, run);
            println!(
                "{name} run {}: computes {}/{} | cold p50 {} p99 {} max {} | steady p50 {} p99 {} max {} ({} calls, {} lock waits)",
                run + 1,
                r.computes,
                args.keys,
                fmt(pct(&r.cold, 0.5)),
                fmt(pct(&r.cold, 0.99)),
                fmt(pct(&r.cold, 1.0)),
                fmt(pct(&r.warm, 0.5)),
                fmt(pct(&r.warm, 0.99)),
                fmt(pct(&r.warm, 1.0)),
                r.warm.len(),
                r.warm_waits
            );
            cold_p99.push(pct(&r.cold, 0.99));
            warm_p99.push(pct(&r.warm, 0.99));
            warm_p50.push(pct(&r.warm, 0.5));
        }
        let med = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (cold, warm, warm50) = (med(&mut cold_p99), med(&mut warm_p99), med(&mut warm_p50));
        println!(
            "{name} median of runs: steady p50 {} p99 {} ({:.1}x below 620 ms, {:.1}x below 34 ms); cold p99 {} (includes the {} ms computes)",
            fmt(warm50),
            fmt(warm),
            0.620 / warm.as_secs_f64(),
            0.034 / warm.as_secs_f64(),
            fmt(cold),
            args.compute_ms
        );
    }
}

struct RunResult {
    computes: usize,
    /// Waits for another caller's compute or lock during the steady state.
    warm_waits: u64,
    cold: Vec<Duration>,
    warm: Vec<Duration>,
}

fn fleet_run(args: &Args, dsn: Option<&str>, granularity: &str, run: usize) -> RunResult {
    let dir = tempfile::tempdir().unwrap();
    let schema = format!("bench_fleet_{}_{run}", std::process::id());
    let spec =
        format!("{}|{}|{}|{}|{}", dir.path().display(), dsn.unwrap_or(""), schema, granularity, args.memory_cache_mb);
    // Create the schema once, so workers measure locking rather than DDL.
    drop(Store::open(options(&spec)).unwrap());
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..args.workers)
        .map(|w| {
            Command::new(&exe)
                .args(["--worker", &spec, "--keys", &args.keys.to_string(), "--rounds", &args.rounds.to_string()])
                .args(["--compute-ms", &args.compute_ms.to_string(), "--worker-index", &w.to_string()])
                .args(["--think-ms", &args.think_ms.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outs: Vec<_> = children.iter_mut().map(|c| BufReader::new(c.stdout.take().unwrap())).collect();
    for out in &mut outs {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "READY");
    }
    for child in &mut children {
        drop(child.stdin.take()); // the barrier: everyone starts at once
    }
    let mut result = RunResult { computes: 0, warm_waits: 0, cold: vec![], warm: vec![] };
    for (child, out) in children.iter_mut().zip(outs) {
        for line in out.lines() {
            let line = line.unwrap();
            let mut parts = line.split(' ');
            match (parts.next(), parts.next()) {
                (Some("COMPUTES"), Some(n)) => result.computes += n.parse::<usize>().unwrap(),
                (Some("WARM_WAITS"), Some(n)) => result.warm_waits += n.parse::<u64>().unwrap(),
                (Some("COLD"), Some(ns)) => result.cold.push(Duration::from_nanos(ns.parse().unwrap())),
                (Some("WARM"), Some(ns)) => result.warm.push(Duration::from_nanos(ns.parse().unwrap())),
                _ => {}
            }
        }
        assert!(child.wait().unwrap().success(), "a worker failed");
    }
    if let Some(dsn) = dsn {
        let mut admin = postgres::Client::connect(dsn, postgres::NoTls).unwrap();
        admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).unwrap();
    }
    result.cold.sort();
    result.warm.sort();
    result
}

fn options(spec: &str) -> Options {
    let mut parts = spec.split('|');
    let mut next = || parts.next().expect("a complete worker spec");
    let (dir, dsn, schema, granularity, memory_mb) = (next(), next(), next(), next(), next());
    let mut o = Options::default();
    o.set("cache_dir", dir).unwrap();
    o.set("lock.granularity", granularity).unwrap();
    o.set("memory_cache_mb", memory_mb).unwrap();
    if dsn.is_empty() {
        o.set("manifest", "duckdb").unwrap();
    } else {
        o.set("manifest", "postgres").unwrap();
        o.set("postgres.dsn", dsn).unwrap();
        o.set("postgres.schema", schema).unwrap();
        o.set("postgres.pool_min", "1").unwrap();
    }
    o
}

fn worker(args: &Args, spec: &str) {
    let store = Store::open(options(spec)).unwrap();
    let keys: Vec<Key> = (0..args.keys as i32).map(|i| Key::new("returns", "AAPL", 19000 + i * 300, 19251 + i * 300, "{}")).collect();
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut sink = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut sink);
    let mut computes = 0;
    let mut state = 0x9E3779B97F4A7C15u64 ^ (args.worker_index + 1).wrapping_mul(0xBF58476D1CE4E5B9);
    let mut out = String::new();
    let mut waits_before_warm = 0;
    for round in 0..args.rounds {
        if round == 1 {
            waits_before_warm = store.stats().waits;
        }
        let mut order: Vec<usize> = (0..keys.len()).collect();
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        for i in order {
            let t = Instant::now();
            store
                .get_or_compute(&keys[i], &Request::new(), |k| {
                    computes += 1;
                    std::thread::sleep(Duration::from_millis(args.compute_ms));
                    Ok(Box::new(features(k)))
                })
                .unwrap();
            out.push_str(&format!("{} {}\n", if round == 0 { "COLD" } else { "WARM" }, t.elapsed().as_nanos()));
            std::thread::sleep(Duration::from_millis(args.think_ms));
        }
    }
    let warm_waits = if args.rounds > 1 { store.stats().waits - waits_before_warm } else { 0 };
    print!("{out}COMPUTES {computes}\nWARM_WAITS {warm_waits}\n");
    store.close().unwrap();
}

fn features(key: &Key) -> RecordBatchIterator<std::vec::IntoIter<Result<RecordBatch, fstore::arrow::error::ArrowError>>> {
    let days: Vec<i32> = (key.start_date..=key.end_date).collect();
    let mut fields = vec![Field::new("date", DataType::Date32, false)];
    let mut columns: Vec<Arc<dyn fstore::arrow::array::Array>> = vec![Arc::new(Date32Array::from(days.clone()))];
    for c in 0..16 {
        fields.push(Field::new(format!("f{c}"), DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from_iter_values(days.iter().map(|d| ((d * (c + 1)) as f64).sin()))));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    RecordBatchIterator::new(vec![Ok(batch)].into_iter(), schema)
}

fn pct(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.0} us", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}
