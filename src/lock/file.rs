//! Host-wide locks for the embedded mode: `flock(2)` on a file per key,
//! `locks/<key as 16 hex digits>.lock` in the cache directory.
//!
//! Lock files are opened read-only (a lock needs no write access, so caches
//! shared by a group work), released with an explicit `LOCK_UN` (a forked
//! child's copy of the descriptor must not keep a lock alive), and removed
//! by maintenance. Removal is safe because a locker checks, once it holds
//! the lock, that the path still names the file it locked, and starts over
//! if it does not.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::mem::ManuallyDrop;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

use super::{poll, Attempt, Held, Locks, Plan};
use crate::cache_dir::Modes;
use crate::error::{Error, Result};
use crate::fork;
use crate::request::Wait;

pub(crate) const LOCK_DIR: &str = "locks";

pub(crate) struct FileLocks {
    dir: PathBuf,
    modes: Modes,
}

impl FileLocks {
    /// The directory and lock files it creates get `modes`.
    pub fn open(cache_dir: &Path, modes: Modes) -> Result<Self> {
        let dir = cache_dir.join(LOCK_DIR);
        modes.create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        Ok(FileLocks { dir, modes })
    }

    fn path(&self, key: i64) -> PathBuf {
        self.dir.join(format!("{:016x}.lock", key as u64))
    }

    /// Removes the lock files nobody holds; returns how many. Lockers that
    /// raced with a removal notice it and use a new file.
    pub fn sweep(&self) -> Result<u64> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io(format!("cannot list {}", self.dir.display()), e)),
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "lock") {
                continue;
            }
            if let Some(lock) = FileLock::try_take(&path, libc::LOCK_EX, self.modes)? {
                // Unlink while holding it, so that no one locks this file anew.
                if fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
                drop(lock);
            }
        }
        Ok(removed)
    }
}

impl Locks for FileLocks {
    fn try_lock(&self, plan: &Plan, wait: &Wait) -> Result<Attempt> {
        let outer = match plan.outer {
            Some(key) => {
                let path = self.path(key);
                let what = || format!("lock file {} (held exclusively by another process)", path.display());
                Some(poll(wait, &what, || FileLock::try_take(&path, libc::LOCK_SH, self.modes))?)
            }
            None => None,
        };
        match FileLock::try_take(&self.path(plan.entry), libc::LOCK_EX, self.modes)? {
            Some(entry) => Ok(Attempt::Held(Box::new(FileHeld { _outer: outer, _entry: entry }))),
            None => Ok(Attempt::Busy), // `outer` is released here, before the caller waits
        }
    }

    fn wait_released(&self, entry: i64, wait: &Wait) -> Result<()> {
        let path = self.path(entry);
        let what = || format!("the compute holding lock file {}", path.display());
        poll(wait, &what, || FileLock::try_take(&path, libc::LOCK_SH, self.modes)).map(drop)
    }
}

/// The two locks of a plan; fields drop (and unlock) in order, entry last.
struct FileHeld {
    _outer: Option<FileLock>,
    _entry: FileLock,
}

impl Held for FileHeld {
    fn verify(&mut self) -> Result<()> {
        Ok(()) // a flock lives as long as its holder
    }

    fn release(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// One held `flock`.
pub(crate) struct FileLock {
    file: ManuallyDrop<File>,
    registered: Option<fork::Registered>,
    pid: u32,
}

impl FileLock {
    /// Takes the lock on `path` (creating the file with `modes`) without
    /// blocking; `Ok(None)` when another holds it in a conflicting mode.
    pub fn try_take(path: &Path, mode: libc::c_int, modes: Modes) -> Result<Option<FileLock>> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::invalid_argument(format!("lock path {} contains a NUL byte", path.display())))?;
        loop {
            let Some(file) = open_or_create(&c_path, modes).map_err(|e| Error::io(format!("cannot open lock file {}", path.display()), e))?
            else {
                continue; // removed between our two opens: create it anew
            };
            let fd = file.as_raw_fd();
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(fd, mode | libc::LOCK_NB) } != 0 {
                let err = io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => Ok(None),
                    _ => Err(Error::io(format!("cannot lock {}", path.display()), err)),
                };
            }
            let lock = FileLock { registered: Some(fork::register(fd)), file: ManuallyDrop::new(file), pid: std::process::id() };
            if lock.still_named_by(path)? {
                return Ok(Some(lock));
            }
            // Maintenance removed the file between our open and our lock: use a new one.
        }
    }

    fn still_named_by(&self, path: &Path) -> Result<bool> {
        let held = self.file.metadata().map_err(|e| Error::io(format!("cannot stat lock file {}", path.display()), e))?;
        match fs::metadata(path) {
            Ok(named) => Ok(named.dev() == held.dev() && named.ino() == held.ino()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("cannot stat lock file {}", path.display()), e)),
        }
    }
}

