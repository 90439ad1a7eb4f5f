//! Connection loss and server restarts. These disrupt every connection to
//! the server, so they live in a test binary of their own (cargo runs test
//! binaries one at a time) and take turns through a lock.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::pg::{admin, fresh_schema, pg_options};
use common::{key, reader, sample};
use fstore::{Request, Store};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs computes in a loop while `disrupt` breaks the connections; every
/// call must succeed.
fn survive(schema: &str, disrupt: impl FnOnce()) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut o = pg_options(dir.path(), &fresh_schema(schema));
    o.set("postgres.connect_timeout_ms", "20000").unwrap();
    let store = Store::open(o).unwrap();
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            for i in 0..40 {
                let k = key("GOOGL", i * 10, i * 10 + 5);
                store
                    .get_or_compute(&k, &Request::new(), |k| {
                        std::thread::sleep(Duration::from_millis(25));
                        Ok(reader(sample(k, 1)))
                    })
                    .unwrap_or_else(|e| panic!("call {i} failed: {e:?}"));
                done.fetch_add(1, Ordering::SeqCst);
            }
        });
        while done.load(Ordering::SeqCst) < 10 {
            std::thread::sleep(Duration::from_millis(5));
        }
        disrupt();
        worker.join().unwrap();
    });
    assert_eq!(store.manifest_rows().unwrap().len(), 40, "every entry is in the manifest");
}

#[test]
fn dropped_connections_are_replaced_without_reopening() {
    survive("t_dropped", || {
        let killed: i64 = admin()
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = 'libfstore' AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(killed >= 1);
    });
}

#[test]
fn a_server_restart_mid_run_is_survived() {
    let restart = std::env::var("FSTORE_TEST_PG_RESTART")
        .expect("FSTORE_TEST_PG_RESTART: a command that restarts the test server (tests/run_all.sh sets it)");
    survive("t_restart", || {
        let status = std::process::Command::new("sh").arg("-c").arg(&restart).status().unwrap();
        assert!(status.success(), "restart command failed");
    });
}

