//! Store options, set by name so that every binding shares one parser.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// What one cross-process lock covers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LockGranularity {
    /// One lock per symbol: the original design's key, shared with other
    /// programs that lock the same symbols.
    Symbol,
    /// One lock per entry: date ranges and configs of a symbol never wait on
    /// each other.
    Entry,
}

impl LockGranularity {
    pub fn name(self) -> &'static str {
        match self {
            LockGranularity::Symbol => "symbol",
            LockGranularity::Entry => "entry",
        }
    }
}

/// Which manifest backend a store uses.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ManifestChoice {
    /// PostgreSQL when configured and reachable, else the embedded DuckDB
    /// manifest (with a warning when PostgreSQL was configured but failed).
    Auto,
    /// PostgreSQL, or fail with `Unavailable`.
    Postgres,
    /// The embedded DuckDB manifest in the cache directory.
    DuckDb,
}

/// PostgreSQL settings. Unset fields fall back to the environment
/// (`PG_MANIFEST_DSN`, or `PG_HOST`, `PG_PORT`, `PG_DATABASE`, `PG_USER`,
/// `PG_PASSWORD`).
#[derive(Clone, Default)]
pub struct PostgresOptions {
    pub dsn: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub pool_min: u32,
    pub pool_max: u32,
    /// Schema holding libfstore's tables.
    pub schema: String,
    /// Create and upgrade the schema at open. Off for workers without DDL
    /// rights: run the migrate step once instead.
    pub auto_migrate: bool,
    pub connect_timeout: Duration,
    /// TCP keepalives on every connection, on both ends (the server's side
    /// through `SET LOCAL` in each lock's transaction): a dead or cut-off
    /// host's locks come free after about idle + interval x count.
    pub keepalives_idle: Duration,
    pub keepalives_interval: Duration,
    pub keepalives_count: u32,
    /// How long sent data may stay unacknowledged before the connection is
    /// dropped (`TCP_USER_TIMEOUT`), on both ends.
    pub tcp_user_timeout: Duration,
}

impl std::fmt::Debug for PostgresOptions {
    // Never print the password (nor a DSN, which may hold one).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("dsn", &self.dsn.as_ref().map(|_| "<set>"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("pool_min", &self.pool_min)
            .field("pool_max", &self.pool_max)
            .field("schema", &self.schema)
            .field("auto_migrate", &self.auto_migrate)
            .field("connect_timeout", &self.connect_timeout)
            .field("keepalives_idle", &self.keepalives_idle)
            .field("keepalives_interval", &self.keepalives_interval)
            .field("keepalives_count", &self.keepalives_count)
            .field("tcp_user_timeout", &self.tcp_user_timeout)
            .finish()
    }
}

/// Options of a store. Build with [`Options::default`] and [`Options::set`].
#[derive(Clone, Debug)]
pub struct Options {
    /// `None` means `$FSTORE_CACHE_DIR`, else `~/.feature_cache`.
    pub cache_dir: Option<PathBuf>,
    /// The group (name or gid) that shares the cache directory; `None`
    /// means `$FSTORE_CACHE_GROUP`, else a cache private to its owner.
    pub cache_group: Option<String>,
    /// Refuse a cache directory that others could write. Off only for file
    /// systems without Unix permissions; every open then logs a warning.
    pub check_permissions: bool,
    pub lock_granularity: LockGranularity,
    /// Coordinate computes between processes. Off, only threads of one process
    /// share a compute; kept for tests and single-process jobs.
    pub cross_process_lock: bool,
    /// The longest a call waits for another caller's compute or for a lock.
    /// Zero means "do not wait": a busy key returns a timeout at once.
    pub wait_timeout: Duration,
    /// Check each entry's checksum when it is read.
    pub verify_checksums: bool,
    /// Bytes of decoded entries each store keeps in memory (0: none). A
    /// cached entry is served only while its file is unchanged.
    pub memory_cache_bytes: usize,
    /// Mixed into every lock key, for databases (or hosts) shared with other
    /// programs; empty keeps the plain per-symbol key that others compute too.
    pub lock_namespace: String,
    pub manifest: ManifestChoice,
    pub postgres: PostgresOptions,
    /// Distinct symbols, and feature sets, that get metric series of their
    /// own; the rest share the series labelled `other`.
    pub metrics_max_symbols: usize,
    pub metrics_max_feature_sets: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_dir: None,
            cache_group: None,
            check_permissions: true,
            lock_granularity: LockGranularity::Symbol,
            cross_process_lock: true,
            wait_timeout: Duration::from_secs(600),
            verify_checksums: true,
            memory_cache_bytes: 64 << 20,
            lock_namespace: String::new(),
            manifest: ManifestChoice::Auto,
            metrics_max_symbols: 1000,
            metrics_max_feature_sets: 100,
            postgres: PostgresOptions {
                pool_min: 2,
                pool_max: 16,
                schema: "fstore".into(),
                auto_migrate: true,
                connect_timeout: Duration::from_secs(5),
                keepalives_idle: Duration::from_secs(5),
                keepalives_interval: Duration::from_secs(1),
                keepalives_count: 5,
                tcp_user_timeout: Duration::from_secs(10),
                ..Default::default()
            },
        }
    }
}

