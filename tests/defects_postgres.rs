//! Regression tests for correctness defects of the core in PostgreSQL mode,
//! against a real server (the test command starts a throwaway one and sets
//! FSTORE_TEST_PG_DSN). Every wait is bounded so that a hang fails the test.
//! Advisory locks are database-wide: each test uses symbols of its own.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::pg::{admin, advisory_lock_holders, entry_lock_key, fresh_schema, pg_options};
use common::{age_files, entry_files, key, maintain_now, reader, row_of, sample, tags, within};
use fstore::{Key, Request, Status, Store};

const BOUND: Duration = Duration::from_secs(30);

/// Polls `done` every few milliseconds for at most `limit`.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Rows lost from PostgreSQL (a failed write, a restored backup) made
/// maintenance delete valid files: it must index them again instead.
#[test]
fn maintenance_restores_the_rows_of_valid_files() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema("d_reindex");
    let store = Store::open(pg_options(dir.path(), &schema)).unwrap();
    let keys: Vec<Key> = (0..3).map(|i| key("PGREINDEX", i * 10, i * 10 + 4)).collect();
    for (tag, k) in keys.iter().enumerate() {
        store.put(k, reader(sample(k, tag as i64)).as_mut()).unwrap();
    }
    let before = store.manifest_rows().unwrap();
    admin().batch_execute(&format!("DELETE FROM {schema}.entries")).unwrap();
    age_files(&dir.path().join("data"), Duration::from_secs(2 * 3600));

    store.maintain(&maintain_now(None)).unwrap();

    let after = store.manifest_rows().unwrap();
    for (tag, k) in keys.iter().enumerate() {
        let old = row_of(&before, k).unwrap();
        assert!(dir.path().join(&old.path).exists(), "maintenance removed the valid file of {k:?}");
        let row = row_of(&after, k).unwrap_or_else(|| panic!("the row of {k:?} did not come back; rows: {after:?}"));
        assert_eq!((&row.entry_id, &row.path), (&old.entry_id, &old.path));
        assert_eq!(tags(&store.get(k, &Request::new()).unwrap().unwrap())[0], tag as i64);
    }
}

/// With more keys in flight than `postgres.pool_max`, each lock held a
/// connection and each publisher needed another: check-outs blocked for 5 s
/// and failed, and rows were dropped. Every call must succeed, quickly, and
/// every entry must have its row.
#[test]
fn a_full_pool_completes_every_call_and_records_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = pg_options(dir.path(), &fresh_schema("d_pool"));
    o.set("postgres.pool_max", "2").unwrap();
    let store = Arc::new(Store::open(o).unwrap());
    let keys: Vec<Key> = (0..8).map(|i| key(&format!("POOL{i}"), 1, 5)).collect();
    let started = Instant::now();
    let results = within(BOUND, "eight computes on a pool of two", {
        let (store, keys) = (Arc::clone(&store), keys.clone());
        move || {
            let threads: Vec<_> = keys
                .into_iter()
                .map(|k| {
                    let store = Arc::clone(&store);
                    std::thread::spawn(move || {
                        store.get_or_compute(&k, &Request::new(), |k| {
                            std::thread::sleep(Duration::from_millis(300));
                            Ok(reader(sample(k, 1)))
                        })
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap().map(|d| d.num_rows())).collect::<Vec<_>>()
        }
    });
    let took = started.elapsed();
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} of 8 calls failed after {took:?}: {failed:?}", failed.len());
    let rows = store.manifest_rows().unwrap();
    let missing: Vec<_> = keys.iter().filter(|k| row_of(&rows, k).is_none()).collect();
    assert!(missing.is_empty(), "entries without a manifest row: {missing:?}");
    assert!(took < Duration::from_secs(4), "eight 300 ms computes on two connections took {took:?}");
}

/// A check-out from an exhausted pool ignored the call's own bound and failed
/// as `Unavailable` after 5 s: it must end at the call's timeout, as `Timeout`.
#[test]
fn waiting_for_a_pool_connection_ends_at_the_calls_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = pg_options(dir.path(), &fresh_schema("d_pool_wait"));
    o.set("postgres.pool_max", "2").unwrap();
    let store = Arc::new(Store::open(o).unwrap());
    // Two long computes hold the pool's two connections.
    let release = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = mpsc::channel();
    let holders: Vec<_> = ["POOLWAIT1", "POOLWAIT2"]
        .into_iter()
        .map(|symbol| {
            let (store, release, started_tx) = (Arc::clone(&store), Arc::clone(&release), started_tx.clone());
            std::thread::spawn(move || {
                store.get_or_compute(&key(symbol, 1, 5), &Request::new(), |k| {
                    started_tx.send(()).unwrap();
                    let until = Instant::now() + Duration::from_secs(10);
                    while !release.load(Ordering::SeqCst) && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Ok(reader(sample(k, 1)))
                })
            })
        })
        .collect();
    for _ in 0..2 {
        started_rx.recv_timeout(BOUND).expect("both computes started");
    }

    let started = Instant::now();
    let result = within(BOUND, "a call while the pool is exhausted", {
        let store = Arc::clone(&store);
        move || {
            store
                .get_or_compute(
                    &key("POOLWAIT3", 1, 5),
                    &Request::new().with_timeout(Duration::from_millis(200)),
                    |k| Ok(reader(sample(k, 3))),
                )
                .map(|d| d.num_rows())
        }
    });
    let took = started.elapsed();
    release.store(true, Ordering::SeqCst);
    within(BOUND, "the computes holding the pool", move || {
        holders.into_iter().for_each(|h| {
            h.join().unwrap().unwrap();
        })
    });
    let err = result.expect_err("the call got a connection from an exhausted pool");
    assert_eq!(err.status(), Status::Timeout, "after {took:?}: {err:?}");
    assert!(took < Duration::from_secs(1), "a 200 ms call waited {took:?}");
}

