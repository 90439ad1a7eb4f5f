//! The data-loader pattern: a process that opened, used or closed a store
//! forks workers, and each worker opens its own store and works. A child
//! forked at any moment must be able to do that, in both coordination modes,
//! and nothing the parent held at the fork may bind the child or anyone else.
//!
//! Children are made with fork(2) inside this test process while the
//! parent's threads compute, put, and open and close stores. They report
//! their steps through a pipe and their outcome through the exit code. Every
//! wait is bounded: a child still running at its bound is described from
//! /proc (threads, wait channels, kernel stacks, CPU use, locks on its open
//! files), killed, and fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::fork::{fork_child, Ended, Forked, Progress, Rng};
use common::pg::{fresh_schema, pg_options};
use common::{digest, env, key, reader, sample, tags};
use fstore::{Key, Options, Request, Store};

/// Longest a child may take, from fork to exit.
const CHILD_BOUND: Duration = Duration::from_secs(30);
/// A child's `wait.timeout_ms`: a lock it can never get ends as TIMEOUT well
/// inside CHILD_BOUND, so it reports what it waited for instead of hanging.
const CHILD_WAIT: Duration = Duration::from_secs(10);
/// The parent's `wait.timeout_ms`.
const PARENT_WAIT: Duration = Duration::from_secs(20);
/// Children alive at once: enough to contend, few enough for 2 cores.
const MAX_LIVE_CHILDREN: usize = 6;
const FORKS_WHILE_BUSY: usize = 40;
const FORKS_AFTER_CLOSE: usize = 10;
/// Symbols the parent computes on, which children compute on too: a
/// symbol's lock inherited by a child would stop them.
const SYMBOLS: [&str; 3] = ["FORK0", "FORK1", "FORK2"];
const PARENT_TAG: i64 = 7;
/// Calls of each of the parent's busy threads, at most.
const MAX_CALLS_PER_THREAD: usize = 1_000;

/// The tests fork: one at a time, so that no test's child inherits another
/// test's locks and each failure belongs to the test that reports it.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone)]
enum Mode {
    Embedded,
    Postgres { schema: String },
}

impl Mode {
    fn postgres(schema: &str) -> Mode {
        Mode::Postgres { schema: fresh_schema(schema) }
    }

    fn options(&self, cache: &Path, wait: Duration) -> Options {
        let mut o = match self {
            Mode::Embedded => {
                let mut o = Options::default();
                o.set("cache_dir", cache.to_str().unwrap()).unwrap();
                o.set("manifest", "duckdb").unwrap();
                o
            }
            Mode::Postgres { schema } => pg_options(cache, schema),
        };
        o.set("wait.timeout_ms", &wait.as_millis().to_string()).unwrap();
        o
    }

    fn schema(&self) -> &str {
        match self {
            Mode::Embedded => "",
            Mode::Postgres { schema } => schema,
        }
    }
}

/// The entry the parent computes before any fork, which every child reads.
struct Shared {
    key: Key,
    digest: String,
}

fn compute_shared(store: &Store) -> Shared {
    let key = key("SHARED", 10, 40);
    store.get_or_compute(&key, &Request::new(), |k| Ok(reader(sample(k, PARENT_TAG)))).unwrap();
    let stored = store.get(&key, &Request::new()).unwrap().expect("the shared entry was just computed");
    Shared { digest: digest(&stored), key }
}

fn child_key(n: usize) -> Key {
    let start = 500_000 + 10 * n as i32;
    key(SYMBOLS[n % SYMBOLS.len()], start, start + 5)
}

fn child_tag(n: usize) -> i64 {
    1_000 + n as i64
}