/// Opens a lock file read-only (a lock needs no write access), creating it
/// with `modes` if missing; only its creator sets its modes, since only the
/// owner may. `Ok(None)` when it vanished between the two opens.
fn open_or_create(c_path: &CString, modes: Modes) -> io::Result<Option<File>> {
    let flags = libc::O_RDONLY | libc::O_CLOEXEC;
    // SAFETY: a valid C string; O_CREAT with read-only access is allowed
    // and needs write access only to the directory.
    let fd = unsafe { libc::open(c_path.as_ptr(), flags | libc::O_CREAT | libc::O_EXCL, modes.file_mode() as libc::c_uint) };
    if fd >= 0 {
        // SAFETY: a descriptor we just opened and own.
        let file = unsafe { File::from_raw_fd(fd) };
        modes.apply_to_file(&file)?;
        return Ok(Some(file));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EEXIST) {
        return Err(err);
    }
    // SAFETY: as above, without creating.
    let fd = unsafe { libc::open(c_path.as_ptr(), flags) };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::NotFound { Ok(None) } else { Err(err) };
    }
    // SAFETY: a descriptor we just opened and own.
    Ok(Some(unsafe { File::from_raw_fd(fd) }))
}

impl Drop for FileLock {
    fn drop(&mut self) {
        if std::process::id() != self.pid {
            // A forked child's copy: the fork handler already closed it, and
            // unlocking would release the parent's lock.
            return;
        }
        drop(self.registered.take());
        // SAFETY: our own descriptor; unlock explicitly, then close.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
            ManuallyDrop::drop(&mut self.file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    fn wait(request: &Request, ms: u64) -> Wait<'_> {
        Wait::new(request, Duration::from_millis(ms))
    }

    #[test]
    fn computes_of_one_symbol_share_its_key_and_exclude_per_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (FileLocks::open(dir.path(), Modes::PRIVATE).unwrap(), FileLocks::open(dir.path(), Modes::PRIVATE).unwrap());
        let r = Request::new();
        let first = Plan { outer: Some(1), entry: 10 };
        let held = match a.try_lock(&first, &wait(&r, 100)).unwrap() {
            Attempt::Held(h) => h,
            Attempt::Busy => panic!("free"),
        };
        // Another entry of the same symbol: not blocked by the symbol's key.
        assert!(matches!(b.try_lock(&Plan { outer: Some(1), entry: 11 }, &wait(&r, 100)).unwrap(), Attempt::Held(_)));
        // The same entry: busy, at once.
        assert!(matches!(b.try_lock(&first, &wait(&r, 100)).unwrap(), Attempt::Busy));
        // A program taking the symbol's key exclusively waits for the compute.
        assert!(FileLock::try_take(&a.path(1), libc::LOCK_EX, Modes::PRIVATE).unwrap().is_none());
        // Waiting for the entry ends when the compute does, not before.
        let err = b.wait_released(10, &wait(&r, 50)).unwrap_err();
        assert_eq!(err.status(), crate::Status::Timeout);
        drop(held);
        b.wait_released(10, &wait(&r, 50)).unwrap();
        // And the exclusive symbol lock excludes every compute of the symbol.
        let exclusive = FileLock::try_take(&a.path(1), libc::LOCK_EX, Modes::PRIVATE).unwrap().unwrap();
        let err = b.try_lock(&Plan { outer: Some(1), entry: 12 }, &wait(&r, 50)).err().unwrap();
        assert_eq!(err.status(), crate::Status::Timeout);
        drop(exclusive);
    }

    #[test]
    fn sweeping_lock_files_never_lets_two_holders_in() {
        let dir = tempfile::tempdir().unwrap();
        let locks = FileLocks::open(dir.path(), Modes::PRIVATE).unwrap();
        let inside = AtomicUsize::new(0);
        let overlaps = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let swept = AtomicUsize::new(0);
        std::thread::scope(|s| {
            let sweeper = s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    swept.fetch_add(locks.sweep().unwrap() as usize, Ordering::SeqCst);
                }
            });
            let lockers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let r = Request::new();
                        for _ in 0..300 {
                            let w = wait(&r, 10_000);
                            let held = loop {
                                match locks.try_lock(&Plan { outer: None, entry: 7 }, &w).unwrap() {
                                    Attempt::Held(h) => break h,
                                    Attempt::Busy => locks.wait_released(7, &w).unwrap(),
                                }
                            };
                            if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                                overlaps.fetch_add(1, Ordering::SeqCst);
                            }
                            std::thread::yield_now();
                            inside.fetch_sub(1, Ordering::SeqCst);
                            drop(held);
                        }
                    })
                })
                .collect();
            for locker in lockers {
                locker.join().unwrap();
            }
            stop.store(true, Ordering::SeqCst);
            sweeper.join().unwrap();
        });
        assert_eq!(overlaps.load(Ordering::SeqCst), 0, "two holders at once");
        assert!(swept.load(Ordering::SeqCst) > 0, "the sweeper never removed a lock file");
        // Nobody holds a lock now: one sweep removes what the racing sweeper
        // left (the last locker may have released after its last pass).
        assert!(locks.sweep().unwrap() <= 1);
        assert_eq!(std::fs::read_dir(dir.path().join(LOCK_DIR)).unwrap().count(), 0);
        assert_eq!(locks.sweep().unwrap(), 0);
    }
}
