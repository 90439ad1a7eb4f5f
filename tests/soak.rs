//! A soak: threads in several processes mix `get_or_compute`, `get`, `put`
//! and `invalidate` over more keys than the memory cache holds, embedded and
//! with PostgreSQL, for FSTORE_SOAK_SECONDS (default 30) per mode.
//!
//! The data of a key is a function of the key (`common::sample`); a compute
//! and a put both write it, tagged with who wrote it, and every read checks
//! it. Each worker process also checks what it holds: file descriptors before
//! and after (store closed), and its resident memory, sampled throughout; and
//! how long closing its store takes. With PostgreSQL, no libfstore session
//! may remain once every store is closed.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::pg::{dsn, TestDatabase};
use common::proc_stats::{fd_targets, open_fds, rss_kib, RssSampler};
use common::workers::{emit, wait_for_parent, wait_for_stdin_to_close, Worker};
use common::{check_sample, env, reader, sample};
use fstore::{Data, Key, Options, Request, Status, Store};

const PROCESSES: usize = 3;
const THREADS: usize = 4;
const KEYS: i32 = 64;
/// Rows per entry: about 40 KiB decoded (date32, float64, int64), so the
/// key space (about 2.5 MiB) is larger than the memory cache.
const ROWS: i32 = 2000;
const MEMORY_CACHE_MB: u64 = 1;
/// What a worker may hold beyond its baseline (the RSS with its store open,
/// before the run) and the memory cache: entries decoded and in flight (a
/// few per thread, 40 KiB each), the allocator's per-thread arenas and the
/// embedded manifest's DuckDB buffers. Measured on the development machine:
/// peaks of 25 to 32 MiB over the baseline embedded, 12 with PostgreSQL.
const RSS_ALLOWANCE_MIB: u64 = 64;
/// How much the median RSS of the run's last third may exceed that of its
/// first third: steady work must not keep growing. (Measured: -9 to +9 MiB,
/// the allocator's and DuckDB's ups and downs.)
const RSS_GROWTH_MIB: u64 = 16;
/// How long a closed store's connections may take to go away: a connection
/// the pool was still opening in the background outlives `close` briefly.
const FDS_SETTLE: Duration = Duration::from_secs(5);
/// The longest `close` may take: it flushes what the manifest has not
/// recorded yet, which must not pile up while the workers run.
const CLOSE_WITHIN: Duration = Duration::from_secs(30);
/// How long the parent waits for a worker's report after the run: long
/// enough to see how late a slow close is, not forever.
const REPORT_WITHIN: Duration = Duration::from_secs(300);
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// Modes take turns: each measures its own processes on a quiet machine.
static ONE_MODE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn soak_seconds() -> u64 {
    std::env::var("FSTORE_SOAK_SECONDS").ok().map_or(30, |s| {
        s.parse().unwrap_or_else(|_| panic!("FSTORE_SOAK_SECONDS='{s}' is not a whole number of seconds"))
    })
}