/// A child's work: open its own store, compute a key of its own, read the
/// parent's entry, close. Returns the exit code: 0, or the failed step.
fn child_works(progress: &Progress, options: Options, n: usize, shared: &Shared) -> i32 {
    progress.step("open its own store");
    let store = match Store::open(options) {
        Ok(store) => store,
        Err(e) => return failed(progress, 10, "open", &e),
    };
    progress.step("compute its own key");
    let own = child_key(n);
    match store.get_or_compute(&own, &Request::new(), |k| Ok(reader(sample(k, child_tag(n))))) {
        Ok(data) if data.num_rows() == 6 && tags(&data).iter().all(|t| *t == child_tag(n)) => {}
        Ok(data) => {
            progress.step(&format!("compute returned other data: {} rows, tags {:?}", data.num_rows(), tags(&data)));
            return 12;
        }
        Err(e) => return failed(progress, 11, "compute", &e),
    }
    progress.step("read the parent's entry");
    match store.get(&shared.key, &Request::new()) {
        Ok(Some(data)) if digest(&data) == shared.digest => {}
        Ok(Some(data)) => {
            progress.step(&format!("the parent's entry reads differently: tags {:?}", tags(&data)));
            return 14;
        }
        Ok(None) => {
            progress.step("the parent's entry is missing");
            return 15;
        }
        Err(e) => return failed(progress, 13, "read", &e),
    }
    progress.step("close");
    if let Err(e) = store.close() {
        return failed(progress, 16, "close", &e);
    }
    progress.step("done");
    0
}

fn failed(progress: &Progress, code: i32, step: &str, e: &fstore::Error) -> i32 {
    progress.step(&format!("{step} failed: [{:?}] {e}", e.status()));
    code
}

/// The children of one test: at most MAX_LIVE_CHILDREN at a time, each
/// waited for with CHILD_BOUND.
#[derive(Default)]
struct Fleet {
    live: Vec<(usize, Forked)>,
    ended: Vec<(usize, Ended, String)>,
}

impl Fleet {
    fn any_hung(&self) -> bool {
        self.ended.iter().any(|(_, e, _)| matches!(e, Ended::Hung { .. }))
    }

    fn make_room(&mut self) {
        while self.live.len() >= MAX_LIVE_CHILDREN {
            self.reap();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn add(&mut self, n: usize, child: Forked) {
        self.live.push((n, child));
    }

    /// Records children that ended, and kills those past their bound.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.live.len() {
            // gdb's stacks of the first hung child only: they take seconds each.
            let first_hang = !self.any_hung();
            let (n, child) = &mut self.live[i];
            let ended = match child.poll() {
                Some(ended) => Some(ended),
                None if child.forked_at.elapsed() >= CHILD_BOUND => Some(child.kill_hung(first_hang)),
                None => None,
            };
            match ended {
                Some(ended) => {
                    let (n, progress) = (*n, child.progress());
                    self.ended.push((n, ended, progress));
                    self.live.swap_remove(i);
                }
                None => i += 1,
            }
        }
    }

