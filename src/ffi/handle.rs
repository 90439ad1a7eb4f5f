//! `fstore_store` handles that stay safe to use while and after they close.
//!
//! A handle points at a small shell that is never freed: closing frees the
//! store inside it, not the shell. Every call enters the shell (a count) for
//! its duration; close marks the shell closed, ends the waits of the calls
//! inside, waits for them to leave and only then drops the store. A call
//! that arrives after (or races with) close finds the shell closed and fails
//! cleanly, so bindings need no reference counting of their own. The price
//! is one shell (under a hundred bytes) per store ever opened.

use std::cell::{RefCell, UnsafeCell};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::Store;
use crate::sync::lock;

/// An open store. Thread-safe: share one handle between threads. Not usable
/// in a child after fork(): calls there return FSTORE_STATUS_INVALID_STATE.
/// A child forked at any moment may open a store of its own: nothing the
/// parent holds (a lock, a connection pool's state) binds the child, and a
/// lock the parent holds comes free when the parent releases it.
pub struct fstore_store {
    /// `CLOSED` once close began, plus `CALL` per call inside.
    state: AtomicUsize,
    /// Set by close when it returns early (it runs inside a call on this
    /// store): the last call to leave drops the store.
    drop_on_leave: AtomicBool,
    /// `Some` from open until the store is dropped; read only by calls
    /// inside, taken only when none is and none can enter.
    open: UnsafeCell<Option<OpenStore>>,
    /// Wakes a close waiting for the last call to leave.
    left: (Mutex<()>, Condvar),
}

/// What a handle holds while open.
pub(crate) struct OpenStore {
    pub store: Store,
    /// `Store::warnings` joined, kept for `fstore_store_warnings`.
    pub warnings: Option<CString>,
}

// SAFETY: `open` is only read by calls inside (shared access to `Sync`
// data) and only written when no call is inside and none can enter; the
// state's acquire/release orders those accesses.
unsafe impl Sync for fstore_store {}
unsafe impl Send for fstore_store {}

const CLOSED: usize = 1;
const CALL: usize = 2;

thread_local! {
    /// Shells this thread is inside, innermost last: a close from inside a
    /// call (a compute callback closing its own store) must not wait for itself.
    static INSIDE: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Shells are never freed (see the module's comment); keeping them here
/// keeps them reachable, so that leak checkers do not report them.
static SHELLS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// A new handle owning `store`.
pub(crate) fn open_handle(store: Store) -> *mut fstore_store {
    let warnings = (!store.warnings().is_empty()).then(|| super::error::to_c_string(&store.warnings().join("\n")));
    let shell = Box::into_raw(Box::new(fstore_store {
        state: AtomicUsize::new(0),
        drop_on_leave: AtomicBool::new(false),
        open: UnsafeCell::new(Some(OpenStore { store, warnings })),
        left: (Mutex::new(()), Condvar::new()),
    }));
    lock(&SHELLS).push(shell as usize);
    shell
}

/// A call inside a handle: derefs to its open store until dropped.
pub(crate) struct Inside<'a> {
    shell: &'a fstore_store,
}

impl std::ops::Deref for Inside<'_> {
    type Target = OpenStore;

    fn deref(&self) -> &OpenStore {
        // SAFETY: while a call is inside, `open` is Some and not written.
        unsafe { (*self.shell.open.get()).as_ref().expect("an open store while calls are inside") }
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        INSIDE.with_borrow_mut(|inside| {
            if let Some(at) = inside.iter().rposition(|&s| s == self.shell as *const _ as usize) {
                inside.remove(at);
            }
        });
        let before = self.shell.state.fetch_sub(CALL, Ordering::AcqRel);
        if before == CLOSED | CALL {
            // The last call left a closed store.
            if self.shell.drop_on_leave.swap(false, Ordering::AcqRel) {
                // SAFETY: closed and empty: no call is inside or can enter.
                unsafe { drop_store(self.shell) };
            } else {
                let _guard = lock(&self.shell.left.0);
                self.shell.left.1.notify_all();
            }
        }
    }
}

