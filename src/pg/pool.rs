//! A small pool of PostgreSQL connections.
//!
//! Written here rather than taken from r2d2 for two reasons. Every
//! check-out must honour the calling operation's deadline and cancellation
//! (a waiter must not block for a fixed pool timeout). And the pool must keep
//! no helper threads: r2d2 runs a scheduled thread pool whose threads park
//! in `parking_lot`'s process-global table, and a child forked while one of
//! them was mid-operation inherits that table locked and spins forever the
//! first time it parks. This pool uses only std's per-object locks and runs
//! no threads.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use super::{connect_error, message, PoolStats};
use crate::error::Result;
use crate::options::PostgresOptions;
use crate::request::Wait;
use crate::sync::lock;

/// An idle connection unused for longer than this is checked before use:
/// it may have been closed by a server restart or an idle timeout.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest single sleep while waiting for a connection.
const WAIT_SLICE: Duration = Duration::from_millis(50);

pub(crate) struct PgPool {
    config: postgres::Config,
    target: String,
    max: u32,
    state: Mutex<State>,
    returned: Condvar,
    waits: AtomicU64,
    server_version: u32,
}

struct State {
    idle: Vec<Idle>,
    /// Connections open, idle or checked out.
    open: u32,
}

struct Idle {
    client: Client,
    since: Instant,
}

impl PgPool {
    /// Connects `options.pool_min` connections (at least one, which proves
    /// the server reachable) and reads the server's version.
    pub fn connect(config: postgres::Config, target: String, options: &PostgresOptions) -> Result<Arc<Self>> {
        let mut first = config.connect(NoTls).map_err(|e| connect_error(&target, &e))?;
        let server_version = first
            .query_one("SELECT current_setting('server_version_num')::integer", &[])
            .map(|row| row.get::<_, i32>(0) as u32)
            .map_err(|e| connect_error(&target, &e))?;
        let mut idle = vec![Idle { client: first, since: Instant::now() }];
        let wanted = options.pool_min.min(options.pool_max).max(1);
        while (idle.len() as u32) < wanted {
            match config.connect(NoTls) {
                Ok(client) => idle.push(Idle { client, since: Instant::now() }),
                Err(e) => {
                    log::warn!("libfstore: opened {} of {wanted} PostgreSQL connections: {}", idle.len(), message(&e));
                    break;
                }
            }
        }
        let open = idle.len() as u32;
        Ok(Arc::new(PgPool {
            config,
            target,
            max: options.pool_max.max(1),
            state: Mutex::new(State { idle, open }),
            returned: Condvar::new(),
            waits: AtomicU64::new(0),
            server_version,
        }))
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// `server_version_num`, e.g. 150004.
    pub fn server_version(&self) -> u32 {
        self.server_version
    }

    /// Checks out a connection: an idle one, else a new one while fewer than
    /// `pool_max` are open, else waits for one to come back, within `wait`.
    pub fn get(self: &Arc<Self>, wait: &Wait) -> Result<Pooled> {
        let mut counted = false;
        let mut state = lock(&self.state);
        loop {
            if let Some(mut idle) = state.idle.pop() {
                drop(state);
                if idle.since.elapsed() < CHECK_AFTER_IDLE || idle.client.is_valid(CHECK_TIMEOUT).is_ok() {
                    return Ok(self.pooled(idle.client));
                }
                self.forget_one();
                state = lock(&self.state);
                continue;
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.config.connect(NoTls) {
                    Ok(client) => Ok(self.pooled(client)),
                    Err(e) => {
                        self.forget_one();
                        Err(connect_error(&self.target, &e))
                    }
                };
            }
            if !counted {
                self.waits.fetch_add(1, Ordering::Relaxed);
                counted = true;
            }
            let what = || format!("a PostgreSQL connection (all {} of postgres.pool_max in use)", self.max);
            wait.check(&what)?;
            state = self.returned.wait_timeout(state, wait.slice(WAIT_SLICE)).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn pooled(self: &Arc<Self>, client: Client) -> Pooled {
        Pooled { pool: Arc::clone(self), client: Some(client), broken: false }
    }

    /// A checked-out connection was closed rather than returned.
    fn forget_one(&self) {
        lock(&self.state).open -= 1;
        self.returned.notify_one();
    }

    pub fn stats(&self) -> PoolStats {
        let state = lock(&self.state);
        let idle = state.idle.len() as u32;
        PoolStats { size: state.open, idle, in_use: state.open - idle, waits: self.waits.load(Ordering::Relaxed) }
    }
}

/// A checked-out connection; returned to the pool when dropped, unless it
/// broke (then it is closed and its place freed).
pub(crate) struct Pooled {
    pool: Arc<PgPool>,
    client: Option<Client>,
    broken: bool,
}

impl Pooled {
    /// Closes the connection instead of returning it: its session is in an
    /// unknown state (a failed rollback, a lost lock).
    pub fn discard(&mut self) {
        self.broken = true;
    }

    pub fn target(&self) -> &str {
        &self.pool.target
    }
}

impl Deref for Pooled {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until drop")
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until drop")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        if self.broken || client.is_closed() {
            drop(client);
            self.pool.forget_one();
            return;
        }
        lock(&self.pool.state).idle.push(Idle { client, since: Instant::now() });
        self.pool.returned.notify_one();
    }
}