    fn drain(&mut self) {
        while !self.live.is_empty() {
            self.reap();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The children that ended well, or a description of every one that did not.
    fn succeeded(&self) -> Result<Vec<usize>, String> {
        let bad: Vec<_> = self.ended.iter().filter(|(_, e, _)| *e != Ended::Exited(0)).collect();
        if bad.is_empty() {
            return Ok(self.ended.iter().map(|(n, _, _)| *n).collect());
        }
        let hung = bad.iter().filter(|(_, e, _)| matches!(e, Ended::Hung { .. })).count();
        let mut text = format!(
            "{} of {} children did not finish their work ({hung} hung past {} s):\n",
            bad.len(),
            self.ended.len(),
            CHILD_BOUND.as_secs()
        );
        for (shown, (n, ended, progress)) in bad.iter().enumerate() {
            let steps = progress.lines().collect::<Vec<_>>().join(" / ");
            match ended {
                // The first few in full; the rest are usually the same story.
                Ended::Hung { report } if shown < 3 => text.push_str(&format!("child {n} HUNG: {report}")),
                Ended::Hung { .. } => text.push_str(&format!("child {n} HUNG; its steps: {steps}\n")),
                Ended::Exited(code) => text.push_str(&format!("child {n} exited with {code}; its steps: {steps}\n")),
                Ended::Signalled(sig) => text.push_str(&format!("child {n} died of signal {sig}; its steps: {steps}\n")),
            }
        }
        Err(text)
    }
}

/// The parent's threads at work while it forks: two compute new keys
/// (computes of random short durations, on the children's symbols), one puts
/// entries (keeping the background manifest writer busy), one opens and
/// closes stores.
struct Busy {
    stop: Arc<AtomicBool>,
    reports: mpsc::Receiver<(String, Vec<String>)>,
    threads: usize,
}

impl Busy {
    fn start(store: &Arc<Store>, options: &Options, shared: &Key, rng: &mut Rng) -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, reports) = mpsc::channel();
        let mut threads = 0;
        let mut spawn = |name: String, work: Box<dyn FnMut(usize) -> Result<(), String> + Send>| {
            let (stop, tx) = (Arc::clone(&stop), tx.clone());
            let mut work = work;
            std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    let mut errors = Vec::new();
                    let mut i = 0;
                    // Capped, so that a run whose children hang leaves no huge manifest backlog.
                    while !stop.load(Ordering::Relaxed) && errors.len() < 5 && i < MAX_CALLS_PER_THREAD {
                        if let Err(e) = work(i) {
                            errors.push(e);
                        }
                        i += 1;
                    }
                    drop(work); // with it the thread's share of the store, before it reports
                    let _ = tx.send((name, errors));
                })
                .unwrap();
            threads += 1;
        };
        for t in 0..2 {
            let store = Arc::clone(store);
            let mut rng = Rng::seeded(rng.below(u64::MAX));
            spawn(
                format!("parent-compute-{t}"),
                Box::new(move |i| {
                    let start = 1_000 + 100_000 * t as i32 + 10 * i as i32;
                    let k = key(SYMBOLS[(i + t) % SYMBOLS.len()], start, start + 5);
                    let pause = rng.millis(15);
                    let data = store
                        .get_or_compute(&k, &Request::new(), |k| {
                            std::thread::sleep(pause);
                            Ok(reader(sample(k, PARENT_TAG)))
                        })
                        .map_err(|e| format!("get_or_compute {start}: [{:?}] {e}", e.status()))?;
                    check_tags(&data, PARENT_TAG)
                }),
            );
        }
        {
            let store = Arc::clone(store);
            let mut rng = Rng::seeded(rng.below(u64::MAX));
            spawn(
                "parent-put".into(),
                Box::new(move |i| {
                    let k = key("PUT", 10 * i as i32, 10 * i as i32 + 5);
                    store.put(&k, &mut *reader(sample(&k, PARENT_TAG))).map_err(|e| format!("put {i}: [{:?}] {e}", e.status()))?;
                    std::thread::sleep(rng.millis(3));
                    Ok(())
                }),
            );
        }
        {
            let (options, shared) = (options.clone(), shared.clone());
            spawn(
                "parent-open-close".into(),
                Box::new(move |_| {
                    let store = Store::open(options.clone()).map_err(|e| format!("open: [{:?}] {e}", e.status()))?;
                    let found = store.get(&shared, &Request::new()).map_err(|e| format!("get: {e}"))?;
                    if found.is_none() {
                        return Err("the shared entry is missing".into());
                    }
                    store.close().map_err(|e| format!("close: [{:?}] {e}", e.status()))
                }),
            );
        }
        Busy { stop, reports, threads }
    }

    fn ask_to_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops the threads; every error they met, or that one did not stop.
    fn stopped(self) -> Vec<String> {
        self.ask_to_stop();
        let mut errors = Vec::new();
        let deadline = Instant::now() + PARENT_WAIT + Duration::from_secs(10);
        for _ in 0..self.threads {
            match self.reports.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((name, errs)) => errors.extend(errs.into_iter().map(|e| format!("{name}: {e}"))),
                Err(_) => {
                    errors.push("a parent thread did not stop within its bound (see the children's report)".into());
                    break;
                }
            }
        }
        errors
    }
}

