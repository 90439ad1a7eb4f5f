//! Faults a fleet meets in production, made real on one machine:
//!
//! - a host cut off from the network while it computes (network namespaces
//!   joined by a bridge, a PostgreSQL server of the test's own on the bridge);
//! - a server that ends transactions left idle for a second;
//! - a disk that fills up during a write (a small tmpfs in a private mount
//!   namespace).
//!
//! Workers are re-executions of this binary (the `child_*` tests, which do
//! nothing unless FSTORE_TEST_CHILD is set). The first test needs root (it
//! skips loudly without); each prints what it measures.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::hosts::{find_tool, is_root, VirtualHosts};
use common::pg::{dsn, TestDatabase, ThrowawayServer};
use common::workers::{emit, Worker};
use common::{append_line, check_sample, count_lines, env, key, reader, sample, Children};
use fstore::{Data, Key, Options, Request, Status, Store};

fn is_child() -> bool {
    std::env::var_os("FSTORE_TEST_CHILD").is_some()
}

fn wait_for_file(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Every file under `dir` whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_ending(&path, suffix));
        } else if path.file_name().unwrap().to_string_lossy().ends_with(suffix) {
            found.push(path);
        }
    }
    found
}

// ---------------------------------------------------------------------------
// 1. A host cut off mid-compute.

const HOST_SYMBOL: &str = "NETCUT";
const TAG_A: i64 = 1;
const TAG_B: i64 = 2;
/// How soon after its host is cut off a leader's lock must be free.
const LOCK_FREED_WITHIN: Duration = Duration::from_secs(30);
/// The longest a compute waits for the parent's signal to finish.
const COMPUTE_AT_MOST: Duration = Duration::from_secs(180);

fn host_key() -> Key {
    key(HOST_SYMBOL, 100, 400)
}

fn host_options(cache: &Path, dsn: &str) -> Options {
    let mut o = Options::default();
    o.set("cache_dir", cache.to_str().unwrap()).unwrap();
    o.set("manifest", "postgres").unwrap();
    o.set("postgres.dsn", dsn).unwrap();
    o.set("postgres.pool_min", "1").unwrap();
    o
}

/// What a reader saw: nothing, an entry with its tag, or a failure.
fn observe(key: &Key, found: fstore::Result<Option<Data>>) -> String {
    match found {
        Ok(None) => "none".into(),
        Ok(Some(data)) => match check_sample(key, &data) {
            Ok(tag) => format!("tag {tag}"),
            Err(why) => format!("bad data: {why}"),
        },
        Err(e) => format!("error {e:?}"),
    }
}

/// A worker on a simulated host: asks for the key; its compute appends to
/// computes.log, touches NAME.computing, then lasts until NAME.finish exists.
#[test]
fn child_host_worker() {
    if !is_child() {
        return;
    }
    let dir = PathBuf::from(env("CHILD_DIR"));
    let name = env("CHILD_NAME");
    let tag: i64 = env("CHILD_TAG").parse().unwrap();
    let mut options = host_options(&dir.join("cache"), &env("CHILD_DSN"));
    options.set("wait.timeout_ms", "120000").unwrap();
    let store = Store::open(options).unwrap();
    let k = host_key();
    let got = store.get_or_compute(&k, &Request::new(), |k| {
        append_line(&dir.join("computes.log"), &name);
        std::fs::write(dir.join(format!("{name}.computing")), b"").unwrap();
        assert!(wait_for_file(&dir.join(format!("{name}.finish")), COMPUTE_AT_MOST), "never told to finish");
        Ok(reader(sample(k, tag)))
    });
    emit(&format!("RESULT {}", observe(&k, got.map(Some))));
    match store.close() {
        Ok(()) => emit("CLOSE ok"),
        Err(e) => emit(&format!("CLOSE error {e:?}")),
    }
}