/// The option names [`Options::set`] accepts.
pub const OPTION_NAMES: &[&str] = &[
    "cache_dir",
    "cache.group",
    "cache.check_permissions",
    "lock.granularity",
    "lock.cross_process",
    "lock.namespace",
    "wait.timeout_ms",
    "verify_checksums",
    "memory_cache_mb",
    "manifest",
    "metrics.max_symbols",
    "metrics.max_feature_sets",
    "postgres.dsn",
    "postgres.host",
    "postgres.port",
    "postgres.database",
    "postgres.user",
    "postgres.password",
    "postgres.pool_min",
    "postgres.pool_max",
    "postgres.schema",
    "postgres.auto_migrate",
    "postgres.connect_timeout_ms",
    "postgres.keepalives_idle_ms",
    "postgres.keepalives_interval_ms",
    "postgres.keepalives_count",
    "postgres.tcp_user_timeout_ms",
];

impl Options {
    /// Sets the option `name` from its text form; unknown names and bad values
    /// are refused with a message that names them.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        match name {
            "cache_dir" => {
                if value.is_empty() {
                    return Err(Error::invalid_argument("option cache_dir: value is empty"));
                }
                self.cache_dir = Some(PathBuf::from(value));
            }
            "cache.group" => {
                // Resolved now too, so that a typo fails where it was made.
                crate::cache_dir::Group::resolve(value, "option cache.group")?;
                self.cache_group = Some(value.to_string());
            }
            "cache.check_permissions" => self.check_permissions = parse_bool(name, value)?,
            "lock.granularity" => {
                self.lock_granularity = match value {
                    "symbol" => LockGranularity::Symbol,
                    "entry" => LockGranularity::Entry,
                    _ => return Err(bad_value(name, value, "symbol or entry")),
                }
            }
            "lock.cross_process" => self.cross_process_lock = parse_bool(name, value)?,
            "wait.timeout_ms" => self.wait_timeout = Duration::from_millis(parse_millis(name, value)?),
            "verify_checksums" => self.verify_checksums = parse_bool(name, value)?,
            "lock.namespace" => self.lock_namespace = value.to_string(),
            "metrics.max_symbols" => self.metrics_max_symbols = parse_count(name, value, 0)? as usize,
            "metrics.max_feature_sets" => self.metrics_max_feature_sets = parse_count(name, value, 0)? as usize,
            "memory_cache_mb" => {
                let mb = value.parse::<usize>().ok().filter(|mb| *mb <= 1 << 30);
                self.memory_cache_bytes = mb.ok_or_else(|| bad_value(name, value, "a whole number of MiB"))? << 20;
            }
            "manifest" => {
                self.manifest = match value {
                    "auto" => ManifestChoice::Auto,
                    "postgres" => ManifestChoice::Postgres,
                    "duckdb" => ManifestChoice::DuckDb,
                    _ => return Err(bad_value(name, value, "auto, postgres or duckdb")),
                }
            }
            "postgres.dsn" => self.postgres.dsn = non_empty(name, value)?,
            "postgres.host" => self.postgres.host = non_empty(name, value)?,
            "postgres.port" => {
                self.postgres.port =
                    Some(value.parse().ok().filter(|p| *p > 0).ok_or_else(|| bad_value(name, value, "a port number"))?)
            }
            "postgres.database" => self.postgres.database = non_empty(name, value)?,
            "postgres.user" => self.postgres.user = non_empty(name, value)?,
            // The value is a secret: never echo it.
            "postgres.password" => self.postgres.password = Some(value.to_string()),
            "postgres.pool_min" => self.postgres.pool_min = parse_count(name, value, 0)?,
            "postgres.pool_max" => self.postgres.pool_max = parse_count(name, value, 1)?,
            "postgres.schema" => {
                check_identifier(value).map_err(|why| bad_value(name, value, why))?;
                self.postgres.schema = value.to_string();
            }
            "postgres.auto_migrate" => self.postgres.auto_migrate = parse_bool(name, value)?,
            "postgres.connect_timeout_ms" => {
                self.postgres.connect_timeout = Duration::from_millis(parse_millis(name, value)?.max(1))
            }
            // The server takes the keepalive settings in whole seconds.
            "postgres.keepalives_idle_ms" => self.postgres.keepalives_idle = parse_seconds_ms(name, value)?,
            "postgres.keepalives_interval_ms" => self.postgres.keepalives_interval = parse_seconds_ms(name, value)?,
            "postgres.keepalives_count" => self.postgres.keepalives_count = parse_count(name, value, 1)?,
            "postgres.tcp_user_timeout_ms" => {
                self.postgres.tcp_user_timeout = Duration::from_millis(parse_millis(name, value)?.max(1))
            }
            _ => {
                return Err(Error::invalid_argument(format!(
                    "unknown option '{name}' (known: {})",
                    OPTION_NAMES.join(", ")
                )))
            }
        }
        Ok(())
    }

    /// The cache directory this store will use.
    pub fn resolved_cache_dir(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.cache_dir {
            return Ok(dir.clone());
        }
        if let Some(dir) = std::env::var_os("FSTORE_CACHE_DIR").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => Ok(PathBuf::from(home).join(".feature_cache")),
            None => Err(Error::invalid_argument(
                "no cache directory: set option cache_dir or FSTORE_CACHE_DIR (HOME is unset)",
            )),
        }
    }
}