fn check_tags(data: &fstore::Data, tag: i64) -> Result<(), String> {
    let tags = tags(data);
    if tags.is_empty() || tags.iter().any(|t| *t != tag) {
        return Err(format!("expected tag {tag}, got {tags:?}"));
    }
    Ok(())
}

/// Every child that succeeded left its entry, readable by a new store.
fn assert_children_entries(options: Options, children: &[usize]) {
    let store = Store::open(options).unwrap();
    for &n in children {
        let data = store.get(&child_key(n), &Request::new()).unwrap();
        let data = data.unwrap_or_else(|| panic!("child {n}'s entry is missing"));
        check_tags(&data, child_tag(n)).unwrap_or_else(|e| panic!("child {n}'s entry: {e}"));
    }
    store.close().unwrap();
}

fn children_forked_while_the_parent_works(mode: Mode) {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let mut rng = Rng::from_env_or_clock();
    let parent_options = mode.options(&cache, PARENT_WAIT);
    let store = Arc::new(Store::open(parent_options.clone()).unwrap());
    let shared = Arc::new(compute_shared(&store));
    let busy = Busy::start(&store, &parent_options, &shared.key, &mut rng);
    let started = Instant::now();
    let mut fleet = Fleet::default();
    for n in 0..FORKS_WHILE_BUSY {
        std::thread::sleep(rng.millis(25));
        fleet.make_room();
        // A hung child already fails the test; more would only add their bounds.
        if fleet.any_hung() {
            break;
        }
        let (options, shared) = (mode.options(&cache, CHILD_WAIT), Arc::clone(&shared));
        fleet.add(n, fork_child(move |p| child_works(p, options, n, &shared)));
        fleet.reap();
    }
    busy.ask_to_stop(); // no more forks: the parent's work no longer matters
    fleet.drain();
    let parent_errors = busy.stopped();
    eprintln!("{} children forked while the parent worked, in {:.1} s", fleet.ended.len(), started.elapsed().as_secs_f64());
    let succeeded = fleet.succeeded().unwrap_or_else(|report| panic!("{report}"));
    assert!(parent_errors.is_empty(), "the parent's threads failed: {parent_errors:#?}");
    Arc::try_unwrap(store).ok().expect("the threads let go of the store").close().unwrap();
    assert_children_entries(parent_options, &succeeded);
}

/// Each round opens a store, computes and puts through it, closes it, and
/// forks a child a few milliseconds later (while what the store started may
/// still be winding down).
fn children_forked_after_the_parent_closed_its_store(mode: Mode) {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let mut rng = Rng::from_env_or_clock();
    let parent_options = mode.options(&cache, PARENT_WAIT);
    let first = Store::open(parent_options.clone()).unwrap();
    let shared = Arc::new(compute_shared(&first));
    first.close().unwrap();
    let mut fleet = Fleet::default();
    for n in 0..FORKS_AFTER_CLOSE {
        fleet.make_room();
        if fleet.any_hung() {
            break;
        }
        let store = Store::open(parent_options.clone()).unwrap();
        let k = key(SYMBOLS[n % SYMBOLS.len()], 1_000 + 10 * n as i32, 1_005 + 10 * n as i32);
        store.get_or_compute(&k, &Request::new(), |k| Ok(reader(sample(k, PARENT_TAG)))).unwrap();
        let put = key("PUT", 10 * n as i32, 10 * n as i32 + 5);
        store.put(&put, &mut *reader(sample(&put, PARENT_TAG))).unwrap();
        store.close().unwrap();
        std::thread::sleep(rng.millis(5));
        let (options, shared) = (mode.options(&cache, CHILD_WAIT), Arc::clone(&shared));
        fleet.add(n, fork_child(move |p| child_works(p, options, n, &shared)));
        fleet.reap();
    }
    fleet.drain();
    let succeeded = fleet.succeeded().unwrap_or_else(|report| panic!("{report}"));
    assert_children_entries(parent_options, &succeeded);
}