/// A reader on a simulated host: `get`s the key every 20 ms until `stop`
/// exists, printing each change in what it sees.
#[test]
fn child_host_reader() {
    if !is_child() {
        return;
    }
    let dir = PathBuf::from(env("CHILD_DIR"));
    let store = Store::open(host_options(&dir.join("cache"), &env("CHILD_DSN"))).unwrap();
    let k = host_key();
    let mut last = String::new();
    let mut reads = 0u64;
    while !dir.join("stop").exists() {
        let seen = observe(&k, store.get(&k, &Request::new()));
        reads += 1;
        if seen != last {
            emit(&format!("SEEN {seen}"));
            last = seen;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    emit(&format!("READS {reads}"));
    store.close().unwrap();
}

/// Inode and SHA-256 of a file: whether it is still the very same file.
fn identity(path: &Path) -> (u64, String) {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(path).unwrap().ino();
    let digest = sha2::Sha256::digest(std::fs::read(path).unwrap());
    (inode, digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// The backend holding the advisory lock of `symbol`, if any.
fn lock_holder(admin: &mut postgres::Client, symbol: &str) -> Option<i32> {
    let lock = fstore::lock_key(symbol).unwrap();
    admin
        .query_opt(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
               AND ((classid::int8 << 32) | objid::int8) = $1",
            &[&lock],
        )
        .unwrap()
        .map(|row| row.get(0))
}

fn session_alive(admin: &mut postgres::Client, pid: i32) -> bool {
    admin.query_one("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", &[&pid]).unwrap().get::<_, i64>(0) > 0
}

#[test]
fn a_host_cut_off_mid_compute_frees_its_lock_within_seconds_and_cannot_replace_the_entry() {
    if is_child() {
        return;
    }
    if !is_root() {
        eprintln!(
            "\n*** SKIPPED a_host_cut_off_mid_compute_frees_its_lock_within_seconds_and_cannot_replace_the_entry: \
             simulating hosts needs network namespaces, which need root. Run the test command as root. ***\n"
        );
        return;
    }
    let hosts = VirtualHosts::create(&["a", "b", "c"]).unwrap_or_else(|e| panic!("cannot simulate hosts: {e}"));
    let server = ThrowawayServer::start(&hosts.server_address)
        .unwrap_or_else(|e| panic!("cannot start a PostgreSQL server on the hosts' bridge: {e}"));
    let mut admin = postgres::Client::connect(&server.dsn, postgres::NoTls).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // Migrates the schema, and looks at what the hosts publish, reading the file every time.
    let mut observer_options = host_options(&cache, &server.dsn);
    observer_options.set("memory_cache_mb", "0").unwrap();
    let observer = Store::open(observer_options).unwrap();
    let host_env = |name: &str, tag: i64| {
        vec![
            ("CHILD_DIR".to_string(), dir.path().display().to_string()),
            ("CHILD_DSN".into(), server.dsn.clone()),
            ("CHILD_NAME".into(), name.to_string()),
            ("CHILD_TAG".into(), tag.to_string()),
        ]
    };
    let marker = |name: &str| dir.path().join(name);

    let mut reader_c = Worker::spawn("reader on host c", "child_host_reader", &host_env("c", 0), &hosts.exec_on("c"));
    assert!(reader_c.wait_for("SEEN", Duration::from_secs(60)).is_some(), "the reader on host c never read");
    let mut leader_a = Worker::spawn("leader on host a", "child_host_worker", &host_env("a", TAG_A), &hosts.exec_on("a"));
    assert!(wait_for_file(&marker("a.computing"), Duration::from_secs(60)), "host a never started computing");
    let a_backend = lock_holder(&mut admin, HOST_SYMBOL).expect("host a computes under the symbol's advisory lock");

    // Host a's cable is pulled while it computes; then host b asks for the key.
    hosts.cut("a");
    let cut_at = Instant::now();
    std::fs::write(marker("b.finish"), b"").unwrap();
    let mut worker_b = Worker::spawn("worker on host b", "child_host_worker", &host_env("b", TAG_B), &hosts.exec_on("b"));
    let (mut a_session_gone, mut b_started) = (None, None);
    while b_started.is_none() && cut_at.elapsed() < LOCK_FREED_WITHIN {
        std::thread::sleep(Duration::from_millis(50));
        b_started = marker("b.computing").exists().then(|| cut_at.elapsed());
        if a_session_gone.is_none() && !session_alive(&mut admin, a_backend) {
            a_session_gone = Some(cut_at.elapsed());
        }
    }
    eprintln!(
        "host a cut off: its server session ended after {}, host b started computing after {}",
        a_session_gone.map_or("(still alive)".into(), |t| format!("{t:.1?}")),
        b_started.map_or(format!("(not within {LOCK_FREED_WITHIN:?})"), |t| format!("{t:.1?}")),
    );
    assert!(
        b_started.is_some(),
        "host a's advisory lock was still held {LOCK_FREED_WITHIN:?} after its link was cut: the server keeps \
         the dead host's idle session, and its lock, until TCP gives up on it"
    );
    let b_result = worker_b.wait_for("RESULT", Duration::from_secs(60));
    let (b_ok, _) = worker_b.finish(Duration::from_secs(30));
    assert_eq!(b_result.as_deref(), Some(format!("RESULT tag {TAG_B}").as_str()), "host b's result");
    assert!(b_ok, "host b's worker failed");
    let entries = files_ending(&cache.join("data"), ".parquet");
    assert_eq!(entries.len(), 1, "one entry file: {entries:?}");
    let published = identity(&entries[0]);
    assert_eq!(observe(&host_key(), observer.get(&host_key(), &Request::new())), format!("tag {TAG_B}"));

    // Host a comes back and finishes its compute late.
    hosts.restore("a");
    std::fs::write(marker("a.finish"), b"").unwrap();
    let a_result = leader_a.wait_for("RESULT", Duration::from_secs(90));
    let (a_ok, a_lines) = leader_a.finish(Duration::from_secs(60));
    eprintln!("host a, back online: {a_lines:?}");
    assert_eq!(identity(&entries[0]), published, "host a's late publish replaced host b's entry file");
    assert_eq!(observe(&host_key(), observer.get(&host_key(), &Request::new())), format!("tag {TAG_B}"));
    assert_eq!(
        a_result.as_deref(),
        Some(format!("RESULT tag {TAG_B}").as_str()),
        "host a, back online, must return the entry host b published"
    );
    assert!(a_ok, "host a's worker failed");
    let computes = std::fs::read_to_string(marker("computes.log")).unwrap();
    assert_eq!(computes.lines().collect::<Vec<_>>(), ["a", "b"], "computes: {computes}");

    // Readers elsewhere saw no entry, then host b's whole entry, and nothing else.
    std::fs::write(marker("stop"), b"").unwrap();
    let (reader_ok, reader_lines) = reader_c.finish(Duration::from_secs(30));
    eprintln!("reader on host c: {reader_lines:?}");
    assert!(reader_ok, "the reader on host c failed");
    let seen: Vec<&str> = reader_lines.iter().filter_map(|l| l.strip_prefix("SEEN ")).collect();
    let b_entry = format!("tag {TAG_B}");
    assert_eq!(seen, ["none", b_entry.as_str()], "what host c's reader saw, in order");
    assert_eq!(files_ending(&cache.join("data"), ".tmp"), Vec::<PathBuf>::new(), "temporary files left behind");
    observer.close().unwrap();
}

// ---------------------------------------------------------------------------
// 2. A server that ends transactions idle for a second.

const IDLE_COMPUTE_MS: u64 = 3000;
const IDLE_WORKERS: usize = 8;

#[test]
fn child_idle_worker() {
    if !is_child() {
        return;
    }
    let mut options = Options::default();
    options.set("cache_dir", &env("CHILD_CACHE")).unwrap();
    options.set("manifest", "postgres").unwrap();
    options.set("postgres.dsn", &env("CHILD_DSN")).unwrap();
    options.set("postgres.pool_min", "1").unwrap();
    common::run_child(Store::open(options).unwrap(), "IDLE");
}

#[test]
fn a_server_ending_idle_transactions_after_1s_still_sees_one_compute_of_3s() {
    if is_child() {
        return;
    }
    let database = TestDatabase::create(
        &dsn(),
        &format!("fstore_idle_{}", std::process::id()),
        &[("idle_in_transaction_session_timeout", "1s")],
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let log = dir.path().join("computes.log");
    // Migrate once up front, so that the workers measure locking, not DDL.
    Store::open(database.options(&cache)).unwrap().close().unwrap();
    let env = vec![
        ("CHILD_CACHE".to_string(), cache.display().to_string()),
        ("CHILD_DSN".into(), database.dsn.clone()),
        ("CHILD_LOG".into(), log.display().to_string()),
        ("CHILD_START".into(), "1000".into()),
        ("CHILD_END".into(), "1200".into()),
        ("CHILD_SLEEP_MS".into(), IDLE_COMPUTE_MS.to_string()),
    ];
    let mut children = Children::spawn("child_idle_worker", &vec![env; IDLE_WORKERS]);
    let outs = children.release_together();
    let started = Instant::now();
    let results = children.finish(outs);
    let computes = count_lines(&log);
    eprintln!(
        "idle_in_transaction_session_timeout = 1s, computes of {IDLE_COMPUTE_MS} ms: {IDLE_WORKERS} processes \
         done in {:.1?}, {computes} compute(s): {:?}",
        started.elapsed(),
        std::fs::read_to_string(&log).unwrap_or_default().lines().collect::<Vec<_>>()
    );
    assert!(results.iter().all(|(ok, _)| *ok), "a worker failed: {results:?}");
    assert_eq!(computes, 1, "the key was computed more than once: the server ended the leader's idle transaction, and its lock with it");
    let digests: Vec<&String> =
        results.iter().flat_map(|(_, lines)| lines.iter().filter(|l| l.starts_with("FSTORE_DIGEST"))).collect();
    assert_eq!(digests.len(), IDLE_WORKERS);
    assert!(digests.iter().all(|d| d == &digests[0]), "workers got different data");
}

// ---------------------------------------------------------------------------
// 3. A disk that fills up during a write.

/// The space the cache gets: a tmpfs of this size, or (where no tmpfs can be
/// mounted) the largest file the process may write.
const DISK_BYTES: u64 = 8 << 20;
/// Entry `i` has `FIRST_ROWS << i` rows (about 70 KiB of Parquet for i = 0),
/// so the disk fills after a few entries whichever limit applies.
const FIRST_ROWS: i32 = 8192;
const MAX_ENTRIES: u32 = 12;

fn disk_key(index: u32, rows: i32) -> Key {
    let start = index as i32 * 5_000_000;
    key("DISKFULL", start, start + rows - 1)
}

/// Limits the space under `cache`: a tmpfs mounted there (in the private
/// mount namespace this worker runs in), else RLIMIT_FSIZE. Says which.
fn limit_space(cache: &Path, mode: &str) -> (String, &'static str) {
    if mode == "tmpfs" {
        let target = std::ffi::CString::new(cache.to_str().unwrap()).unwrap();
        let options = std::ffi::CString::new(format!("size={DISK_BYTES},mode=0700")).unwrap();
        let mounted = unsafe {
            libc::mount(c"tmpfs".as_ptr(), target.as_ptr(), c"tmpfs".as_ptr(), 0, options.as_ptr().cast())
        };
        if mounted == 0 {
            return (format!("a tmpfs of {} KiB", DISK_BYTES >> 10), "No space left on device");
        }
        eprintln!(
            "\n*** cannot mount a tmpfs ({}): limiting the file size with RLIMIT_FSIZE instead ***\n",
            std::io::Error::last_os_error()
        );
    }
    unsafe {
        // A write past the limit then fails with EFBIG instead of killing the process.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit { rlim_cur: DISK_BYTES, rlim_max: DISK_BYTES };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0, "setrlimit: {}", std::io::Error::last_os_error());
    }
    (format!("RLIMIT_FSIZE of {} KiB", DISK_BYTES >> 10), "File too large")
}

fn put(store: &Store, key: &Key, tag: i64) -> fstore::Result<()> {
    store.put(key, reader(sample(key, tag)).as_mut())
}

fn used_kib(dir: &Path) -> u64 {
    files_ending(dir, "").iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum::<u64>() >> 10
}

/// Nothing partial: no entry for the key whose write failed, no temporary
/// file, and every entry written before reads back exactly.
fn check_nothing_partial(store: &Store, failed_key: &Key, written: &[(Key, i64)], after: &str) {
    let data_dir = store.cache_dir().join("data");
    assert!(store.get(failed_key, &Request::new()).unwrap().is_none(), "{after}: the failed key has an entry");
    let temps = files_ending(&data_dir, ".tmp");
    assert!(temps.is_empty(), "{after}: temporary files left behind: {temps:?}");
    for (k, tag) in written {
        let data = store.get(k, &Request::new()).unwrap().unwrap_or_else(|| panic!("{after}: entry {tag} is gone"));
        assert_eq!(check_sample(k, &data), Ok(*tag), "{after}: entry {tag} changed");
    }
    let files = files_ending(&data_dir, ".parquet");
    assert_eq!(files.len(), written.len(), "{after}: entry files {files:?}");
}

#[test]
fn child_disk_full() {
    if !is_child() {
        return;
    }
    let cache = PathBuf::from(env("CHILD_CACHE"));
    let data_dir = cache.join("data");
    let (limit, io_words) = limit_space(&cache, &env("CHILD_DISK_MODE"));
    emit(&format!("LIMIT {limit}"));
    let mut options = Options::default();
    options.set("cache_dir", cache.to_str().unwrap()).unwrap();
    options.set("manifest", "duckdb").unwrap();
    // Every read decodes the file: what is checked is what is on disk.
    options.set("memory_cache_mb", "0").unwrap();
    let store = Store::open(options).unwrap();

    let mut written = Vec::new();
    let (failed_index, failed_key, error) = (0..MAX_ENTRIES)
        .find_map(|i| {
            let k = disk_key(i, FIRST_ROWS << i);
            match put(&store, &k, i as i64) {
                Ok(()) => {
                    emit(&format!("PUT entry {i} ({} rows): ok, {} KiB in the cache", FIRST_ROWS << i, used_kib(&cache)));
                    written.push((k, i as i64));
                    None
                }
                Err(e) => Some((i, k, e)),
            }
        })
        .unwrap_or_else(|| panic!("{MAX_ENTRIES} entries never filled {limit}"));
    emit(&format!("PUT entry {failed_index} ({} rows): {error:?}", FIRST_ROWS << failed_index));
    assert_eq!(error.status(), Status::Io, "a full disk is an I/O error: {error:?}");
    let message = error.message();
    assert!(
        message.contains(&data_dir.display().to_string()) && message.contains(io_words),
        "the message names the file and the failure: {message}"
    );

    check_nothing_partial(&store, &failed_key, &written, "after the failed put");
    // A compute whose result cannot be stored fails the same way.
    let computed = store.get_or_compute(&failed_key, &Request::new(), |k| Ok(reader(sample(k, 99))));
    let error = computed.expect_err("a compute on a full disk cannot succeed");
    emit(&format!("GET_OR_COMPUTE entry {failed_index}: {error:?}"));
    assert_eq!(error.status(), Status::Io, "{error:?}");
    check_nothing_partial(&store, &failed_key, &written, "after the failed compute");

    // Space freed, the process goes on: the next write succeeds.
    let (largest_key, largest) = written.pop().unwrap();
    store.invalidate(&largest_key).unwrap();
    let next = disk_key(MAX_ENTRIES + 1, FIRST_ROWS);
    put(&store, &next, 77).unwrap_or_else(|e| panic!("the write after freeing entry {largest} failed: {e:?}"));
    written.push((next, 77));
    check_nothing_partial(&store, &failed_key, &written, "after freeing space");
    emit(&format!("FREED entry {largest}; the next put succeeded; {} KiB in the cache", used_kib(&cache)));
    match store.flush() {
        Ok(()) => emit("FLUSH ok"),
        Err(e) => emit(&format!("FLUSH error (manifest) {e:?}")),
    }
    match store.close() {
        Ok(()) => emit("CLOSE ok"),
        Err(e) => emit(&format!("CLOSE error (manifest) {e:?}")),
    }
    emit("DISK_FULL_DONE");
}

#[test]
fn a_full_disk_fails_the_write_cleanly_and_keeps_every_entry() {
    if is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let unshare = find_tool("unshare");
    let (wrapper, mode) = match (&unshare, is_root()) {
        (Some(unshare), true) => {
            let unshare = unshare.display().to_string();
            (vec![unshare, "--mount".into(), "--propagation".into(), "private".into()], "tmpfs")
        }
        _ => {
            eprintln!(
                "\n*** a full disk is simulated with RLIMIT_FSIZE, not a tmpfs: {} ***\n",
                if unshare.is_none() { "`unshare` (util-linux) is not installed" } else { "mounting needs root" }
            );
            (Vec::new(), "fsize")
        }
    };
    let env = [("CHILD_CACHE".to_string(), cache.display().to_string()), ("CHILD_DISK_MODE".into(), mode.to_string())];
    let worker = Worker::spawn("disk-full worker", "child_disk_full", &env, &wrapper);
    let (ok, lines) = worker.finish(Duration::from_secs(180));
    for line in &lines {
        eprintln!("disk full: {line}");
    }
    assert!(ok, "the disk-full worker failed (its message is above)");
    assert!(lines.iter().any(|l| l == "DISK_FULL_DONE"), "the worker did not finish: {lines:?}");
}
