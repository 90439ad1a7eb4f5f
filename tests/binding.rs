//! A cache directory keeps the coordination settings of its first store:
//! stores that would lock differently (and so compute twice) are refused,
//! `manifest=auto` does not fall back for a directory bound to PostgreSQL,
//! and only an explicit step (a migration, `fstore rebind`) changes it.

mod common;

use std::path::Path;
use std::process::Command;

use common::pg::{fresh_schema, pg_options};
use common::{key, reader, sample, tags};
use fstore::{Backend, Options, Request, Status, Store};

fn embedded(dir: &Path, settings: &[(&str, &str)]) -> Options {
    let mut o = Options::default();
    o.set("cache_dir", dir.to_str().unwrap()).unwrap();
    o.set("manifest", "duckdb").unwrap();
    for (name, value) in settings {
        o.set(name, value).unwrap();
    }
    o
}

fn refused(options: Options) -> fstore::Error {
    match Store::open(options) {
        Ok(_) => panic!("a store coordinating differently was opened"),
        Err(e) => e,
    }
}

#[test]
fn a_directory_refuses_stores_that_would_lock_differently() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(embedded(dir.path(), &[])).unwrap();
    let k = key("BIND", 1, 5);
    first.put(&k, reader(sample(&k, 1)).as_mut()).unwrap();

    for (setting, value, configured) in [
        ("lock.granularity", "entry", "lock.granularity=entry"),
        ("lock.namespace", "team-a", "lock.namespace='team-a'"),
    ] {
        let e = refused(embedded(dir.path(), &[(setting, value)]));
        assert_eq!(e.status(), Status::InvalidState, "{e}");
        // Both sides are named, so the operator knows what to change.
        assert!(e.message().contains("lock.granularity=symbol, lock.namespace=''"), "{e}");
        assert!(e.message().contains(configured), "{e}");
        assert!(e.message().contains("rebind"), "{e}");
    }
    // The same settings are welcome, and see the first store's entries.
    let second = Store::open(embedded(dir.path(), &[])).unwrap();
    assert_eq!(tags(&second.get(&k, &Request::new()).unwrap().unwrap())[0], 1);
}

#[test]
fn auto_does_not_fall_back_for_a_directory_bound_to_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let schema = fresh_schema("t_bind_auto");
    let pg = Store::open(pg_options(dir.path(), &schema)).unwrap();
    assert_eq!(pg.manifest_backend(), Backend::Postgres);
    drop(pg);

    // The configured server is unreachable: falling back would split the directory.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut unreachable = Options::default();
    unreachable.set("cache_dir", dir.path().to_str().unwrap()).unwrap();
    unreachable.set("postgres.host", "127.0.0.1").unwrap();
    unreachable.set("postgres.port", &port.to_string()).unwrap();
    unreachable.set("postgres.connect_timeout_ms", "500").unwrap();
    let e = refused(unreachable);
    assert_eq!(e.status(), Status::Unavailable, "{e}");
    assert!(e.message().contains("bound to manifest postgres") && e.message().contains("cannot fall back"), "{e}");

    // No server configured at all: the embedded manifest is not this directory's.
    let mut nothing = Options::default();
    nothing.set("cache_dir", dir.path().to_str().unwrap()).unwrap();
    let e = refused(nothing);
    assert_eq!(e.status(), Status::InvalidState, "{e}");
    assert!(e.message().contains("configured for manifest duckdb"), "{e}");
    assert!(!dir.path().join("manifest.duckdb").exists(), "the refused store created an embedded manifest");
}

#[test]
fn another_schema_or_server_is_another_manifest() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(pg_options(dir.path(), &fresh_schema("t_bind_one"))).unwrap();
    let e = refused(pg_options(dir.path(), &fresh_schema("t_bind_two")));
    assert_eq!(e.status(), Status::InvalidState, "{e}");
    assert!(e.message().contains("schema t_bind_one") && e.message().contains("schema t_bind_two"), "{e}");
    // Dropping and recreating the schema makes a new manifest too.
    fresh_schema("t_bind_one");
    let e = refused(pg_options(dir.path(), "t_bind_one"));
    assert!(e.message().contains("installation"), "{e}");
}

#[test]
fn migrating_the_manifest_moves_the_directory_to_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("MOVE", 1, 5);
    let local = Store::open(embedded(dir.path(), &[])).unwrap();
    local.put(&k, reader(sample(&k, 3)).as_mut()).unwrap();
    local.close().unwrap();

    let schema = fresh_schema("t_bind_move");
    let report = fstore::migrate_manifest(&pg_options(dir.path(), &schema)).unwrap();
    assert_eq!(report.rows_read, 1);
    let e = refused(embedded(dir.path(), &[]));
    assert_eq!(e.status(), Status::InvalidState, "{e}");
    let pg = Store::open(pg_options(dir.path(), &schema)).unwrap();
    assert_eq!(pg.manifest_rows().unwrap().len(), 1);
    assert_eq!(tags(&pg.get(&k, &Request::new()).unwrap().unwrap())[0], 3);
    // Migrating again is harmless.
    assert_eq!(fstore::migrate_manifest(&pg_options(dir.path(), &schema)).unwrap().inserted, 0);
}

#[test]
fn the_fstore_command_rebinds_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(embedded(dir.path(), &[])).unwrap();
    assert_eq!(refused(embedded(dir.path(), &[("lock.granularity", "entry")])).status(), Status::InvalidState);

    let cache = format!("cache_dir={}", dir.path().display());
    let out = Command::new(env!("CARGO_BIN_EXE_fstore"))
        .args(["-o", &cache, "-o", "manifest=duckdb", "-o", "lock.granularity=entry", "rebind"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("lock.granularity=entry"));

    Store::open(embedded(dir.path(), &[("lock.granularity", "entry")])).unwrap();
    assert_eq!(refused(embedded(dir.path(), &[])).status(), Status::InvalidState);

    // A bad option is a one-line reason and a failing exit status.
    let out = Command::new(env!("CARGO_BIN_EXE_fstore"))
        .args(["-o", &cache, "-o", "lock.granularity=row", "rebind"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad value 'row'"));
}