#[test]
fn embedded_children_forked_while_the_parent_works_open_their_own_stores() {
    children_forked_while_the_parent_works(Mode::Embedded);
}

#[test]
fn embedded_children_forked_after_the_parent_closed_its_store_work() {
    children_forked_after_the_parent_closed_its_store(Mode::Embedded);
}

#[test]
fn postgres_children_forked_while_the_parent_works_open_their_own_stores() {
    children_forked_while_the_parent_works(Mode::postgres("t_fork_busy"));
}

#[test]
fn postgres_children_forked_after_the_parent_closed_its_store_work() {
    children_forked_after_the_parent_closed_its_store(Mode::postgres("t_fork_closed"));
}

// ---- a lock held at the fork ------------------------------------------------

const HELD_SYMBOL: &str = "HELD";
/// How long another process may wait for the symbol's lock once the parent
/// released it: a lock still held by the sleeping child ends this as TIMEOUT.
const PROMPT: Duration = Duration::from_secs(5);

/// A child forked while the parent's compute holds a symbol's lock sleeps on;
/// once the parent's compute ends, another process and the parent itself get
/// that symbol's lock promptly, while the child still lives.
fn a_lock_held_at_fork_is_free_once_the_parent_releases_it(mode: Mode) {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let store = Arc::new(Store::open(mode.options(&cache, PARENT_WAIT)).unwrap());
    let (computing_tx, computing) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let (done_tx, done) = mpsc::channel();
    {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            let result = store.get_or_compute(&key(HELD_SYMBOL, 100, 110), &Request::new(), |k| {
                computing_tx.send(()).unwrap();
                release_rx.recv_timeout(Duration::from_secs(30)).map_err(|_| fstore::Error::internal("never released"))?;
                Ok(reader(sample(k, PARENT_TAG)))
            });
            drop(store);
            let _ = done_tx.send(result.map(|d| d.num_rows()).map_err(|e| e.to_string()));
        });
    }
    computing.recv_timeout(Duration::from_secs(20)).expect("the parent's compute started");
    let mut sleeper = fork_child(|progress| {
        progress.step("sleeping");
        std::thread::sleep(Duration::from_secs(120));
        0
    });
    release.send(()).unwrap();
    let computed = done.recv_timeout(Duration::from_secs(20)).expect("the parent's compute ended");
    assert_eq!(computed, Ok(11), "the parent's compute");
    assert!(sleeper.alive(), "the child forked during the compute still lives");

    let other = lock_taker(&mode, &cache, 200);
    assert!(sleeper.alive(), "the child still lived while another process took the lock");
    assert!(
        other.starts_with("FSTORE_RESULT ok"),
        "another process could not take the lock of {HELD_SYMBOL} within {} s after the parent released it, \
         while a child forked during the parent's compute lived on: {other}\nthe child: {}",
        PROMPT.as_secs(),
        describe_locks(&mut sleeper)
    );

    let k = key(HELD_SYMBOL, 300, 310);
    let own = store.get_or_compute(&k, &Request::new().with_timeout(PROMPT), |k| Ok(reader(sample(k, PARENT_TAG))));
    assert!(sleeper.alive());
    if let Err(e) = own {
        panic!("the parent could not take the lock of {HELD_SYMBOL} again within {} s: [{:?}] {e}", PROMPT.as_secs(), e.status());
    }
    drop(sleeper); // killed and reaped
    Arc::try_unwrap(store).ok().expect("the compute thread let go of the store").close().unwrap();
}

fn describe_locks(child: &mut Forked) -> String {
    common::fork::describe_process(child.pid)
}

