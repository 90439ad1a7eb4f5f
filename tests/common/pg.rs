//! PostgreSQL helpers for the integration tests.

use std::path::Path;

use fstore::Options;

pub fn dsn() -> String {
    std::env::var("FSTORE_TEST_PG_DSN").unwrap_or_else(|_| {
        panic!(
            "PostgreSQL tests need a server: run tests/run_all.sh, which starts a throwaway one \
             (install PostgreSQL's server package, e.g. apt-get install postgresql), \
             or set FSTORE_TEST_PG_DSN to an existing server"
        )
    })
}

pub fn admin() -> postgres::Client {
    postgres::Client::connect(&dsn(), postgres::NoTls).expect("connect to the test server")
}

/// Options for a store on the test server, in a schema of its own.
pub fn pg_options(cache: &Path, schema: &str) -> Options {
    let mut o = Options::default();
    o.set("cache_dir", cache.to_str().unwrap()).unwrap();
    o.set("manifest", "postgres").unwrap();
    o.set("postgres.dsn", &dsn()).unwrap();
    o.set("postgres.schema", schema).unwrap();
    o
}

/// Drops `name` so a test starts from nothing; returns it.
pub fn fresh_schema(name: &str) -> String {
    admin().batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).unwrap();
    name.to_string()
}

/// The advisory key of an entry's lock: the first 8 bytes of its 64-hex
/// entry id, read as a big-endian signed 64-bit integer.
pub fn entry_lock_key(entry_id: &str) -> i64 {
    u64::from_str_radix(&entry_id[..16], 16).expect("an entry id is hex") as i64
}

/// Backends of libfstore sessions holding a granted advisory lock on `key`
/// (the bigint form).
pub fn advisory_lock_holders(admin: &mut postgres::Client, key: i64) -> Vec<i32> {
    admin
        .query(
            "SELECT DISTINCT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND ((l.classid::int8 << 32) | l.objid::int8) = $1
               AND a.application_name = 'libfstore'",
            &[&key],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}
