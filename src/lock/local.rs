//! Locks within one process, for stores with `lock.cross_process=false`:
//! the same modes as the cross-process backends, so that `put`,
//! `invalidate` and maintenance exclude a compute in progress there too.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{Attempt, Held, Locks, Plan};
use crate::error::Result;
use crate::request::Wait;
use crate::sync::lock;

/// Longest single sleep, so that cancellation is noticed.
const SLICE: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Table {
    keys: Mutex<HashMap<i64, State>>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    shared: usize,
    exclusive: bool,
}

#[derive(Default)]
pub(crate) struct LocalLocks {
    table: Arc<Table>,
}

impl Table {
    /// Waits until `key` is not held exclusively.
    fn wait_unlocked<'a>(
        &'a self,
        mut keys: std::sync::MutexGuard<'a, HashMap<i64, State>>,
        key: i64,
        wait: &Wait,
    ) -> Result<std::sync::MutexGuard<'a, HashMap<i64, State>>> {
        let what = || format!("lock {key}, held by another thread");
        while keys.get(&key).is_some_and(|s| s.exclusive) {
            wait.check(&what)?;
            keys = self.changed.wait_timeout(keys, wait.slice(SLICE)).unwrap_or_else(|e| e.into_inner()).0;
        }
        Ok(keys)
    }
}

impl Locks for LocalLocks {
    fn try_lock(&self, plan: &Plan, wait: &Wait) -> Result<Attempt> {
        let mut keys = lock(&self.table.keys);
        if let Some(outer) = plan.outer {
            keys = self.table.wait_unlocked(keys, outer, wait)?;
        }
        if keys.get(&plan.entry).is_some_and(|s| s.exclusive || s.shared > 0) {
            return Ok(Attempt::Busy);
        }
        keys.entry(plan.entry).or_default().exclusive = true;
        if let Some(outer) = plan.outer {
            keys.entry(outer).or_default().shared += 1;
        }
        Ok(Attempt::Held(Box::new(LocalHeld { table: Arc::clone(&self.table), plan: *plan })))
    }

    fn wait_released(&self, entry: i64, wait: &Wait) -> Result<()> {
        let keys = lock(&self.table.keys);
        self.table.wait_unlocked(keys, entry, wait).map(drop)
    }
}

struct LocalHeld {
    table: Arc<Table>,
    plan: Plan,
}

impl Held for LocalHeld {
    fn verify(&mut self) -> Result<()> {
        Ok(())
    }

    fn release(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl Drop for LocalHeld {
    fn drop(&mut self) {
        let mut keys = lock(&self.table.keys);
        if let Some(state) = keys.get_mut(&self.plan.entry) {
            state.exclusive = false;
        }
        if let Some(outer) = self.plan.outer {
            if let Some(state) = keys.get_mut(&outer) {
                state.shared -= 1;
            }
        }
        keys.retain(|_, s| s.exclusive || s.shared > 0);
        drop(keys);
        self.table.changed.notify_all();
    }
}