/// Enters `store` for a call: `InvalidArgument` for NULL, `InvalidState`
/// once it is closed.
pub(crate) unsafe fn enter<'a>(store: *const fstore_store) -> Result<Inside<'a>> {
    let shell = store.as_ref().ok_or_else(|| Error::invalid_argument("store is NULL"))?;
    if shell.state.fetch_add(CALL, Ordering::Acquire) & CLOSED != 0 {
        // Leave again; the close in progress is not waiting for this call,
        // which never saw the store.
        let inside = Inside { shell };
        INSIDE.with_borrow_mut(|i| i.push(shell as *const _ as usize));
        drop(inside);
        return Err(Error::invalid_state("the store is closed"));
    }
    INSIDE.with_borrow_mut(|i| i.push(shell as *const _ as usize));
    Ok(Inside { shell })
}

/// Closes the handle: ends the waits of calls inside, waits for them to
/// leave (unless called from inside one: then the last to leave finishes
/// the close), and drops the store. A second close does nothing.
pub(crate) unsafe fn close_handle(store: *mut fstore_store) {
    let Some(shell) = store.as_ref() else { return };
    if shell.state.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED != 0 {
        return;
    }
    let own = INSIDE.with_borrow(|inside| inside.iter().filter(|&&s| s == store as usize).count());
    // Calls inside see `open` until they leave: a shared read is sound.
    if let Some(open) = (*shell.open.get()).as_ref() {
        open.store.begin_close();
    }
    if own > 0 {
        shell.drop_on_leave.store(true, Ordering::Release);
        return;
    }
    let mut guard = lock(&shell.left.0);
    while shell.state.load(Ordering::Acquire) != CLOSED {
        // Timed, so that a missed wake-up costs a slice, not a hang.
        guard = shell.left.1.wait_timeout(guard, Duration::from_millis(50)).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
    }
    drop(guard);
    drop_store(shell);
}

/// Drops the store of a closed handle that no call is inside.
unsafe fn drop_store(shell: &fstore_store) {
    let open = (*shell.open.get()).take();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(open)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;

    fn open_temp() -> (tempfile::TempDir, *mut fstore_store) {
        let dir = tempfile::tempdir().unwrap();
        let options = Options { cache_dir: Some(dir.path().to_path_buf()), ..Options::default() };
        let store = Store::open(options).unwrap();
        (dir, open_handle(store))
    }

    #[test]
    fn a_closed_handle_refuses_calls_and_closes_once() {
        let (_dir, handle) = open_temp();
        unsafe {
            assert!(enter(handle).is_ok());
            close_handle(handle);
            let err = enter(handle).err().expect("closed");
            assert_eq!(err.message(), "the store is closed");
            close_handle(handle); // no-op
            assert!((*(*handle).open.get()).is_none());
            assert_eq!((*handle).state.load(Ordering::Acquire), CLOSED);
        }
    }

    #[test]
    fn close_from_inside_a_call_finishes_when_it_leaves() {
        let (_dir, handle) = open_temp();
        unsafe {
            let inside = enter(handle).unwrap();
            close_handle(handle); // must not wait for its own call
            assert!((*(*handle).open.get()).is_some(), "the call inside still uses it");
            drop(inside);
            assert!((*(*handle).open.get()).is_none(), "the last call to leave dropped it");
        }
    }

    #[test]
    fn close_waits_for_calls_inside_other_threads() {
        let (_dir, handle) = open_temp();
        let address = handle as usize;
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || unsafe {
            let inside = enter(address as *const fstore_store).unwrap();
            entered_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            // Still usable: close is waiting for this call.
            assert!(inside.store.stats().hits == 0);
        });
        entered_rx.recv().unwrap();
        let started = std::time::Instant::now();
        unsafe { close_handle(handle) };
        assert!(started.elapsed() >= Duration::from_millis(200), "close returned while a call was inside");
        worker.join().unwrap();
    }
}