fn soak_key(index: i32) -> Key {
    let start = index * 10_000;
    Key::new("soak", format!("SYM{}", index % 8), start, start + ROWS - 1, r#"{"window": 20}"#)
}

// Tags say who wrote an entry: process, thread, and whether by compute or put.
const BY_COMPUTE: i64 = 1;
const BY_PUT: i64 = 2;

fn tag(process: usize, thread: usize, how: i64) -> i64 {
    process as i64 * 10_000 + thread as i64 * 10 + how
}

fn is_valid_tag(tag: i64) -> bool {
    let (process, thread, how) = (tag / 10_000, tag / 10 % 1000, tag % 10);
    (0..PROCESSES as i64).contains(&process) && (0..THREADS as i64).contains(&thread) && (how == BY_COMPUTE || how == BY_PUT)
}

fn options(mode: &str, cache: &Path) -> Options {
    let mut o = Options::default();
    o.set("cache_dir", cache.to_str().unwrap()).unwrap();
    o.set("memory_cache_mb", &MEMORY_CACHE_MB.to_string()).unwrap();
    match mode {
        "embedded" => o.set("manifest", "duckdb").unwrap(),
        _ => {
            o.set("manifest", "postgres").unwrap();
            o.set("postgres.dsn", &env("CHILD_DSN")).unwrap();
        }
    }
    o
}

/// What one thread did and found.
#[derive(Default)]
struct Tally {
    counts: HashMap<&'static str, u64>,
    problems: Vec<String>,
}

impl Tally {
    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    fn problem(&mut self, what: String) {
        self.count("problems");
        if self.problems.len() < 5 {
            self.problems.push(what);
        }
    }

    /// Checks data read for `key`.
    fn check(&mut self, op: &str, key: &Key, data: &Data) {
        self.count("reads_checked");
        match check_sample(key, data) {
            Ok(tag) if is_valid_tag(tag) => {}
            Ok(tag) => self.problem(format!("{op} {key:?}: unknown tag {tag}")),
            Err(why) => self.problem(format!("{op} {key:?}: wrong data: {why}")),
        }
    }

    fn merge(&mut self, other: Tally) {
        for (what, n) in other.counts {
            *self.counts.entry(what).or_default() += n;
        }
        for p in other.problems {
            if self.problems.len() < 5 {
                self.problems.push(p);
            }
        }
    }
}

/// A small deterministic generator (xorshift), seeded per thread.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn run_thread(store: &Store, process: usize, thread: usize, until: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ ((process as u64) << 32 | thread as u64 + 1));
    let request = Request::new();
    while Instant::now() < until {
        let k = soak_key(dice.below(KEYS as u64) as i32);
        match dice.below(100) {
            0..40 => {
                tally.count("get");
                match store.get(&k, &request) {
                    Ok(Some(data)) => tally.check("get", &k, &data),
                    Ok(None) => tally.count("get_absent"),
                    Err(e) => tally.problem(format!("get {k:?}: {e:?}")),
                }
            }
            40..75 => {
                tally.count("get_or_compute");
                let mut computed = false;
                let got = store.get_or_compute(&k, &request, |k| {
                    computed = true;
                    Ok(reader(sample(k, tag(process, thread, BY_COMPUTE))))
                });
                if computed {
                    tally.count("computed");
                }
                match got {
                    Ok(data) => tally.check("get_or_compute", &k, &data),
                    Err(e) => tally.problem(format!("get_or_compute {k:?}: {e:?}")),
                }
            }
            75..90 => {
                tally.count("put");
                if let Err(e) = store.put(&k, reader(sample(&k, tag(process, thread, BY_PUT))).as_mut()) {
                    tally.problem(format!("put {k:?}: {e:?}"));
                }
            }
            _ => {
                tally.count("invalidate");
                match store.invalidate(&k) {
                    Ok(()) => tally.count("invalidated"),
                    Err(e) if e.status() == Status::NotFound => {}
                    Err(e) => tally.problem(format!("invalidate {k:?}: {e:?}")),
                }
            }
        }
    }
    tally
}

/// The samples taken in [from, to) of the run, in KiB, sorted.
fn sorted_between(samples: &[(Duration, u64)], from: Duration, to: Duration) -> Vec<u64> {
    let mut kib: Vec<u64> = samples.iter().filter(|(t, _)| *t >= from && *t < to).map(|(_, kib)| *kib).collect();
    kib.sort_unstable();
    kib
}

fn median(sorted: &[u64]) -> u64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

/// Open file descriptors once they stop changing (or after `bound`), and how
/// long that took: a closed store's last connections close on a pool thread.
fn settled_fds(bound: Duration) -> (usize, Duration) {
    let started = Instant::now();
    let mut last = open_fds();
    let mut unchanged = 0;
    while unchanged < 5 && started.elapsed() < bound {
        std::thread::sleep(Duration::from_millis(20));
        let now = open_fds();
        unchanged = if now == last { unchanged + 1 } else { 0 };
        last = now;
    }
    (last, started.elapsed())
}

