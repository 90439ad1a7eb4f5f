//! The modes (and group) of what libfstore creates in a cache directory.
//!
//! Modes are given explicitly at creation and then set exactly with
//! `chmod`/`fchmod`, because the process umask would otherwise trim them
//! (a group cache needs `g+w` whatever the umask) and changing the umask is
//! process-wide and racy in a library.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// How directories and files are created: private to the owner, or shared
/// with one group.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Modes {
    dir: u32,
    file: u32,
    group: Option<libc::gid_t>,
}

impl Modes {
    /// Directories `0700`, files `0600`: only the owner.
    pub const PRIVATE: Modes = Modes { dir: 0o700, file: 0o600, group: None };

    /// Directories `2770` (setgid, so that what is created inside inherits
    /// the group), files `0660`, both owned by `gid`. Files are
    /// group-writable because every writer of a shared cache must be able
    /// to take its lock files and replace the manifest and its WAL.
    pub fn shared_with(gid: libc::gid_t) -> Modes {
        Modes { dir: 0o2770, file: 0o660, group: Some(gid) }
    }

    pub fn file_mode(&self) -> u32 {
        self.file
    }

    /// Creates `dir` and any missing parents; each one created gets these
    /// modes. Existing directories are left as they are.
    pub fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.create_dir_all(parent)?;
        }
        match fs::DirBuilder::new().mode(self.dir & 0o777).create(dir) {
            Ok(()) => self.apply_to_path(dir, self.dir),
            // Another process created it meanwhile: theirs has the same modes.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates a new file for writing (failing if it exists) with these modes.
    pub fn create_new_file(&self, path: &Path) -> io::Result<File> {
        let file = OpenOptions::new().write(true).create_new(true).mode(self.file).open(path)?;
        self.apply_to_file(&file)?;
        Ok(file)
    }

    /// Sets the file mode and group on an open file this process created.
    pub fn apply_to_file(&self, file: &File) -> io::Result<()> {
        let fd = file.as_raw_fd();
        if let Some(gid) = self.group {
            // SAFETY: a descriptor we own; uid -1 leaves the owner unchanged.
            if unsafe { libc::fchown(fd, u32::MAX, gid) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: as above. After chown, which may clear setgid bits.
        if unsafe { libc::fchmod(fd, self.file as libc::mode_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sets the file mode and group on a file another library created (the
    /// DuckDB manifest and its WAL) or copied; a missing file is no error.
    pub fn apply_to_file_path(&self, path: &Path) -> io::Result<()> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_file() => {
                let wanted_gid = self.group.unwrap_or(std::os::unix::fs::MetadataExt::gid(&meta));
                let mode = meta.permissions().mode() & 0o7777;
                if mode == self.file && std::os::unix::fs::MetadataExt::gid(&meta) == wanted_gid {
                    return Ok(()); // the common case: nothing to change
                }
                self.apply_to_path(path, self.file)
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn apply_to_path(&self, path: &Path, mode: u32) -> io::Result<()> {
        if let Some(gid) = self.group {
            let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
            // SAFETY: a valid C string; uid -1 leaves the owner unchanged.
            if unsafe { libc::chown(c_path.as_ptr(), u32::MAX, gid) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn private_modes_ignore_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        Modes::PRIVATE.create_dir_all(&nested).unwrap();
        assert_eq!(mode_of(&dir.path().join("a")), 0o700);
        assert_eq!(mode_of(&nested), 0o700);
        let file = nested.join("f");
        Modes::PRIVATE.create_new_file(&file).unwrap();
        assert_eq!(mode_of(&file), 0o600);
        assert!(Modes::PRIVATE.create_new_file(&file).is_err(), "create_new refuses an existing file");
    }

    #[test]
    fn shared_modes_are_exact_and_group_owned() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: plain getter.
        let gid = unsafe { libc::getegid() };
        let modes = Modes::shared_with(gid);
        let sub = dir.path().join("s");
        modes.create_dir_all(&sub).unwrap();
        assert_eq!(mode_of(&sub), 0o2770);
        assert_eq!(fs::metadata(&sub).unwrap().gid(), gid);
        let copied = sub.join("c");
        fs::write(&copied, b"x").unwrap();
        fs::set_permissions(&copied, fs::Permissions::from_mode(0o644)).unwrap();
        modes.apply_to_file_path(&copied).unwrap();
        assert_eq!(mode_of(&copied), 0o660);
        modes.apply_to_file_path(&sub.join("missing")).unwrap();
    }
}
