//! PostgreSQL: connection settings, errors, the pool and advisory locks.

mod locks;
mod pool;

use std::str::FromStr;
use std::time::Duration;

pub(crate) use self::locks::PgLocks;
pub(crate) use self::pool::{PgPool, Pooled};
use crate::error::{Error, Result, Status};
use crate::options::PostgresOptions;
use crate::request::Wait;

/// A pooled connection inside the transaction that holds a lock.
pub(crate) type Session = Pooled;

/// Pool figures, for monitoring.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open (idle or in use).
    pub size: u32,
    pub idle: u32,
    pub in_use: u32,
    /// Check-outs that found no idle connection and had to wait for one.
    pub waits: u64,
}

/// Advisory locks in the manifest's database, from `pg_locks` (all of them,
/// not only libfstore's).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LockStats {
    pub held: u64,
    pub waiting: u64,
}

/// The connection settings: options first, then the environment. `None` when
/// nothing names a server.
pub(crate) fn resolve_config(options: &PostgresOptions) -> Result<Option<(postgres::Config, String)>> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let dsn = options.dsn.clone().or_else(|| env("PG_MANIFEST_DSN"));
    let mut config = match dsn {
        // The parser's message may quote the DSN, and with it a password.
        Some(dsn) => postgres::Config::from_str(&dsn)
            .map_err(|_| Error::invalid_argument("postgres.dsn (or PG_MANIFEST_DSN) is not a valid connection string"))?,
        None => {
            let host = options.host.clone().or_else(|| env("PG_HOST"));
            let port = options.port.map(|p| p.to_string()).or_else(|| env("PG_PORT"));
            let database = options.database.clone().or_else(|| env("PG_DATABASE"));
            let user = options.user.clone().or_else(|| env("PG_USER"));
            if host.is_none() && port.is_none() && database.is_none() && user.is_none() {
                return Ok(None);
            }
            let mut config = postgres::Config::new();
            config.host(host.as_deref().unwrap_or("localhost"));
            if let Some(port) = port {
                config.port(port.parse().map_err(|_| Error::invalid_argument(format!("PG_PORT '{port}' is not a port number")))?);
            }
            if let Some(database) = database {
                config.dbname(&database);
            }
            config.user(user.as_deref().unwrap_or("postgres"));
            config
        }
    };
    if let Some(password) = options.password.clone().or_else(|| env("PG_PASSWORD")) {
        config.password(password);
    }
    if config.get_user().is_none() {
        config.user("postgres");
    }
    config.connect_timeout(options.connect_timeout);
    config.application_name("libfstore");
    // A dead server (or a cut link) must not leave a socket waiting for the
    // kernel's two-hour default.
    config
        .keepalives(true)
        .keepalives_idle(options.keepalives_idle)
        .keepalives_interval(options.keepalives_interval)
        .keepalives_retries(options.keepalives_count)
        .tcp_user_timeout(options.tcp_user_timeout);
    let target = describe(&config);
    Ok(Some((config, target)))
}

/// `user@host:port/db`, for messages: never the password.
fn describe(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("postgres"),
        config.get_dbname().unwrap_or(config.get_user().unwrap_or("postgres"))
    )
}

pub(crate) fn unavailable(target: &str, why: &str) -> Error {
    Error::new(Status::Unavailable, format!("PostgreSQL at {target} is unavailable: {why}"))
}

/// A failed connection attempt, with the server's SQLSTATE when it sent one
/// (28P01: bad password, 3D000: no such database, ...).
pub(crate) fn connect_error(target: &str, e: &postgres::Error) -> Error {
    let error = unavailable(target, &message(e));
    match e.code() {
        Some(code) => error.with_sqlstate(code.code()),
        None => error,
    }
}

/// A query error: `Unavailable` when the connection is gone, else `Database`.
pub(crate) fn pg_error(target: &str, what: &str, e: &postgres::Error) -> Error {
    let error = if is_connection_error(e) {
        unavailable(target, &format!("{what}: {}", message(e)))
    } else {
        Error::database(format!("{what} (PostgreSQL at {target}): {}", message(e)))
    };
    match e.code() {
        Some(code) => error.with_sqlstate(code.code()),
        None => error,
    }
}

/// Whether `e` means the session is gone (closed socket, terminated
/// backend, server shutting down) rather than a failed statement.
pub(crate) fn is_connection_error(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        None => true,
        // Class 08 (connection exception) and 57P0x (admin shutdown, crash
        // shutdown, cannot connect now, database dropped).
        Some(code) => code.code().starts_with("08") || code.code().starts_with("57P0"),
    }
}

/// The server's own words for a database error ("db error" alone says
/// nothing), else the error and its causes.
pub(crate) fn message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Advisory locks held and waited for in the pool's database.
pub(crate) fn lock_stats(pool: &std::sync::Arc<PgPool>, wait: &Wait) -> Result<LockStats> {
    let mut conn = pool.get(wait)?;
    let row = conn
        .query_one(
            "SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted)
             FROM pg_locks WHERE locktype = 'advisory'
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .map_err(|e| pg_error(pool.target(), "cannot read pg_locks", &e))?;
    Ok(LockStats { held: row.get::<_, i64>(0) as u64, waiting: row.get::<_, i64>(1) as u64 })
}

const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(1);

/// Runs `attempt` until it succeeds or fails for a reason other than an
/// unreachable server; a restarting server is retried within `wait`, and
/// when `wait` runs out the last `Unavailable` error is returned.
pub(crate) fn retry_unavailable<T>(wait: &Wait, what: &dyn Fn() -> String, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    let mut backoff = FIRST_RETRY;
    let mut warned = false;
    loop {
        match attempt() {
            Err(e) if e.status() == Status::Unavailable => {
                if let Err(stop) = wait.check(what) {
                    // Out of time: the server's error says more than "timeout".
                    return Err(if stop.status() == Status::Cancelled { stop } else { e });
                }
                if !warned {
                    log::warn!("libfstore: retrying {}: {e}", what());
                    warned = true;
                }
                std::thread::sleep(wait.slice(backoff));
                backoff = (backoff * 2).min(MAX_RETRY);
            }
            other => return other,
        }
    }
}