/// One worker process: warms up, reports its file descriptors, waits for
/// "go", runs THREADS threads until the time is up, closes its store,
/// reports, and waits for the parent before exiting.
#[test]
fn child_soak_worker() {
    if std::env::var_os("FSTORE_TEST_CHILD").is_none() {
        return;
    }
    let process: usize = env("CHILD_PROCESS").parse().unwrap();
    let mode = env("CHILD_MODE");
    let cache = std::path::PathBuf::from(env("CHILD_CACHE"));
    let seconds: u64 = env("CHILD_SECONDS").parse().unwrap();
    // A first store, opened, used and closed, so that what a process sets up
    // once (and keeps) is not counted as a leak of the store under test.
    let warm_up = Store::open(options(&mode, &cache)).unwrap();
    warm_up.get(&soak_key(0), &Request::new()).unwrap();
    warm_up.close().unwrap();
    let (fds_before, _) = settled_fds(FDS_SETTLE);
    let fd_targets_before = fd_targets();
    emit("READY");
    wait_for_parent();

    let store = Store::open(options(&mode, &cache)).unwrap();
    let baseline_kib = rss_kib();
    let sampler = RssSampler::start(SAMPLE_EVERY);
    let run = Duration::from_secs(seconds);
    let until = Instant::now() + run;
    let mut tally = Tally::default();
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS).map(|t| s.spawn({
            let store = &store;
            move || run_thread(store, process, t, until)
        })).collect();
        for t in threads {
            tally.merge(t.join().unwrap());
        }
    });
    let overrun = Instant::now().saturating_duration_since(until);
    let samples = sampler.stop();
    let closing = Instant::now();
    let closed = store.close();
    let close_took = closing.elapsed();
    let fds_at_close = open_fds();
    let (fds_after, settled_in) = settled_fds(FDS_SETTLE);

    let mut counts: Vec<_> = tally.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    counts.sort();
    emit(&format!("COUNTS {}", counts.join(" ")));
    for p in &tally.problems {
        emit(&format!("PROBLEM {p}"));
    }
    emit(&format!("CLOSE {}", closed.map_or_else(|e| format!("error {e:?}"), |()| "ok".into())));
    emit(&format!("TIMES last_calls_ended_ms={} close_ms={}", overrun.as_millis(), close_took.as_millis()));
    let third = run / 3;
    let all = sorted_between(&samples, Duration::ZERO, Duration::MAX);
    emit(&format!(
        "RSS baseline_kib={baseline_kib} peak_kib={} first_third_median_kib={} last_third_median_kib={} samples={}",
        all.last().copied().unwrap_or(0),
        median(&sorted_between(&samples, Duration::ZERO, third)),
        median(&sorted_between(&samples, run - third, Duration::MAX)),
        samples.len()
    ));
    emit(&format!(
        "FDS before={fds_before} after={fds_after} at_close={fds_at_close} settled_ms={}",
        settled_in.as_millis()
    ));
    if fds_after != fds_before {
        let after = fd_targets();
        let new: Vec<_> = after.iter().filter(|t| !fd_targets_before.contains(t)).collect();
        emit(&format!("FDS_NEW {new:?}"));
    }
    // Held open until the parent has counted the server's sessions.
    emit("CLOSED");
    wait_for_stdin_to_close();
}

/// `name=value` pairs of a worker's line starting with `prefix`.
fn fields(lines: &[String], prefix: &str) -> HashMap<String, u64> {
    let line = lines.iter().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} line in {lines:?}"));
    line.split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(k, v)| v.parse().ok().map(|v| (k.to_string(), v)))
        .collect()
}