/// A compute whose advisory lock was lost (its session terminated) published
/// over the entry that another store computed meanwhile. It must notice,
/// take the lock again, and return the entry it finds, publishing nothing.
#[test]
fn a_compute_that_lost_its_lock_returns_the_entry_published_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema("d_lost_lock");
    let first = Arc::new(Store::open(pg_options(dir.path(), &schema)).unwrap());
    let second = Store::open(pg_options(dir.path(), &schema)).unwrap();
    let k = key("LOSTLOCK", 1, 20);
    let (started_tx, started_rx) = mpsc::channel();
    let computing = {
        let (first, k) = (Arc::clone(&first), k.clone());
        std::thread::spawn(move || {
            first
                .get_or_compute(&k, &Request::new().with_timeout(Duration::from_secs(20)), move |k| {
                    started_tx.send(()).unwrap();
                    std::thread::sleep(Duration::from_secs(2));
                    Ok(reader(sample(k, 1)))
                })
                .map(|d| tags(&d)[0])
        })
    };
    started_rx.recv_timeout(BOUND).expect("the first store's compute started");

    // An administrator (or a network fault) ends the session holding the lock.
    let mut admin = admin();
    let holders = advisory_lock_holders(&mut admin, fstore::lock_key("LOSTLOCK").unwrap());
    assert!(!holders.is_empty(), "the computing session holds the symbol's advisory lock");
    for pid in &holders {
        admin.execute("SELECT pg_terminate_backend($1)", &[pid]).unwrap();
    }
    wait_until(Duration::from_secs(5), "the terminated session is gone", || {
        let alive: i64 =
            admin.query_one("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)", &[&holders]).unwrap().get(0);
        alive == 0
    });

    let theirs = second
        .get_or_compute(&k, &Request::new().with_timeout(Duration::from_secs(5)), |k| Ok(reader(sample(k, 2))))
        .unwrap();
    assert_eq!(tags(&theirs)[0], 2);
    let path = dir.path().join(&row_of(&second.manifest_rows().unwrap(), &k).unwrap().path);
    let (inode, bytes) = (fs::metadata(&path).unwrap().ino(), fs::read(&path).unwrap());

    let ours = within(BOUND, "the compute that lost its lock", move || computing.join().unwrap());
    assert_eq!(
        ours.as_ref().ok(),
        Some(&2),
        "the compute that lost its lock did not return the entry published meanwhile"
    );
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "the entry was published again");
    assert!(fs::read(&path).unwrap() == bytes, "the entry's bytes changed");
}

/// Copies `from` into place at `to` as a publisher would: a temporary file
/// in the same directory, then a rename.
fn publish_copy(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    let temp = to.with_extension("copy.tmp");
    fs::copy(from, &temp).unwrap();
    fs::rename(&temp, to).unwrap();
}

