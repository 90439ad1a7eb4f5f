//! PostgreSQL coordination against a real server: the test command starts a
//! throwaway one and sets FSTORE_TEST_PG_DSN (and FSTORE_TEST_PG_RESTART, a
//! command that restarts it). These tests fail, never skip, without a server.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::pg::{admin, fresh_schema, pg_options};
use common::{count_lines, env, key, reader, sample, tags, Children};
use fstore::{Backend, Options, Request, Status, Store};

const COMPUTE_MS: u64 = 300;

#[test]
fn child_worker() {
    if std::env::var_os("FSTORE_TEST_CHILD").is_none() {
        return;
    }
    let mut o = pg_options(Path::new(&env("CHILD_CACHE")), &env("CHILD_SCHEMA"));
    o.set("lock.cross_process", &env("CHILD_CROSS_PROCESS")).unwrap();
    o.set("lock.granularity", &env("CHILD_GRANULARITY")).unwrap();
    o.set("postgres.pool_min", "1").unwrap();
    let store = Store::open(o).unwrap();
    assert_eq!(store.manifest_backend(), Backend::Postgres);
    common::run_child(store, &env("CHILD_SYMBOL"));
}

struct Fleet<'a> {
    dir: &'a Path,
    schema: String,
    cross_process: bool,
    granularity: &'a str,
    symbol: &'a str,
}

impl Fleet<'_> {
    fn env(&self, start: i32, end: i32, sleep_ms: u64) -> Vec<(String, String)> {
        vec![
            ("CHILD_CACHE".to_string(), self.dir.join("cache").display().to_string()),
            ("CHILD_SCHEMA".into(), self.schema.clone()),
            ("CHILD_LOG".into(), self.dir.join("runs.log").display().to_string()),
            ("CHILD_CROSS_PROCESS".into(), self.cross_process.to_string()),
            ("CHILD_GRANULARITY".into(), self.granularity.into()),
            ("CHILD_SYMBOL".into(), self.symbol.into()),
            ("CHILD_START".into(), start.to_string()),
            ("CHILD_END".into(), end.to_string()),
            ("CHILD_SLEEP_MS".into(), sleep_ms.to_string()),
        ]
    }

    fn run(&self, ranges: &[(i32, i32)], per_range: usize) -> Vec<(bool, Vec<String>)> {
        let envs: Vec<_> =
            ranges.iter().flat_map(|&(s, e)| std::iter::repeat_n(self.env(s, e, COMPUTE_MS), per_range)).collect();
        let mut children = Children::spawn("child_worker", &envs);
        let outs = children.release_together();
        children.finish(outs)
    }
}

#[test]
fn sixteen_processes_compute_one_missing_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet { dir: dir.path(), schema: fresh_schema("t_sixteen"), cross_process: true, granularity: "symbol", symbol: "AAPL" };
    // Migrate once up front, so the children measure locking, not DDL.
    fstore::migrate_schema(&pg_options(&dir.path().join("cache"), &fleet.schema)).unwrap();
    let results = fleet.run(&[(19000, 19100)], 16);
    assert!(results.iter().all(|(ok, _)| *ok), "{results:?}");
    let log = dir.path().join("runs.log");
    assert_eq!(count_lines(&log), 1, "{}", std::fs::read_to_string(&log).unwrap());
    let digests: Vec<_> = results.iter().flat_map(|(_, l)| l.iter().filter(|l| l.starts_with("FSTORE_DIGEST"))).collect();
    assert_eq!(digests.len(), 16);
    assert!(digests.iter().all(|d| d == &digests[0]), "processes got different data");
}

#[test]
fn without_locks_sixteen_processes_compute_more_than_once() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet { dir: dir.path(), schema: fresh_schema("t_nolock"), cross_process: false, granularity: "symbol", symbol: "AAPL" };
    fstore::migrate_schema(&pg_options(&dir.path().join("cache"), &fleet.schema)).unwrap();
    let results = fleet.run(&[(19000, 19100)], 16);
    assert!(results.iter().all(|(ok, _)| *ok), "{results:?}");
    assert!(count_lines(&dir.path().join("runs.log")) > 1, "locking off, yet one compute");
}

