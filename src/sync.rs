//! Small helpers around std's locks.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, recovering from poisoning: every critical section in this
/// crate leaves its data consistent before any call that could panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
