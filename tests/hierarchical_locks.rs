//! Locks in two levels under `symbol` granularity: a compute holds its
//! symbol's key in shared mode and its entry's key exclusively. So computes
//! of different entries of one symbol run at the same time, in separate
//! processes, while another program that takes the plain symbol key
//! (`pg_advisory_xact_lock(lock_key(symbol))`) excludes every one of them and
//! waits for the ones already running.
//!
//! Advisory locks are server-wide, so each test uses symbols of its own.
//! The children log the wall-clock interval of their compute; overlapping
//! intervals are the proof of parallelism (start-up time does not blur it).

mod common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::pg::{admin, fresh_schema, pg_options};
use common::{append_line, child_barrier, env, key, reader, sample, Children};
use fstore::{Options, Request, Status, Store};

const COMPUTE_MS: u64 = 700;

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

/// A child: opens a store (embedded, or on the test server when CHILD_SCHEMA
/// is set), waits at the barrier, computes one entry of CHILD_SYMBOL and logs
/// "<start> <begin_ms> <end_ms>" of its compute to CHILD_LOG. While
/// computing, it touches CHILD_LOG.<start> so the parent knows.
#[test]
fn child_worker() {
    if std::env::var_os("FSTORE_TEST_CHILD").is_none() {
        return;
    }
    let cache = env("CHILD_CACHE");
    let options = match std::env::var("CHILD_SCHEMA") {
        Ok(schema) => pg_options(Path::new(&cache), &schema),
        Err(_) => {
            let mut o = Options::default();
            o.set("cache_dir", &cache).unwrap();
            o
        }
    };
    let store = Store::open(options).unwrap();
    let start: i32 = env("CHILD_START").parse().unwrap();
    let log = env("CHILD_LOG");
    let symbol = env("CHILD_SYMBOL");
    child_barrier();
    store
        .get_or_compute(&key(&symbol, start, start + 9), &Request::new(), |k| {
            let begin = now_ms();
            std::fs::write(format!("{log}.{start}"), b"computing").unwrap();
            std::thread::sleep(Duration::from_millis(COMPUTE_MS));
            append_line(Path::new(&log), &format!("{start} {begin} {}", now_ms()));
            Ok(reader(sample(k, 1)))
        })
        .unwrap();
    store.close().unwrap();
}

struct Interval {
    start: i32,
    begin: u128,
    end: u128,
}

/// Runs one child per start date, released together, and returns the
/// compute intervals they logged.
fn compute_in_children(dir: &Path, symbol: &str, starts: &[i32], schema: Option<&str>) -> Vec<Interval> {
    let log = dir.join("computes.log");
    let envs: Vec<Vec<(String, String)>> = starts
        .iter()
        .map(|start| {
            let mut e = vec![
                ("CHILD_CACHE".to_string(), dir.join("cache").display().to_string()),
                ("CHILD_LOG".to_string(), log.display().to_string()),
                ("CHILD_START".to_string(), start.to_string()),
                ("CHILD_SYMBOL".to_string(), symbol.to_string()),
            ];
            if let Some(schema) = schema {
                e.push(("CHILD_SCHEMA".to_string(), schema.to_string()));
            }
            e
        })
        .collect();
    let mut children = Children::spawn("child_worker", &envs);
    let outs = children.release_together();
    let results = children.finish(outs);
    assert!(results.iter().all(|(ok, _)| *ok), "{results:?}");
    read_intervals(&log)
}

fn read_intervals(log: &Path) -> Vec<Interval> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            Interval { start: f[0].parse().unwrap(), begin: f[1].parse().unwrap(), end: f[2].parse().unwrap() }
        })
        .collect()
}

fn assert_all_overlap(intervals: &[Interval], entries: usize) {
    let mut starts: Vec<i32> = intervals.iter().map(|i| i.start).collect();
    starts.sort();
    starts.dedup();
    assert_eq!((intervals.len(), starts.len()), (entries, entries), "one compute per entry");
    let latest_begin = intervals.iter().map(|i| i.begin).max().unwrap();
    let earliest_end = intervals.iter().map(|i| i.end).min().unwrap();
    // Serialised computes would each begin after the previous one ended.
    assert!(
        latest_begin < earliest_end,
        "computes of one symbol ran one after another: last began {} ms after the first ended",
        latest_begin - earliest_end
    );
}

#[test]
fn computes_of_one_symbol_run_in_parallel_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let intervals = compute_in_children(dir.path(), "NVDA", &[100, 200, 300], None);
    assert_all_overlap(&intervals, 3);
}

#[test]
fn computes_of_one_symbol_run_in_parallel_across_processes_with_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema("t_hier_parallel");
    // Create the schema once, so the children do not race to.
    drop(Store::open(pg_options(&dir.path().join("cache"), &schema)).unwrap());
    let intervals = compute_in_children(dir.path(), "AVGO", &[100, 200, 300], Some(&schema));
    assert_all_overlap(&intervals, 3);
}

#[test]
fn a_plain_symbol_lock_held_elsewhere_blocks_every_compute_of_the_symbol() {
    const SYMBOL: &str = "TSM";
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(pg_options(dir.path(), &fresh_schema("t_hier_plain"))).unwrap();
    let mut holder = admin();
    let mut txn = holder.transaction().unwrap();
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&fstore::lock_key(SYMBOL).unwrap()]).unwrap();

    let short = Request::new().with_timeout(Duration::from_millis(300));
    for start in [100, 200, 300] {
        let err = store.get_or_compute(&key(SYMBOL, start, start + 9), &short, |_| unreachable!()).unwrap_err();
        assert_eq!(err.status(), Status::Timeout, "entry {start}: {err}");
    }
    // Another symbol is not affected.
    store.get_or_compute(&key("AMD", 100, 109), &short, |k| Ok(reader(sample(k, 1)))).unwrap();

    txn.commit().unwrap();
    for start in [100, 200, 300] {
        store.get_or_compute(&key(SYMBOL, start, start + 9), &short, |k| Ok(reader(sample(k, 2)))).unwrap();
    }
}

#[test]
fn a_plain_symbol_lock_waits_for_the_computes_already_running() {
    const SYMBOL: &str = "ASML";
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema("t_hier_waits");
    drop(Store::open(pg_options(&dir.path().join("cache"), &schema)).unwrap());
    let log = dir.path().join("computes.log");
    let starts = [100, 200];

    let parent = std::thread::spawn({
        let log = log.clone();
        move || {
            // Once both children are computing, take the plain symbol key as
            // another program would: it must wait until both computes end.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !starts.iter().all(|s| Path::new(&format!("{}.{s}", log.display())).exists()) {
                assert!(Instant::now() < deadline, "the children never started computing");
                std::thread::sleep(Duration::from_millis(5));
            }
            let mut client = admin();
            let mut txn = client.transaction().unwrap();
            txn.execute("SELECT pg_advisory_xact_lock($1)", &[&fstore::lock_key(SYMBOL).unwrap()]).unwrap();
            let acquired = now_ms();
            txn.commit().unwrap();
            acquired
        }
    });
    let intervals = compute_in_children(dir.path(), SYMBOL, &starts, Some(&schema));
    let acquired = parent.join().unwrap();
    assert_all_overlap(&intervals, 2);
    for i in &intervals {
        assert!(acquired >= i.end, "the plain symbol lock was granted {} ms before compute {} ended", i.end - acquired, i.start);
    }
}