#[test]
fn entry_granularity_computes_each_date_range_once() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet { dir: dir.path(), schema: fresh_schema("t_entry"), cross_process: true, granularity: "entry", symbol: "MSFT" };
    fstore::migrate_schema(&pg_options(&dir.path().join("cache"), &fleet.schema)).unwrap();
    let results = fleet.run(&[(100, 200), (201, 300), (301, 400), (401, 500)], 4);
    assert!(results.iter().all(|(ok, _)| *ok), "{results:?}");
    let log = std::fs::read_to_string(dir.path().join("runs.log")).unwrap();
    let mut starts: Vec<&str> = log.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    starts.sort();
    assert_eq!(starts, ["100", "201", "301", "401"], "{log}");
}

#[test]
fn a_leader_killed_with_sigkill_releases_the_advisory_lock() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet { dir: dir.path(), schema: fresh_schema("t_kill"), cross_process: true, granularity: "symbol", symbol: "TSLA" };
    let store = Store::open(pg_options(&dir.path().join("cache"), &fleet.schema)).unwrap();
    let marker = dir.path().join("started");
    let mut victim_env = fleet.env(5, 50, 60_000);
    victim_env.push(("CHILD_STARTED_MARKER".into(), marker.display().to_string()));
    let mut victim = Children::spawn("child_worker", &[victim_env]);
    let outs = victim.release_together();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the victim never started computing");
        std::thread::sleep(Duration::from_millis(10));
    }
    // While the victim computes, the symbol's advisory lock is held.
    let lock = fstore::lock_key("TSLA").unwrap();
    let held: i64 = admin()
        .query_one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
                   AND ((classid::int8 << 32) | objid::int8) = $1", &[&lock])
        .unwrap()
        .get(0);
    assert_eq!(held, 1);
    assert_eq!(unsafe { kill(victim.pids()[0] as i32, 9) }, 0);
    assert!(!victim.finish(outs)[0].0);

    assert!(store.get(&key("TSLA", 5, 50), &Request::new()).unwrap().is_none(), "a half-written entry is visible");
    let mut successor = Children::spawn("child_worker", &[fleet.env(5, 50, 10)]);
    let outs = successor.release_together();
    let started = Instant::now();
    let results = successor.finish(outs);
    assert!(results[0].0, "{results:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(count_lines(&dir.path().join("runs.log")), 2);
    assert_eq!(store.get(&key("TSLA", 5, 50), &Request::new()).unwrap().unwrap().num_rows(), 46);
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn auto_falls_back_to_duckdb_with_a_warning_and_postgres_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut o = Options::default();
    o.set("cache_dir", dir.path().to_str().unwrap()).unwrap();
    o.set("postgres.host", "127.0.0.1").unwrap();
    o.set("postgres.port", &port.to_string()).unwrap();
    o.set("postgres.password", "Sup3r-Secret-pw").unwrap();
    o.set("postgres.connect_timeout_ms", "500").unwrap();
    let store = Store::open(o.clone()).unwrap();
    assert_eq!(store.manifest_backend(), Backend::DuckDb);
    let warning = store.warnings().join("\n");
    assert!(warning.contains(&format!("127.0.0.1:{port}")) && warning.contains("embedded DuckDB manifest"), "{warning}");
    assert!(!warning.contains("Sup3r-Secret-pw"));
    drop(store);

    o.set("manifest", "postgres").unwrap();
    let err = Store::open(o).err().unwrap();
    assert_eq!(err.status(), Status::Unavailable, "{err:?}");
    assert!(!err.message().contains("Sup3r-Secret-pw"));
}

