//! Transaction-scoped advisory locks (`pg_advisory_xact_lock`): released by
//! the server when the transaction ends, also when its holder dies.
//!
//! The holding transaction sits idle while the caller computes, so it is
//! protected from settings that would end it (a server's or a managed
//! service's `idle_in_transaction_session_timeout`), and the server is told
//! to probe the connection often, so that a dead or cut-off host's locks
//! come free within seconds rather than after the kernel's two hours. The
//! manifest row of an entry is written in the same transaction, so that the
//! row and the lock's release commit as one step.

use std::sync::Arc;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::SimpleQueryMessage;

use super::{pg_error, retry_unavailable, PgPool, Pooled};
use crate::error::{Error, Result, Status};
use crate::lock::{Attempt, Held, Locks, Plan};
use crate::options::PostgresOptions;
use crate::request::Wait;

/// Longest single lock wait on the server, so that the deadline and
/// cancellation are noticed.
const BLOCK_SLICE: Duration = Duration::from_millis(100);

pub(crate) struct PgLocks {
    pool: Arc<PgPool>,
    /// `SET LOCAL` statements that begin every holding transaction.
    prelude: String,
}

impl PgLocks {
    pub fn new(pool: Arc<PgPool>, options: &PostgresOptions) -> Self {
        let seconds = |d: Duration| d.as_secs().max(1);
        let mut prelude = format!(
            "SET LOCAL idle_in_transaction_session_timeout = 0; SET LOCAL statement_timeout = 0; \
             SET LOCAL tcp_keepalives_idle = {}; SET LOCAL tcp_keepalives_interval = {}; \
             SET LOCAL tcp_keepalives_count = {};",
            seconds(options.keepalives_idle),
            seconds(options.keepalives_interval),
            options.keepalives_count
        );
        // tcp_user_timeout exists from PostgreSQL 12 on.
        if pool.server_version() >= 120_000 {
            prelude.push_str(&format!(" SET LOCAL tcp_user_timeout = {};", options.tcp_user_timeout.as_millis()));
        }
        PgLocks { pool, prelude }
    }
}

/// Whether the last row of a simple query's result has "t" in its last column.
fn last_flag(messages: &[SimpleQueryMessage]) -> bool {
    messages
        .iter()
        .rev()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(row.len() - 1) == Some("t")),
            _ => None,
        })
        .unwrap_or(false)
}

fn lock_timed_out(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

/// Ends a failed transaction so that the connection can be reused; a
/// connection that cannot even roll back is closed.
fn roll_back(conn: &mut Pooled) {
    if conn.simple_query("ROLLBACK").is_err() {
        conn.discard();
    }
}

impl Locks for PgLocks {
    fn try_lock(&self, plan: &Plan, wait: &Wait) -> Result<Attempt> {
        let what = || format!("advisory lock {} (held by another session)", plan.outer.unwrap_or(plan.entry));
        retry_unavailable(wait, &what, || {
            let mut conn = self.pool.get(wait)?;
            loop {
                let millis = wait.slice(BLOCK_SLICE).as_millis().max(1);
                let outer = plan.outer.map(|k| format!("pg_advisory_xact_lock_shared({k}), ")).unwrap_or_default();
                // One round trip: the shared wait is bounded by lock_timeout,
                // the entry is only tried, and the timeout is reset for the
                // manifest statements that follow in this transaction.
                let sql = format!(
                    "BEGIN; {} SET LOCAL lock_timeout = {millis}; SELECT {outer}pg_try_advisory_xact_lock({}); \
                     SET LOCAL lock_timeout = 0",
                    self.prelude, plan.entry
                );
                match conn.simple_query(&sql) {
                    Ok(messages) if last_flag(&messages) => {
                        return Ok(Attempt::Held(Box::new(PgHeld { conn: Some(conn) })));
                    }
                    Ok(_) => {
                        roll_back(&mut conn);
                        return Ok(Attempt::Busy);
                    }
                    Err(e) if lock_timed_out(&e) => {
                        roll_back(&mut conn);
                        wait.check(&what)?;
                    }
                    Err(e) => {
                        roll_back(&mut conn);
                        return Err(pg_error(conn.target(), "cannot take an advisory lock", &e));
                    }
                }
            }
        })
    }

    fn wait_released(&self, entry: i64, wait: &Wait) -> Result<()> {
        let what = || format!("the compute holding advisory lock {entry}");
        retry_unavailable(wait, &what, || {
            let mut conn = self.pool.get(wait)?;
            loop {
                let millis = wait.slice(BLOCK_SLICE).as_millis().max(1);
                let sql = format!(
                    "BEGIN; SET LOCAL lock_timeout = {millis}; SELECT pg_advisory_xact_lock_shared({entry}); ROLLBACK"
                );
                match conn.simple_query(&sql) {
                    Ok(_) => return Ok(()),
                    Err(e) if lock_timed_out(&e) => {
                        roll_back(&mut conn);
                        wait.check(&what)?;
                    }
                    Err(e) => {
                        roll_back(&mut conn);
                        return Err(pg_error(conn.target(), "cannot wait for an advisory lock", &e));
                    }
                }
            }
        })
    }
}

/// An open transaction holding a plan's advisory locks.
struct PgHeld {
    conn: Option<Pooled>,
}

impl PgHeld {
    fn conn(&mut self) -> &mut Pooled {
        self.conn.as_mut().expect("present until released")
    }
}

impl Held for PgHeld {
    /// A transaction-scoped lock ends only with its transaction, so the lock
    /// is held exactly as long as the session answers inside it.
    fn verify(&mut self) -> Result<()> {
        let conn = self.conn();
        if let Err(e) = conn.simple_query("SELECT 1") {
            conn.discard();
            let target = conn.target().to_string();
            return Err(Error::new(
                Status::Unavailable,
                format!("the advisory lock's session on PostgreSQL at {target} ended: {}", super::message(&e)),
            ));
        }
        Ok(())
    }

    fn session(&mut self) -> Option<&mut Pooled> {
        Some(self.conn())
    }

    fn release(mut self: Box<Self>) -> Result<()> {
        let mut conn = self.conn.take().expect("released once");
        conn.simple_query("COMMIT").map(drop).map_err(|e| {
            conn.discard();
            pg_error(conn.target(), "cannot commit the lock's transaction", &e)
        })
    }
}

impl Drop for PgHeld {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            roll_back(&mut conn);
        }
    }
}