/// On NFS a file another host has just renamed into place can stay invisible
/// for a moment (negative-lookup caching), while its manifest row, committed
/// with the lock's release, is already there. A waiter that re-checked only
/// the file computed again; it must trust the row and keep looking for the file.
#[test]
fn a_waiter_trusts_a_committed_row_while_the_file_is_still_appearing() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("NFSLAG", 1, 20);
    // The entry as the other host produced it.
    let scratch_schema = fresh_schema("d_lag_scratch");
    let scratch = Store::open(pg_options(&dir.path().join("scratch"), &scratch_schema)).unwrap();
    scratch.put(&k, reader(sample(&k, 5)).as_mut()).unwrap();
    let row = row_of(&scratch.manifest_rows().unwrap(), &k).unwrap().clone();
    let produced = dir.path().join("scratch").join(&row.path);

    let schema = fresh_schema("d_lag");
    let cache = dir.path().join("cache");
    let store = Arc::new(Store::open(pg_options(&cache, &schema)).unwrap());
    let mut other_host = admin();
    other_host.batch_execute("BEGIN").unwrap();
    other_host.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&fstore::lock_key("NFSLAG").unwrap()]).unwrap();
    other_host.execute("SELECT pg_advisory_xact_lock($1)", &[&entry_lock_key(&row.entry_id)]).unwrap();

    let runs = Arc::new(AtomicUsize::new(0));
    let waiter = {
        let (store, k, runs) = (Arc::clone(&store), k.clone(), Arc::clone(&runs));
        std::thread::spawn(move || {
            store
                .get_or_compute(&k, &Request::new().with_timeout(Duration::from_secs(10)), |k| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(reader(sample(k, 9)))
                })
                .map(|d| tags(&d)[0])
        })
    };
    let mut observer = admin();
    let lock_keys = [fstore::lock_key("NFSLAG").unwrap(), entry_lock_key(&row.entry_id)];
    wait_until(Duration::from_secs(10), "the waiter waits for the other host's locks", || {
        let waiting: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1
                   AND ((classid::int8 << 32) | objid::int8) = ANY($1)",
                &[&&lock_keys[..]],
            )
            .unwrap()
            .get(0);
        waiting > 0
    });
    other_host
        .execute(
            format!("INSERT INTO {schema}.entries SELECT * FROM {scratch_schema}.entries WHERE entry_id = $1").as_str(),
            &[&row.entry_id],
        )
        .unwrap();
    other_host.batch_execute("COMMIT").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    publish_copy(&produced, &cache.join(&row.path));

    let got = within(BOUND, "the waiter", move || waiter.join().unwrap());
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the waiter computed an entry whose row was committed (got {got:?})");
    assert_eq!(got.unwrap(), 5);
}

/// Writes an aged file at `path`, standing for a file outside the cache.
fn victim(path: &Path) -> PathBuf {
    fs::write(path, b"not libfstore's to delete").unwrap();
    let ten_days_ago = std::time::SystemTime::now() - Duration::from_secs(10 * 86_400);
    fs::File::options().write(true).open(path).unwrap().set_modified(ten_days_ago).unwrap();
    path.to_path_buf()
}

/// An `entry_id` read from the manifest was joined to the cache path as it
/// was, so a crafted row (absolute, or with `..`) made maintenance delete a
/// file outside the cache.
#[test]
fn maintenance_never_removes_a_file_outside_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema("d_escape");
    let cache = dir.path().join("cache");
    let store = Store::open(pg_options(&cache, &schema)).unwrap();
    let absolute = victim(&dir.path().join("victim.parquet"));
    let relative = victim(&dir.path().join("victim2.parquet"));
    let crafted = [absolute.with_extension("").display().to_string(), "../victim2".to_string()];
    // The crafted ids do name the victims through the cache's data directory.
    assert_eq!(
        cache.join("data").join(&crafted[1][..2]).join(format!("{}.parquet", crafted[1])).canonicalize().unwrap(),
        relative.canonicalize().unwrap()
    );
    let mut admin = admin();
    for id in &crafted {
        admin
            .execute(
                format!(
                    "INSERT INTO {schema}.entries (entry_id, feature_set, symbol, start_date, end_date, config, path,
                                                   rows, bytes, checksum, created_at)
                     VALUES ($1, 'returns', 'ESCAPE', DATE '2020-01-01', DATE '2020-01-02', '{{}}', $1 || '.parquet',
                             1, 25, 'sha256:00', now() - interval '10 days')"
                )
                .as_str(),
                &[id],
            )
            .unwrap();
    }

    let outcome = store.maintain(&maintain_now(Some(Duration::ZERO)));
    assert!(absolute.exists(), "maintenance deleted {} through an absolute entry_id ({outcome:?})", absolute.display());
    assert!(relative.exists(), "maintenance deleted {} through a '..' entry_id ({outcome:?})", relative.display());
    outcome.unwrap();
}