#[test]
fn a_wrong_password_is_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = pg_options(dir.path(), "t_password");
    o.set("postgres.password", "Wr0ng-Pa55word").unwrap();
    o.set("postgres.connect_timeout_ms", "2000").unwrap();
    let err = Store::open(o).err().unwrap();
    assert_eq!(err.status(), Status::Unavailable, "{err:?}");
    assert!(err.message().contains("password") || err.message().contains("authentication"), "{err}");
    assert!(!err.message().contains("Wr0ng-Pa55word"), "{err}");
    let mut o = pg_options(dir.path(), "t_password");
    o.set("postgres.dsn", "postgresql://postgres:Wr0ng-Pa55word@127.0.0.1:1/x?connect_timeout=abc").unwrap();
    let err = Store::open(o).err().unwrap();
    assert!(!err.message().contains("Wr0ng-Pa55word"), "{err}");
}

/// Holds the advisory lock of `symbol` from another session, as a program
/// outside libfstore would, until the returned client is dropped.
fn hold_lock(symbol: &str) -> postgres::Client {
    let mut client = admin();
    client.batch_execute("BEGIN").unwrap();
    client.execute("SELECT pg_advisory_xact_lock($1)", &[&fstore::lock_key(symbol).unwrap()]).unwrap();
    client
}

#[test]
fn lock_timeout_try_lock_and_interop_with_other_programs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(pg_options(dir.path(), &fresh_schema("t_timeout"))).unwrap();
    let holder = hold_lock("BRK.B");
    let k = key("BRK.B", 1, 2);

    let t0 = Instant::now();
    let err = store.get_or_compute(&k, &Request::new().with_timeout(Duration::from_millis(300)), |_| unreachable!()).unwrap_err();
    assert_eq!(err.status(), Status::Timeout, "{err:?}");
    assert!(t0.elapsed() >= Duration::from_millis(300));

    // A zero timeout tries once (pg_try_advisory_xact_lock) and does not wait.
    let err = store.get_or_compute(&k, &Request::new().with_timeout(Duration::ZERO), |_| unreachable!()).unwrap_err();
    assert_eq!(err.status(), Status::Timeout);

    let stats = store.lock_stats().unwrap().unwrap();
    assert!(stats.held >= 1, "{stats:?}");

    drop(holder);
    let data = store.get_or_compute(&k, &Request::new(), |k| Ok(reader(sample(k, 4)))).unwrap();
    assert_eq!(tags(&data)[0], 4);
    let pool = store.pool_stats().unwrap();
    assert!(pool.size >= 1 && pool.size <= 16, "{pool:?}");
}

#[test]
fn a_namespace_moves_locks_out_of_other_programs_way() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema("t_namespace");
    let _holder = hold_lock("ES=F");
    let mut o = pg_options(dir.path(), &schema);
    o.set("lock.namespace", "research").unwrap();
    let store = Store::open(o).unwrap();
    // The plain key is held elsewhere; the namespaced key is free.
    let data = store
        .get_or_compute(&key("ES=F", 1, 3), &Request::new().with_timeout(Duration::from_millis(2000)), |k| Ok(reader(sample(k, 1))))
        .unwrap();
    assert_eq!(data.num_rows(), 3);
    let plain = Store::open(pg_options(&dir.path().join("other"), &schema)).unwrap();
    let err = plain
        .get_or_compute(&key("ES=F", 4, 5), &Request::new().with_timeout(Duration::from_millis(200)), |_| unreachable!())
        .unwrap_err();
    assert_eq!(err.status(), Status::Timeout);
}

#[test]
fn threads_of_one_process_share_one_connection_for_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = pg_options(dir.path(), &fresh_schema("t_threads"));
    o.set("postgres.pool_min", "0").unwrap();
    let store = Store::open(o).unwrap();
    let runs = AtomicUsize::new(0);
    let k = key("^GSPC", 1, 50);
    std::thread::scope(|s| {
        for _ in 0..32 {
            s.spawn(|| {
                store
                    .get_or_compute(&k, &Request::new(), |k| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(200));
                        Ok(reader(sample(k, 1)))
                    })
                    .unwrap();
            });
        }
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // One for the lock's transaction, which also records the row: not 32.
    let pool = store.pool_stats().unwrap();
    assert!(pool.size <= 3, "{pool:?}");
}

