//! Cross-process locks per 64-bit key, in two modes.
//!
//! A compute of an entry holds the entry's key exclusively and, under
//! `symbol` granularity, the symbol's key in shared mode: computes of
//! different entries of one symbol run in parallel, while another program
//! that takes the plain symbol key exclusively still excludes (and waits
//! for) all of them. A caller that finds an entry being computed waits for
//! the entry's key in shared mode, so that every waiter wakes at once when
//! the compute ends instead of queueing through the exclusive lock.
//!
//! Three backends: `flock(2)` files on the host ([`file`]), PostgreSQL
//! advisory locks ([`crate::pg::locks`]) across hosts, and an in-process
//! table ([`local`]) for stores that do not coordinate across processes.
//! Every wait is bounded by the caller's [`Wait`] and cancellable.

pub(crate) mod file;
pub(crate) mod local;

use std::time::Duration;

use crate::error::Result;
use crate::request::Wait;

/// The keys one compute holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Held shared around the entry's lock (the symbol's key), if any.
    pub outer: Option<i64>,
    /// Held exclusively while the entry is computed or changed.
    pub entry: i64,
}

pub(crate) enum Attempt {
    Held(Box<dyn Held>),
    /// Another caller holds the entry's key.
    Busy,
}

pub(crate) trait Locks: Send + Sync {
    /// Takes `plan.outer` shared (waiting for it, within `wait`) and then
    /// `plan.entry` exclusively without waiting: `Busy` when another holds it.
    fn try_lock(&self, plan: &Plan, wait: &Wait) -> Result<Attempt>;

    /// Returns once nobody holds `entry` exclusively (or `wait` runs out).
    fn wait_released(&self, entry: i64, wait: &Wait) -> Result<()>;
}

/// A held plan. Dropping it releases everything (a PostgreSQL transaction
/// rolls back); [`Held::release`] ends it normally.
pub(crate) trait Held: Send {
    /// `Err` when the lock was lost (the PostgreSQL session died or its
    /// transaction was ended by the server): another caller may hold it now.
    fn verify(&mut self) -> Result<()>;

    /// The PostgreSQL transaction that holds the lock, so that manifest rows
    /// are written in it and committed with the lock's release.
    fn session(&mut self) -> Option<&mut crate::pg::Session> {
        None
    }

    /// Ends the hold: commits a PostgreSQL transaction, unlocks files.
    fn release(self: Box<Self>) -> Result<()>;
}

const FIRST_BACKOFF: Duration = Duration::from_micros(200);
const MAX_BACKOFF: Duration = Duration::from_millis(5);

/// Polls `attempt` with a growing sleep until it yields a value or `wait`
/// runs out: for backends that cannot block interruptibly (`flock`).
pub(crate) fn poll<T>(wait: &Wait, what: &dyn Fn() -> String, mut attempt: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if let Some(value) = attempt()? {
            return Ok(value);
        }
        wait.check(what)?;
        std::thread::sleep(wait.slice(backoff));
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