fn bad_value(name: &str, value: &str, expected: &str) -> Error {
    Error::invalid_argument(format!("option {name}: bad value '{value}', expected {expected}"))
}

fn non_empty(name: &str, value: &str) -> Result<Option<String>> {
    if value.is_empty() {
        return Err(Error::invalid_argument(format!("option {name}: value is empty")));
    }
    Ok(Some(value.to_string()))
}

fn parse_count(name: &str, value: &str, min: u32) -> Result<u32> {
    value.parse::<u32>().ok().filter(|n| *n >= min).ok_or_else(|| bad_value(name, value, &format!("a whole number >= {min}")))
}

/// A PostgreSQL schema name libfstore will create: lower-case letters,
/// digits and '_', not starting with a digit, at most 63 bytes.
pub(crate) fn check_identifier(value: &str) -> std::result::Result<(), &'static str> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && !value.starts_with(|c: char| c.is_ascii_digit())
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err("a lower-case identifier of letters, digits and '_' (at most 63 bytes, not starting with a digit)")
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" => Ok(false),
        _ => Err(bad_value(name, value, "true or false")),
    }
}

/// Milliseconds that are a whole, positive number of seconds.
fn parse_seconds_ms(name: &str, value: &str) -> Result<Duration> {
    let ms = parse_millis(name, value)?;
    if ms == 0 || ms % 1000 != 0 || ms / 1000 > i32::MAX as u64 {
        return Err(bad_value(name, value, "a whole, positive number of seconds in milliseconds (e.g. 5000)"));
    }
    Ok(Duration::from_millis(ms))
}

pub(crate) fn parse_millis(name: &str, value: &str) -> Result<u64> {
    value.parse::<u64>().map_err(|_| bad_value(name, value, "a whole number of milliseconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_known_options() {
        let mut o = Options::default();
        o.set("cache_dir", "/tmp/x").unwrap();
        o.set("lock.granularity", "entry").unwrap();
        o.set("lock.cross_process", "false").unwrap();
        o.set("wait.timeout_ms", "250").unwrap();
        o.set("verify_checksums", "off").unwrap();
        assert_eq!(o.resolved_cache_dir().unwrap(), PathBuf::from("/tmp/x"));
        assert_eq!(o.lock_granularity, LockGranularity::Entry);
        assert!(!o.cross_process_lock && !o.verify_checksums);
        assert_eq!(o.wait_timeout, Duration::from_millis(250));
    }

    #[test]
    fn refuses_unknown_names_and_bad_values() {
        let mut o = Options::default();
        let e = o.set("cache_dri", "/x").unwrap_err();
        assert!(e.message().contains("unknown option 'cache_dri'"), "{e}");
        let e = o.set("lock.granularity", "row").unwrap_err();
        assert!(e.message().contains("bad value 'row'"), "{e}");
        assert!(o.set("wait.timeout_ms", "-1").is_err());
        assert!(o.set("cache_dir", "").is_err());
        assert!(o.set("manifest", "sqlite").unwrap_err().message().contains("auto, postgres or duckdb"));
        for bad in ["", "Fstore", "1abc", "a-b", "x; DROP TABLE y"] {
            assert!(o.set("postgres.schema", bad).is_err(), "{bad}");
        }
        assert!(o.set("postgres.pool_max", "0").is_err());
        assert!(o.set("postgres.port", "70000").is_err());
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let mut o = Options::default();
        o.set("postgres.password", "hunter2-secret").unwrap();
        o.set("postgres.dsn", "postgresql://u:hunter2-secret@h/db").unwrap();
        assert!(!format!("{o:?}").contains("hunter2"));
        // A bad value error for the password never quotes it, as none exists.
        assert!(o.set("postgres.password", "").is_ok());
    }
}
