//! What a forked child inherits, and how libfstore keeps it from binding
//! the child or anyone else.
//!
//! A child gets a copy of every descriptor but none of the threads. Two
//! things follow, and `pthread_atfork` handlers deal with both:
//! - A lock held through a descriptor (`flock` belongs to the open file
//!   description) would be kept alive by the child's copy after the parent
//!   lets go or dies. Every held lock's descriptor is registered here, the
//!   child closes its copies, and holders release with an explicit
//!   `LOCK_UN` rather than by closing.
//! - A thread inside DuckDB at the moment of the fork leaves whatever it held
//!   locked in the child. Threads enter DuckDB through [`quiet`], and the
//!   fork waits (bounded) until none is inside.
//!
//! Only atomics are used here: a child may be forked while any thread is
//! anywhere, so nothing may depend on a mutex another thread could hold.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Descriptors of held locks, `-1` when free. Beyond this many locks held at
/// once, further ones are simply not closed in a child.
const SLOTS: usize = 4096;
static HELD_FDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];

/// Threads inside a section that a fork must not split.
static INSIDE: AtomicUsize = AtomicUsize::new(0);
/// A fork is about to happen: sections wait before entering.
static FORKING: AtomicBool = AtomicBool::new(false);
/// The longest a fork waits for sections to end; a section stuck longer (a
/// hung disk) must not hang the parent's fork too.
const FORK_WAIT: Duration = Duration::from_secs(10);

static INSTALL: Once = Once::new();

/// Forks this process has come through as the child: what a store checks
/// on every call instead of asking the kernel for its process id. Every
/// `fork()` runs the handlers; a process cloned without them (`vfork`,
/// `posix_spawn`) runs no library code before it execs.
static CHILD_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Changes in every child forked after [`install`]; never in the parent.
pub(crate) fn generation() -> u64 {
    CHILD_GENERATION.load(Ordering::Acquire)
}

/// Installs the fork handlers, once per process.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: the handlers are plain functions using only atomics, close() and nanosleep().
        let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        if rc != 0 {
            log::warn!("libfstore: pthread_atfork failed ({rc}); forked children may inherit held locks");
        }
    });
}

/// A registered descriptor; unregister it before releasing the lock.
pub(crate) struct Registered(Option<usize>);

/// Records `fd` as holding a lock, so that a forked child closes its copy.
pub(crate) fn register(fd: libc::c_int) -> Registered {
    install();
    for (i, slot) in HELD_FDS.iter().enumerate() {
        if slot.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            return Registered(Some(i));
        }
    }
    Registered(None)
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(i) = self.0.take() {
            HELD_FDS[i].store(-1, Ordering::Release);
        }
    }
}

/// Marks the current thread as inside a section no fork may split, for as
/// long as the guard lives. Waits while a fork is in progress.
pub(crate) fn quiet() -> Quiet {
    install();
    loop {
        while FORKING.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_micros(200));
        }
        INSIDE.fetch_add(1, Ordering::AcqRel);
        if !FORKING.load(Ordering::Acquire) {
            return Quiet(());
        }
        // A fork began between the check and the increment: step back out.
        INSIDE.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(crate) struct Quiet(());

impl Drop for Quiet {
    fn drop(&mut self) {
        INSIDE.fetch_sub(1, Ordering::AcqRel);
    }
}

extern "C" fn prepare() {
    FORKING.store(true, Ordering::Release);
    let started = Instant::now();
    while INSIDE.load(Ordering::Acquire) > 0 && started.elapsed() < FORK_WAIT {
        std::thread::sleep(Duration::from_micros(200));
    }
}

extern "C" fn parent() {
    FORKING.store(false, Ordering::Release);
}

extern "C" fn child() {
    CHILD_GENERATION.fetch_add(1, Ordering::AcqRel);
    // The threads that were inside a section do not exist here.
    INSIDE.store(0, Ordering::Release);
    for slot in &HELD_FDS {
        let fd = slot.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // Closing the child's copy leaves the parent's lock as it was:
            // the lock ends when the parent releases it (or dies).
            // SAFETY: a descriptor this process inherited and no longer uses.
            unsafe { libc::close(fd) };
        }
    }
    FORKING.store(false, Ordering::Release);
}