#[test]
fn schema_creation_is_versioned_idempotent_and_concurrent() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema("t_schema");
    std::thread::scope(|s| {
        for i in 0..8 {
            let (dir, schema) = (dir.path().join(i.to_string()), schema.clone());
            s.spawn(move || Store::open(pg_options(&dir, &schema)).unwrap());
        }
    });
    let mut admin = admin();
    let versions: Vec<i32> = admin
        .query(&format!("SELECT version FROM {schema}.schema_version ORDER BY version"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2]);
    let indexes: i64 = admin
        .query_one("SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'entries'", &[&schema])
        .unwrap()
        .get(0);
    assert_eq!(indexes, 4, "primary key plus three lookup indexes");

    // With automatic creation off, a missing schema is a clear error, and
    // the explicit migrate step fixes it.
    let bare = fresh_schema("t_schema_bare");
    let mut o = pg_options(dir.path(), &bare);
    o.set("postgres.auto_migrate", "false").unwrap();
    let err = Store::open(o.clone()).err().unwrap();
    assert_eq!(err.status(), Status::InvalidState);
    assert!(err.message().contains("run the migrate step"), "{err}");
    assert_eq!(fstore::migrate_schema(&o).unwrap(), [1, 2]);
    assert_eq!(fstore::migrate_schema(&o).unwrap(), Vec::<i32>::new());
    Store::open(o).unwrap();
}

#[test]
fn migrating_an_embedded_manifest_is_idempotent_and_keeps_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let mut embedded = Options::default();
    embedded.set("cache_dir", dir.path().to_str().unwrap()).unwrap();
    embedded.set("manifest", "duckdb").unwrap();
    let store = Store::open(embedded).unwrap();
    for i in 0..5 {
        let k = key("AAPL", i * 10, i * 10 + 3);
        store.put(&k, reader(sample(&k, i as i64)).as_mut()).unwrap();
    }
    store.close().unwrap();

    let o = pg_options(dir.path(), &fresh_schema("t_migrate"));
    let first = fstore::migrate_manifest(&o).unwrap();
    assert_eq!((first.rows_read, first.inserted, first.already_present), (5, 5, 0));
    assert!(first.backup.as_ref().unwrap().exists());
    let second = fstore::migrate_manifest(&o).unwrap();
    assert_eq!((second.rows_read, second.inserted, second.already_present), (5, 0, 5));

    // The PostgreSQL store sees the migrated rows and hits the same files.
    let store = Store::open(o).unwrap();
    assert_eq!(store.manifest_rows().unwrap().len(), 5);
    let runs = AtomicUsize::new(0);
    store.get_or_compute(&key("AAPL", 20, 23), &Request::new(), |_| { runs.fetch_add(1, Ordering::SeqCst); unreachable!() }).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

/// Workers keep publishing into the embedded manifest while it is migrated,
/// twice; a last run then finds every row, so nothing was lost to the race.
#[test]
fn migrating_while_workers_publish_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut embedded = Options::default();
    embedded.set("cache_dir", dir.path().to_str().unwrap()).unwrap();
    embedded.set("manifest", "duckdb").unwrap();
    let store = Store::open(embedded).unwrap();
    let o = pg_options(dir.path(), &fresh_schema("t_migrate_live"));
    let published = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            for i in 0..40 {
                let k = key("MSFT", i * 10, i * 10 + 2);
                store.put(&k, reader(sample(&k, 1)).as_mut()).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
            40
        });
        for _ in 0..2 {
            fstore::migrate_manifest(&o).unwrap();
        }
        worker.join().unwrap()
    });
    store.close().unwrap();
    let last = fstore::migrate_manifest(&o).unwrap();
    assert_eq!(last.rows_read, published);
    let migrated = Store::open(o).unwrap().manifest_rows().unwrap().len() as u64;
    assert_eq!(migrated, published);
}

