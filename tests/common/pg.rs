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

/// `dsn` with its database replaced by `database`, in key=value form.
pub fn dsn_for_database(dsn: &str, database: &str) -> String {
    let config: postgres::Config = dsn.parse().expect("FSTORE_TEST_PG_DSN is a valid connection string");
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut parts = Vec::new();
    if let Some(host) = config.get_hosts().first() {
        let host = match host {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        };
        parts.push(format!("host={}", quote(&host)));
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={}", quote(user)));
    }
    if let Some(password) = config.get_password() {
        parts.push(format!("password={}", quote(&String::from_utf8_lossy(password))));
    }
    parts.push(format!("dbname={}", quote(database)));
    parts.join(" ")
}

/// A database of its own on the test server (so that its sessions can be
/// told apart and it can carry its own settings), dropped with its sessions.
pub struct TestDatabase {
    pub name: String,
    pub dsn: String,
    admin_dsn: String,
}

impl TestDatabase {
    /// Creates `name` (dropping a leftover first) with `settings` (`ALTER
    /// DATABASE ... SET name = value`), on the server of `admin_dsn`.
    pub fn create(admin_dsn: &str, name: &str, settings: &[(&str, &str)]) -> TestDatabase {
        let mut admin = postgres::Client::connect(admin_dsn, postgres::NoTls).expect("connect to the test server");
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        for (setting, value) in settings {
            admin.batch_execute(&format!("ALTER DATABASE {name} SET {setting} = '{value}'")).unwrap();
        }
        TestDatabase { name: name.to_string(), dsn: dsn_for_database(admin_dsn, name), admin_dsn: admin_dsn.to_string() }
    }

    /// Options for a store whose manifest and locks live in this database.
    pub fn options(&self, cache: &Path) -> Options {
        let mut o = Options::default();
        o.set("cache_dir", cache.to_str().unwrap()).unwrap();
        o.set("manifest", "postgres").unwrap();
        o.set("postgres.dsn", &self.dsn).unwrap();
        o
    }

    /// libfstore's sessions open on this database now.
    pub fn libfstore_sessions(&self) -> i64 {
        let mut admin = postgres::Client::connect(&self.admin_dsn, postgres::NoTls).expect("connect to the test server");
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'libfstore'",
                &[&self.name],
            )
            .unwrap()
            .get(0)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let dropped = postgres::Client::connect(&self.admin_dsn, postgres::NoTls)
            .and_then(|mut admin| admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)));
        if let Err(e) = dropped {
            eprintln!("cannot drop test database {}: {e}", self.name);
        }
    }
}

/// A PostgreSQL server of a test's own (tests/pg_server.sh), listening on
/// `address`; stopped and removed on drop.
pub struct ThrowawayServer {
    dir: std::path::PathBuf,
    pub dsn: String,
}

impl ThrowawayServer {
    pub fn start(address: &str) -> Result<ThrowawayServer, String> {
        // Not under a private temporary directory: the server runs as the
        // `postgres` user when the tests run as root.
        let dir = std::env::temp_dir().join(format!("fstore-pg-{}-{address}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pg_server.sh");
        let out = std::process::Command::new(&script)
            .arg("start")
            .arg(&dir)
            .arg(address)
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        // From here on, dropping `server` stops whatever was started.
        let mut server = ThrowawayServer { dir, dsn: String::new() };
        if !out.status.success() {
            return Err(format!("tests/pg_server.sh start failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let dsn = stdout
            .lines()
            .find_map(|l| l.strip_prefix("export FSTORE_TEST_PG_DSN='"))
            .and_then(|l| l.strip_suffix('\''))
            .ok_or_else(|| format!("tests/pg_server.sh printed no DSN: {stdout}"))?;
        server.dsn = dsn.to_string();
        Ok(server)
    }
}

impl Drop for ThrowawayServer {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pg_server.sh");
        let _ = std::process::Command::new(script).arg("stop").arg(&self.dir).status();
    }
}