/// Runs this test binary again as another process that computes the key of
/// HELD_SYMBOL from `start`, waiting at most PROMPT for the lock; returns
/// its result line.
fn lock_taker(mode: &Mode, cache: &Path, start: i32) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "lock_taker_process", "--nocapture", "--test-threads=1"])
        .env("FSTORE_TEST_CHILD", "1")
        .env("CHILD_CACHE", cache)
        .env("CHILD_SCHEMA", mode.schema())
        .env("CHILD_START", start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + CHILD_BOUND;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let report = common::fork::describe_process(child.id() as libc::pid_t);
            let _ = child.kill();
            let _ = child.wait();
            return format!("the process hung past {} s:\n{report}", CHILD_BOUND.as_secs());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    out.lines().find_map(|l| l.find("FSTORE_RESULT").map(|at| l[at..].to_string())).unwrap_or(out)
}

/// The other process of the lock tests; does nothing unless re-executed.
#[test]
fn lock_taker_process() {
    if std::env::var_os("FSTORE_TEST_CHILD").is_none() {
        return;
    }
    let cache = PathBuf::from(env("CHILD_CACHE"));
    let schema = env("CHILD_SCHEMA");
    let mode = if schema.is_empty() { Mode::Embedded } else { Mode::Postgres { schema } };
    let start: i32 = env("CHILD_START").parse().unwrap();
    let store = Store::open(mode.options(&cache, PROMPT)).unwrap();
    let began = Instant::now();
    let k = key(HELD_SYMBOL, start, start + 10);
    match store.get_or_compute(&k, &Request::new(), |k| Ok(reader(sample(k, 2)))) {
        Ok(data) => println!("FSTORE_RESULT ok {} rows in {} ms", data.num_rows(), began.elapsed().as_millis()),
        Err(e) => println!("FSTORE_RESULT failed after {} ms: [{:?}] {e}", began.elapsed().as_millis(), e.status()),
    }
    store.close().unwrap();
}

#[test]
fn embedded_a_symbol_lock_held_at_fork_is_free_once_the_parent_releases_it() {
    a_lock_held_at_fork_is_free_once_the_parent_releases_it(Mode::Embedded);
}

#[test]
fn postgres_a_symbol_lock_held_at_fork_is_free_once_the_parent_releases_it() {
    a_lock_held_at_fork_is_free_once_the_parent_releases_it(Mode::postgres("t_fork_held"));
}

#[test]
fn a_forked_child_is_refused_the_parents_store_even_for_a_cached_hit() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::default();
    options.set("cache_dir", dir.path().to_str().unwrap()).unwrap();
    let store = Store::open(options).unwrap();
    let k = key("FORK", 1, 10);
    store.put(&k, reader(sample(&k, 4)).as_mut()).unwrap();
    for _ in 0..3 {
        // Now in the key cache and the memory cache.
        assert_eq!(tags(&store.get(&k, &Request::new()).unwrap().unwrap())[0], 4);
    }
    let mut child = fork_child(|progress| {
        let refused = |what: &str, outcome: Result<(), fstore::Error>| match outcome {
            Err(e) if e.status() == fstore::Status::InvalidState && e.message().contains("after fork()") => true,
            other => {
                progress.step(&format!("{what}: {other:?}"));
                false
            }
        };
        let get = refused("get", store.get(&k, &Request::new()).map(drop));
        let compute = refused("get_or_compute", store.get_or_compute(&k, &Request::new(), |_| panic!("no compute")).map(drop));
        if get && compute {
            progress.step("refused");
            0
        } else {
            1
        }
    });
    assert_eq!(child.wait_until(Instant::now() + Duration::from_secs(30)), Ended::Exited(0), "{}", child.progress());
    // The parent's store is unaffected.
    assert_eq!(tags(&store.get(&k, &Request::new()).unwrap().unwrap())[0], 4);
}
