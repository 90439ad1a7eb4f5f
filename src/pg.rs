//! PostgreSQL: connection settings, the pool, and advisory locks.

use std::any::Any;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::NoTls;
use r2d2::{Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;

use crate::error::{Error, Result, Status};
use crate::options::PostgresOptions;
use crate::shared_lock::LockBackend;

type Manager = PostgresConnectionManager<NoTls>;
pub(crate) type Connection = PooledConnection<Manager>;

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

/// A pool of checked connections: each check-out tests the connection, and
/// broken ones (after a server restart or a dropped socket) are replaced.
pub(crate) struct PgPool {
    pool: Pool<Manager>,
    target: String,
    waits: AtomicU64,
}

impl PgPool {
    pub fn connect(config: postgres::Config, target: String, options: &PostgresOptions) -> Result<Self> {
        let pool = Pool::builder()
            .max_size(options.pool_max)
            .min_idle(Some(options.pool_min.min(options.pool_max)))
            .connection_timeout(options.connect_timeout)
            .test_on_check_out(true)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build(PostgresConnectionManager::new(config.clone(), NoTls))
            .map_err(|e| {
                // The pool only says it timed out; one direct attempt says why.
                let why = match config.connect(NoTls) {
                    Err(direct) => message(&direct),
                    Ok(_) => e.to_string(),
                };
                unavailable(&target, &why)
            })?;
        Ok(PgPool { pool, target, waits: AtomicU64::new(0) })
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn get(&self) -> Result<Connection> {
        if let Some(conn) = self.pool.try_get() {
            return Ok(conn);
        }
        self.waits.fetch_add(1, Ordering::Relaxed);
        self.pool.get().map_err(|e| unavailable(&self.target, &e.to_string()))
    }

    pub fn stats(&self) -> PoolStats {
        let state = self.pool.state();
        PoolStats {
            size: state.connections,
            idle: state.idle_connections,
            in_use: state.connections - state.idle_connections,
            waits: self.waits.load(Ordering::Relaxed),
        }
    }

    pub fn lock_stats(&self) -> Result<LockStats> {
        let mut conn = self.get()?;
        let row = conn
            .query_one(
                "SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted)
                 FROM pg_locks WHERE locktype = 'advisory'
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .map_err(|e| pg_error(&self.target, "cannot read pg_locks", &e))?;
        Ok(LockStats { held: row.get::<_, i64>(0) as u64, waiting: row.get::<_, i64>(1) as u64 })
    }
}

pub(crate) fn unavailable(target: &str, why: &str) -> Error {
    Error::new(Status::Unavailable, format!("PostgreSQL at {target} is unavailable: {why}"))
}

/// A query error: `Unavailable` when the connection is gone, else `Database`.
pub(crate) fn pg_error(target: &str, what: &str, e: &postgres::Error) -> Error {
    if e.is_closed() || e.code().is_none() {
        unavailable(target, &format!("{what}: {}", message(e)))
    } else {
        Error::database(format!("{what} (PostgreSQL at {target}): {}", message(e)))
    }
}

/// The server's own words for a database error ("db error" alone says
/// nothing), else the error and its causes.
fn message(e: &postgres::Error) -> String {
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

/// Transaction-scoped advisory locks (`pg_advisory_xact_lock`): released by
/// the server when the transaction ends, also when the holder dies.
pub(crate) struct PgLocks {
    pool: std::sync::Arc<PgPool>,
}

impl PgLocks {
    pub fn new(pool: std::sync::Arc<PgPool>) -> Self {
        PgLocks { pool }
    }
}

/// Holds one transaction open; ending it releases the advisory lock.
struct HeldTransaction {
    conn: Connection,
}

impl Drop for HeldTransaction {
    fn drop(&mut self) {
        let _ = self.conn.batch_execute("ROLLBACK");
    }
}

impl LockBackend for PgLocks {
    fn try_lock(&self, key: i64, max_block: Duration) -> Result<Option<Box<dyn Any + Send>>> {
        let target = self.pool.target();
        let mut conn = self.pool.get()?;
        conn.batch_execute("BEGIN").map_err(|e| pg_error(target, "cannot begin a transaction", &e))?;
        let mut held = HeldTransaction { conn };
        if max_block.is_zero() {
            let row = held
                .conn
                .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&key])
                .map_err(|e| pg_error(target, "pg_try_advisory_xact_lock failed", &e))?;
            return Ok(row.get::<_, bool>(0).then(|| Box::new(held) as Box<dyn Any + Send>));
        }
        let millis = max_block.as_millis().clamp(1, i32::MAX as u128);
        held.conn
            .batch_execute(&format!("SET LOCAL lock_timeout = {millis}"))
            .map_err(|e| pg_error(target, "cannot set lock_timeout", &e))?;
        match held.conn.execute("SELECT pg_advisory_xact_lock($1)", &[&key]) {
            Ok(_) => {}
            // lock_timeout ended the wait (SQLSTATE 55P03): busy, try again later.
            Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => return Ok(None),
            Err(e) => return Err(pg_error(target, "pg_advisory_xact_lock failed", &e)),
        }
        held.conn
            .batch_execute("SET LOCAL lock_timeout = 0")
            .map_err(|e| pg_error(target, "cannot reset lock_timeout", &e))?;
        Ok(Some(Box::new(held)))
    }

    fn blocks(&self) -> bool {
        true
    }
}