#[test]
fn maintenance_expires_and_repairs_but_spares_young_files() {
    use fstore::maintenance::MaintainOptions;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(pg_options(dir.path(), &fresh_schema("t_maintain"))).unwrap();
    let keys: Vec<_> = (0..4).map(|i| key("MSFT", i * 10, i * 10 + 2)).collect();
    for k in &keys {
        store.put(k, reader(sample(k, 1)).as_mut()).unwrap();
    }
    // A row whose file is gone, an unreadable entry file, and a stale temp file.
    let rows = store.manifest_rows().unwrap();
    std::fs::remove_file(dir.path().join(&rows[0].path)).unwrap();
    let orphan = dir.path().join(format!("data/00/{}.parquet", "0".repeat(64)));
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"not an entry").unwrap();
    std::fs::write(dir.path().join("data/00/.x.tmp"), b"partial").unwrap();

    // With the default grace period, only the row without a file goes.
    let r = store.maintain(&MaintainOptions { max_age: Some(Duration::ZERO), ..Default::default() }).unwrap();
    assert_eq!((r.rows_without_file, r.expired_entries, r.corrupt_files, r.temp_files), (1, 0, 0, 0), "{r:?}");
    assert!(orphan.exists());

    let dry = MaintainOptions { max_age: None, grace: Duration::ZERO, dry_run: true, ..Default::default() };
    let r = store.maintain(&dry).unwrap();
    assert_eq!((r.corrupt_files, r.temp_files, r.reindexed_files), (1, 1, 0), "{r:?}");
    assert!(orphan.exists(), "a dry run removes nothing");

    let r = store.maintain(&MaintainOptions { max_age: Some(Duration::ZERO), grace: Duration::ZERO, dry_run: false, ..Default::default() }).unwrap();
    assert_eq!((r.expired_entries, r.corrupt_files, r.temp_files), (3, 1, 1), "{r:?}");
    assert!(!orphan.exists());
    assert!(store.manifest_rows().unwrap().is_empty());
    let summary = store.summary().unwrap();
    assert_eq!(summary.num_rows(), 0);
}

#[test]
fn publishing_the_same_entry_twice_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema("t_republish");
    let a = Store::open(pg_options(dir.path(), &schema)).unwrap();
    let b = Store::open(pg_options(dir.path(), &schema)).unwrap();
    let k = key("AAPL", 7, 9);
    a.put(&k, reader(sample(&k, 1)).as_mut()).unwrap();
    b.put(&k, reader(sample(&k, 2)).as_mut()).unwrap();
    assert_eq!(tags(&a.get(&k, &Request::new()).unwrap().unwrap())[0], 2);
    assert_eq!(a.manifest_rows().unwrap().len(), 1);
    let summary = a.summary().unwrap();
    assert_eq!(summary.num_rows(), 1);
}

#[test]
fn hits_never_touch_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema("t_hits_no_manifest");
    let mut options = pg_options(dir.path(), &schema);
    options.set("memory_cache_mb", "0").unwrap();
    let (cached, uncached) = (Store::open(pg_options(dir.path(), &schema)).unwrap(), Store::open(options).unwrap());
    let k = key("AAPL", 3, 40);
    cached.put(&k, reader(sample(&k, 5)).as_mut()).unwrap();
    cached.flush().unwrap();
    // Without its tables, any manifest query fails; hits must not notice.
    admin().batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
    for store in [&cached, &uncached] {
        for _ in 0..50 {
            assert_eq!(tags(&store.get(&k, &Request::new()).unwrap().unwrap())[0], 5);
            let data = store
                .get_or_compute(&k, &Request::new().with_columns(["tag"]), |_| panic!("a hit must not compute"))
                .unwrap();
            assert_eq!(tags(&data)[0], 5);
        }
        assert_eq!(store.stats().hits, 100);
    }
    assert!(cached.manifest_rows().is_err(), "the manifest is really gone");
}
