//! Host-wide locks for the embedded mode: `flock(2)` on a file per lock key.

use std::any::Any;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::shared_lock::LockBackend;

pub(crate) struct FileLocks {
    dir: PathBuf,
}

impl FileLocks {
    pub fn open(cache_dir: &Path) -> Result<Self> {
        let dir = cache_dir.join("locks");
        fs::create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        Ok(FileLocks { dir })
    }
}

impl LockBackend for FileLocks {
    /// Non-blocking: a blocking flock could not be cancelled.
    fn try_lock(&self, key: i64, _max_block: Duration) -> Result<Option<Box<dyn Any + Send>>> {
        let path = self.dir.join(format!("{:016x}.lock", key as u64));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot open lock file {}", path.display()), e))?;
        // SAFETY: flock on a descriptor we own. Closing the file releases it.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some(Box::new(file)));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => Ok(None),
            _ => Err(Error::io(format!("cannot lock {}", path.display()), err)),
        }
    }

    fn blocks(&self) -> bool {
        false
    }
}