/// The schema name is spliced into SQL; `Options::set` checks it, but the
/// field is public: a store must refuse a bad one before running any SQL.
#[test]
fn a_schema_name_set_directly_is_checked_before_any_sql() {
    let dir = tempfile::tempdir().unwrap();
    let mut admin = admin();
    admin.batch_execute("CREATE TABLE IF NOT EXISTS public.d_inject_canary (x integer)").unwrap();
    let mut o = pg_options(dir.path(), "d_inject");
    o.postgres.schema = "d_inject; DROP TABLE public.d_inject_canary".into();
    let err = Store::open(o).err().expect("a store opened with an injected schema name");
    let canary: bool = admin.query_one("SELECT to_regclass('public.d_inject_canary') IS NOT NULL", &[]).unwrap().get(0);
    admin.batch_execute("DROP TABLE IF EXISTS public.d_inject_canary").unwrap();
    assert!(canary, "the injected statement ran");
    assert_eq!(err.status(), Status::InvalidArgument, "{err:?}");
    assert!(err.message().contains("schema"), "the message names the setting at fault: {err}");
}

/// Maintenance read the rows once, removed the expired files, then deleted
/// those rows and every file that none of the rows it had read pointed to:
/// an entry republished meanwhile (after the run's cutoff) lost its row, then
/// its file. It must survive with its row, and every file left must have one.
#[test]
fn maintenance_keeps_the_row_of_an_entry_republished_during_its_scan() {
    const FILLER: i64 = 5000;
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema("d_rescan");
    let store = Arc::new(Store::open(pg_options(dir.path(), &schema)).unwrap());
    // The entry republished during the scan; its symbol sorts first.
    let k = key("AAREPUBLISH", 1, 20);
    store.put(&k, reader(sample(&k, 1)).as_mut()).unwrap();
    let row = row_of(&store.manifest_rows().unwrap(), &k).unwrap().clone();
    let path = dir.path().join(&row.path);
    // Thousands of expired entries so that the scan takes a while: rows, and
    // files that are links to a real entry file.
    let mut admin = admin();
    let fillers: Vec<String> = admin
        .query(
            format!(
                "INSERT INTO {schema}.entries (entry_id, feature_set, symbol, start_date, end_date, config, path,
                                               rows, bytes, checksum, created_at)
                 SELECT id, 'returns', 'ZZFILLER', DATE '1970-01-01' + i, DATE '1970-01-01' + i, '{{}}',
                        'data/' || left(id, 2) || '/' || id || '.parquet', $2, $3, $4, now() - interval '10 days'
                 FROM (SELECT i, md5(i::text) || md5('filler' || i) AS id FROM generate_series(1, $1::int) AS i) AS f
                 RETURNING path"
            )
            .as_str(),
            &[&(FILLER as i32), &(row.rows as i64), &(row.bytes as i64), &row.checksum],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for filler in &fillers {
        let link = dir.path().join(filler);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        fs::hard_link(&path, &link).unwrap();
    }
    assert_eq!(entry_files(dir.path()).len() as i64, FILLER + 1);

    let done = Arc::new(AtomicBool::new(false));
    let republisher = {
        let (store, done, k, path) = (Arc::clone(&store), Arc::clone(&done), k.clone(), path.clone());
        std::thread::spawn(move || {
            // Republish as soon as the scan has removed the entry.
            let until = Instant::now() + BOUND;
            while path.exists() {
                if done.load(Ordering::SeqCst) || Instant::now() > until {
                    return false;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            store.put(&k, reader(sample(&k, 2)).as_mut()).unwrap();
            true
        })
    };
    let maintained = within(BOUND, "maintenance", {
        let store = Arc::clone(&store);
        move || store.maintain(&maintain_now(Some(Duration::ZERO)))
    });
    done.store(true, Ordering::SeqCst);
    let republished = within(BOUND, "the republishing thread", move || republisher.join().unwrap());
    maintained.unwrap();
    assert!(republished, "the scan never removed the entry to republish");

    let rows = store.manifest_rows().unwrap();
    let kept = store.get(&k, &Request::new()).unwrap().map(|d| tags(&d)[0]);
    assert!(
        kept == Some(2) && row_of(&rows, &k).is_some(),
        "the entry republished during the scan was lost: file {}, data {kept:?}, row {:?}",
        if path.exists() { "present" } else { "gone" },
        row_of(&rows, &k)
    );
    let rows = store.manifest_rows().unwrap();
    let orphans: Vec<_> = entry_files(dir.path())
        .into_iter()
        .filter(|f| !rows.iter().any(|r| f.file_stem().and_then(|s| s.to_str()) == Some(r.entry_id.as_str())))
        .collect();
    assert!(orphans.is_empty(), "files without a manifest row after maintenance: {orphans:?}");
}
