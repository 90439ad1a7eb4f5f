//! The command-line tool, run as a person or a script would: the real
//! binary on a real cache directory.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{key, reader, sample};
use fstore::{Options, Store};

fn embedded(dir: &Path) -> Options {
    let mut o = Options::default();
    o.set("cache_dir", dir.to_str().unwrap()).unwrap();
    o.set("manifest", "duckdb").unwrap();
    o
}

fn admin(dir: &Path, args: &[&str]) -> Output {
    let cache = format!("cache_dir={}", dir.display());
    Command::new(env!("CARGO_BIN_EXE_fstore-admin"))
        .args(["-o", &cache, "-o", "manifest=duckdb"])
        .args(args)
        .env_remove("PG_MANIFEST_DSN")
        .output()
        .unwrap()
}

/// Issue 9: the summary of a store with entries failed formatting its
/// `timestamp[us, UTC]` columns ("Invalid timezone \"UTC\"").
#[test]
fn the_summary_of_a_store_with_entries_prints() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(embedded(dir.path())).unwrap();
    let k = key("SUMM", 1, 5);
    store.put(&k, reader(sample(&k, 1)).as_mut()).unwrap();
    store.close().unwrap();

    let out = admin(dir.path(), &["summary"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("SUMM") && stdout.contains("returns"), "{stdout}");
}