fn soak(mode: &str) {
    let _turn = ONE_MODE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let seconds = soak_seconds();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let database = (mode == "postgres")
        .then(|| TestDatabase::create(&dsn(), &format!("fstore_soak_{}", std::process::id()), &[]));
    let mut env = vec![
        ("CHILD_MODE".to_string(), mode.to_string()),
        ("CHILD_CACHE".into(), cache.display().to_string()),
        ("CHILD_SECONDS".into(), seconds.to_string()),
    ];
    if let Some(database) = &database {
        env.push(("CHILD_DSN".into(), database.dsn.clone()));
        // Create the schema once, before the workers start.
        Store::open(database.options(&cache)).unwrap().close().unwrap();
    }
    let mut workers: Vec<Worker> = (0..PROCESSES)
        .map(|p| {
            let mut env = env.clone();
            env.push(("CHILD_PROCESS".into(), p.to_string()));
            Worker::spawn(&format!("{mode} soak worker {p}"), "child_soak_worker", &env, &[])
        })
        .collect();
    for w in &mut workers {
        assert!(w.wait_for("READY", Duration::from_secs(120)).is_some(), "{} never got ready", w.name);
    }
    for w in &mut workers {
        w.send("go");
    }
    let started = Instant::now();
    let bound = Duration::from_secs(seconds) + REPORT_WITHIN;
    for w in &mut workers {
        let left = (started + bound).saturating_duration_since(Instant::now());
        assert!(w.wait_for("CLOSED", left).is_some(), "{} did not close its store within {bound:?} of the start", w.name);
    }
    eprintln!("{mode} soak: {PROCESSES} processes x {THREADS} threads, {KEYS} keys, {:.1?}", started.elapsed());

    // Every store is closed, the processes still run: no session may remain.
    if let Some(database) = &database {
        // A backend may take a moment to notice its client left.
        let counting = Instant::now();
        let at_close = database.libfstore_sessions();
        let mut sessions = at_close;
        while sessions > 0 && counting.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
            sessions = database.libfstore_sessions();
        }
        eprintln!(
            "{mode} soak: libfstore sessions on the server once every store closed: {at_close}, \
             {sessions} after {:.1?}",
            counting.elapsed()
        );
        assert_eq!(sessions, 0, "PostgreSQL connections outlived their stores");
    }

    let mut failures = Vec::new();
    for w in workers {
        let name = w.name.clone();
        let (ok, lines) = w.finish(Duration::from_secs(60));
        for line in &lines {
            eprintln!("{name}: {line}");
        }
        if !ok {
            failures.push(format!("{name} did not exit cleanly"));
            continue;
        }
        let counts = fields(&lines, "COUNTS");
        for op in ["get", "get_or_compute", "put", "invalidate", "reads_checked"] {
            if counts.get(op).copied().unwrap_or(0) == 0 {
                failures.push(format!("{name} never did {op}"));
            }
        }
        if let Some(n) = counts.get("problems") {
            failures.push(format!("{name}: {n} read(s) or call(s) went wrong (PROBLEM lines above)"));
        }
        if !lines.iter().any(|l| l == "CLOSE ok") {
            failures.push(format!("{name}: closing its store failed"));
        }
        let close_ms = fields(&lines, "TIMES")["close_ms"];
        if close_ms > CLOSE_WITHIN.as_millis() as u64 {
            failures.push(format!(
                "{name}: closing its store took {close_ms} ms (bound {CLOSE_WITHIN:?}): the manifest fell behind \
                 the writes of the run and close waited for all of it"
            ));
        }
        let fds = fields(&lines, "FDS ");
        if fds["before"] != fds["after"] {
            failures.push(format!("{name}: {} file descriptors before, {} after", fds["before"], fds["after"]));
        }
        let rss = fields(&lines, "RSS");
        let bound_kib = rss["baseline_kib"] + ((MEMORY_CACHE_MB + RSS_ALLOWANCE_MIB) << 10);
        eprintln!(
            "{name}: RSS peak {} MiB, bound {} MiB (baseline {} MiB + memory cache {MEMORY_CACHE_MB} MiB + \
             allowance {RSS_ALLOWANCE_MIB} MiB); median {} MiB in the first third, {} MiB in the last",
            rss["peak_kib"] >> 10,
            bound_kib >> 10,
            rss["baseline_kib"] >> 10,
            rss["first_third_median_kib"] >> 10,
            rss["last_third_median_kib"] >> 10
        );
        if rss["peak_kib"] > bound_kib {
            failures.push(format!("{name}: RSS peaked at {} KiB, over the bound of {bound_kib} KiB", rss["peak_kib"]));
        }
        if rss["last_third_median_kib"] > rss["first_third_median_kib"] + (RSS_GROWTH_MIB << 10) {
            failures.push(format!(
                "{name}: RSS grew from a median of {} KiB (first third) to {} KiB (last third)",
                rss["first_third_median_kib"], rss["last_third_median_kib"]
            ));
        }
    }
    assert!(failures.is_empty(), "{mode} soak:\n  {}", failures.join("\n  "));

    // What is left in the cache is every key's own data.
    let mut o = match &database {
        Some(database) => database.options(&cache),
        None => {
            let mut o = Options::default();
            o.set("cache_dir", cache.to_str().unwrap()).unwrap();
            o.set("manifest", "duckdb").unwrap();
            o
        }
    };
    o.set("memory_cache_mb", "0").unwrap();
    let store = Store::open(o).unwrap();
    let mut present = 0;
    for i in 0..KEYS {
        let k = soak_key(i);
        if let Some(data) = store.get(&k, &Request::new()).unwrap() {
            let tag = check_sample(&k, &data).unwrap_or_else(|why| panic!("entry {k:?} at the end: {why}"));
            assert!(is_valid_tag(tag), "entry {k:?} at the end has tag {tag}");
            present += 1;
        }
    }
    eprintln!("{mode} soak: {present} of {KEYS} keys have an entry at the end, each holding its key's data");
    store.close().unwrap();
}

#[test]
fn soak_embedded() {
    if std::env::var_os("FSTORE_TEST_CHILD").is_some() {
        return;
    }
    soak("embedded");
}

#[test]
fn soak_postgres() {
    if std::env::var_os("FSTORE_TEST_CHILD").is_some() {
        return;
    }
    soak("postgres");
}
