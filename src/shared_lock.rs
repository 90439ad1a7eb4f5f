//! Cross-process locks, shared by the threads of one process.
//!
//! Threads of one process share a held lock: a leader of another entry that
//! maps to the same key (per-symbol granularity) joins it instead of waiting,
//! so that inside a process different entries never wait for each other.
//! Other processes are excluded while any holder remains. Only one thread per
//! key talks to the backend at a time; the others wait on a condition
//! variable. Every wait is bounded and cancellable.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::error::Result;
use crate::request::Wait;
use crate::sync::lock;

/// Something that can take an exclusive lock per 64-bit key across processes.
pub(crate) trait LockBackend: Send + Sync {
    /// Tries to take the lock of `key`, blocking at most `max_block` (a
    /// backend that cannot block returns at once). `Ok(None)`: busy. The
    /// returned value holds the lock until it is dropped.
    fn try_lock(&self, key: i64, max_block: Duration) -> Result<Option<Box<dyn Any + Send>>>;
    /// Whether `try_lock` blocks; if not, waiting polls with a backoff.
    fn blocks(&self) -> bool;
}

const FIRST_BACKOFF: Duration = Duration::from_micros(200);
const MAX_BACKOFF: Duration = Duration::from_millis(5);
/// Longest single blocking attempt, so that cancellation is noticed.
const BLOCK_SLICE: Duration = Duration::from_millis(100);

pub(crate) struct SharedLocks {
    backend: Box<dyn LockBackend>,
    slots: Mutex<HashMap<i64, Slot>>,
    changed: Condvar,
}

#[derive(Default)]
struct Slot {
    holders: usize,
    held: Option<Box<dyn Any + Send>>,
    /// A thread is talking to the backend outside the table's mutex.
    trying: bool,
}

impl Slot {
    fn unused(&self) -> bool {
        self.holders == 0 && !self.trying && self.held.is_none()
    }
}

/// A held share of a lock; dropping the last share releases it.
pub(crate) struct SharedLockGuard<'a> {
    locks: &'a SharedLocks,
    key: i64,
}

impl SharedLocks {
    pub fn new(backend: Box<dyn LockBackend>) -> Self {
        SharedLocks { backend, slots: Mutex::new(HashMap::new()), changed: Condvar::new() }
    }

    /// Takes (or joins) the lock of `key`. Returns the guard and whether the
    /// call had to wait for another process.
    pub fn acquire(&self, key: i64, wait: &Wait) -> Result<(SharedLockGuard<'_>, bool)> {
        let what = || format!("lock {key}, held by another process");
        let mut backoff = FIRST_BACKOFF;
        let mut waited = false;
        let mut slots = lock(&self.slots);
        loop {
            let slot = slots.entry(key).or_default();
            if slot.held.is_some() {
                slot.holders += 1;
                return Ok((SharedLockGuard { locks: self, key }, waited));
            }
            let mut attempted = false;
            if !slot.trying {
                slot.trying = true;
                drop(slots);
                let attempt = self.backend.try_lock(key, wait.slice(BLOCK_SLICE));
                attempted = true;
                slots = lock(&self.slots);
                let slot = slots.get_mut(&key).expect("a slot being tried stays in the table");
                slot.trying = false;
                self.changed.notify_all();
                match attempt {
                    Ok(Some(held)) => {
                        slot.held = Some(held);
                        slot.holders += 1;
                        return Ok((SharedLockGuard { locks: self, key }, waited));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        forget_if_unused(&mut slots, key);
                        return Err(e);
                    }
                }
            }
            waited = true;
            if let Err(e) = wait.check(&what) {
                forget_if_unused(&mut slots, key);
                return Err(e);
            }
            if attempted && self.backend.blocks() {
                continue; // the attempt itself waited
            }
            slots = self.changed.wait_timeout(slots, wait.slice(backoff)).unwrap_or_else(|e| e.into_inner()).0;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

fn forget_if_unused(slots: &mut HashMap<i64, Slot>, key: i64) {
    if slots.get(&key).is_some_and(Slot::unused) {
        slots.remove(&key);
    }
}

impl Drop for SharedLockGuard<'_> {
    fn drop(&mut self) {
        let released = {
            let mut slots = lock(&self.locks.slots);
            let slot = slots.get_mut(&self.key).expect("a held slot stays in the table");
            slot.holders -= 1;
            let released = if slot.holders == 0 { slot.held.take() } else { None };
            forget_if_unused(&mut slots, self.key);
            released
        };
        // Release outside the table's mutex: a backend may do I/O here.
        drop(released);
        self.locks.changed.notify_all();
    }
}
