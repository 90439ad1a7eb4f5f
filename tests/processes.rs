//! Exactly-once compute across real OS processes sharing one cache directory.
//!
//! The test binary re-executes itself: `child_worker` does nothing unless
//! FSTORE_TEST_CHILD is set, in which case it opens a store, waits at the
//! barrier and asks for one key whose compute sleeps and appends a line to an
//! O_APPEND log outside the library.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{count_lines, env, key, Children};
use fstore::{Options, Request, Store};

const COMPUTE_MS: u64 = 300;

#[test]
fn child_worker() {
    if std::env::var_os("FSTORE_TEST_CHILD").is_none() {
        return;
    }
    let mut options = Options::default();
    options.set("cache_dir", &env("CHILD_CACHE")).unwrap();
    options.set("lock.cross_process", &env("CHILD_CROSS_PROCESS")).unwrap();
    options.set("lock.granularity", &env("CHILD_GRANULARITY")).unwrap();
    common::run_child(Store::open(options).unwrap(), "AAPL");
}

struct Run {
    log: std::path::PathBuf,
    results: Vec<(bool, Vec<String>)>,
}

fn run_children(dir: &Path, ranges: &[(i32, i32)], per_range: usize, cross_process: bool, granularity: &str) -> Run {
    let log = dir.join("runs.log");
    let cache = dir.join("cache");
    let mut envs = Vec::new();
    for &(start, end) in ranges {
        for _ in 0..per_range {
            envs.push(vec![
                ("CHILD_CACHE".to_string(), cache.display().to_string()),
                ("CHILD_LOG".into(), log.display().to_string()),
                ("CHILD_CROSS_PROCESS".into(), cross_process.to_string()),
                ("CHILD_GRANULARITY".into(), granularity.into()),
                ("CHILD_START".into(), start.to_string()),
                ("CHILD_END".into(), end.to_string()),
                ("CHILD_SLEEP_MS".into(), COMPUTE_MS.to_string()),
            ]);
        }
    }
    let mut children = Children::spawn("child_worker", &envs);
    let outs = children.release_together();
    let results = children.finish(outs);
    Run { log, results }
}

fn digests(run: &Run) -> Vec<String> {
    run.results.iter().flat_map(|(_, lines)| lines.iter().filter(|l| l.starts_with("FSTORE_DIGEST")).cloned()).collect()
}

#[test]
fn processes_on_one_missing_key_compute_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_children(dir.path(), &[(19000, 19100)], 8, true, "symbol");
    assert!(run.results.iter().all(|(ok, _)| *ok), "{:?}", run.results);
    assert_eq!(count_lines(&run.log), 1, "{}", std::fs::read_to_string(&run.log).unwrap());
    let digests = digests(&run);
    assert_eq!(digests.len(), 8);
    assert!(digests.iter().all(|d| d == &digests[0]), "processes got different data");
}

/// The same test with coordination off must fail the exactly-once check,
/// proving the test can fail.
#[test]
fn without_cross_process_locks_processes_compute_more_than_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_children(dir.path(), &[(19000, 19100)], 8, false, "symbol");
    assert!(run.results.iter().all(|(ok, _)| *ok), "{:?}", run.results);
    assert!(count_lines(&run.log) > 1, "coordination off, yet only one compute");
}

#[test]
fn entry_granularity_computes_each_range_once() {
    let dir = tempfile::tempdir().unwrap();
    let ranges = [(100, 200), (201, 300), (301, 400)];
    let started = Instant::now();
    let run = run_children(dir.path(), &ranges, 4, true, "entry");
    let elapsed = started.elapsed();
    assert!(run.results.iter().all(|(ok, _)| *ok), "{:?}", run.results);
    let log = std::fs::read_to_string(&run.log).unwrap();
    let mut starts: Vec<&str> = log.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    starts.sort();
    assert_eq!(starts, ["100", "201", "301"], "one compute per entry: {log}");
    // Serialised per symbol, three computes would take at least 3 x 300 ms.
    // Process start-up is part of `elapsed`, so this only catches serialisation.
    eprintln!("entry granularity: 12 processes, 3 entries in {elapsed:?}");
}

#[test]
fn a_leader_killed_with_sigkill_releases_the_lock_and_leaves_no_half_entry() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let log = dir.path().join("runs.log");
    let marker = dir.path().join("started");
    let base = |sleep: u64| {
        vec![
            ("CHILD_CACHE".to_string(), cache.display().to_string()),
            ("CHILD_LOG".into(), log.display().to_string()),
            ("CHILD_CROSS_PROCESS".into(), "true".into()),
            ("CHILD_GRANULARITY".into(), "symbol".into()),
            ("CHILD_START".into(), "5".into()),
            ("CHILD_END".into(), "50".into()),
            ("CHILD_SLEEP_MS".into(), sleep.to_string()),
        ]
    };
    let mut victim_env = base(60_000);
    victim_env.push(("CHILD_STARTED_MARKER".into(), marker.display().to_string()));
    let mut victim = Children::spawn("child_worker", &[victim_env]);
    let victim_out = victim.release_together();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the victim never started computing");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The victim holds the lock and is mid-compute. Kill it outright.
    let pid = victim.pids()[0] as libc_pid;
    assert_eq!(unsafe { kill(pid, 9) }, 0);
    let results = victim.finish(victim_out);
    assert!(!results[0].0, "the victim was killed");

    // Nothing half-written is visible, and the next process computes.
    let mut options = Options::default();
    options.set("cache_dir", cache.to_str().unwrap()).unwrap();
    let store = Store::open(options).unwrap();
    assert!(store.get(&key("AAPL", 5, 50), &Request::new()).unwrap().is_none());
    let mut successor = Children::spawn("child_worker", &[base(10)]);
    let outs = successor.release_together();
    let results = successor.finish(outs);
    assert!(results[0].0, "{results:?}");
    assert_eq!(count_lines(&log), 2);
    assert_eq!(store.get(&key("AAPL", 5, 50), &Request::new()).unwrap().unwrap().num_rows(), 46);
}

#[allow(non_camel_case_types)]
type libc_pid = i32;
extern "C" {
    fn kill(pid: libc_pid, sig: i32) -> i32;
}
