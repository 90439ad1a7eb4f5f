//! Opening a cache directory: created private (or shared with one group),
//! and refused when someone else could write it.
//!
//! A footer checksum is not a signature: whoever can write the directory,
//! or replace it through a parent, can plant an entry that verifies. So the
//! directory and every parent are checked at open, ssh-style (see
//! [`check`]), and what libfstore creates inside gets explicit modes (see
//! [`Modes`]).

mod check;
mod group;
mod modes;

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use group::Group;
pub use modes::Modes;

use crate::error::{Error, Result, Status};
use crate::options::Options;

/// The environment variable read when the option `cache.group` is unset.
pub const GROUP_ENV: &str = "FSTORE_CACHE_GROUP";

/// A checked cache directory and the modes of what is created in it.
#[derive(Clone, Debug)]
pub struct CacheDir {
    /// As configured (not resolved), for messages and paths.
    pub path: PathBuf,
    pub modes: Modes,
}

impl CacheDir {
    /// Resolves the cache directory of `options`, creates it if missing and
    /// checks who may write it.
    pub fn open(options: &Options) -> Result<CacheDir> {
        let path = options.resolved_cache_dir()?;
        let group = configured_group(options)?;
        if let Some(group) = &group {
            if !group.includes_this_process() {
                return Err(Error::new(
                    Status::PermissionDenied,
                    format!(
                        "cache.group is '{}' (gid {}), but this process is not a member: it could not create files \
                         the group can use. Fix: `usermod -aG {} {}` (then log in again), or unset cache.group",
                        group.name,
                        group.gid,
                        group.name,
                        group::user_name(euid())
                    ),
                ));
            }
        }
        let modes = group.as_ref().map_or(Modes::PRIVATE, |g| Modes::shared_with(g.gid));
        modes
            .create_dir_all(&path)
            .map_err(|e| Error::io(format!("cannot create cache directory {}", path.display()), e))?;
        if options.check_permissions {
            let real = std::fs::canonicalize(&path)
                .map_err(|e| Error::io(format!("cannot resolve cache directory {}", path.display()), e))?;
            check::check(&real, euid(), group.as_ref())?;
            warn_once_if_readable(&real, group.as_ref());
        } else {
            log::warn!(
                "libfstore: not checking who may write cache directory {} (cache.check_permissions=false): \
                 anyone who can write it can plant entries that verify",
                path.display()
            );
        }
        Ok(CacheDir { path, modes })
    }
}

/// The group of option `cache.group`, else of `FSTORE_CACHE_GROUP`.
fn configured_group(options: &Options) -> Result<Option<Group>> {
    if let Some(value) = &options.cache_group {
        return Group::resolve(value, "option cache.group").map(Some);
    }
    match std::env::var(GROUP_ENV) {
        Ok(value) if !value.is_empty() => Group::resolve(&value, GROUP_ENV).map(Some),
        _ => Ok(None),
    }
}

fn euid() -> libc::uid_t {
    // SAFETY: a plain getter.
    unsafe { libc::geteuid() }
}

/// A directory created by an older version follows the umask (often
/// `0755`): safe, as nobody else can write it, but readable by all. Said
/// once per directory and process; never changed behind the user's back.
fn warn_once_if_readable(dir: &Path, group: Option<&Group>) {
    static WARNED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let Ok(meta) = std::fs::metadata(dir) else { return };
    let (exposed, fix) = match group {
        None => (meta.mode() & 0o077, format!("chmod 700 {}", dir.display())),
        Some(_) => (meta.mode() & 0o007, format!("chmod 2770 {}", dir.display())),
    };
    if exposed == 0 {
        return;
    }
    let mut warned = crate::sync::lock(&WARNED);
    if warned.get_or_insert_with(HashSet::new).insert(dir.to_path_buf()) {
        log::warn!(
            "libfstore: cache directory {} has mode {:04o}: other users can read its entries. `{fix}` makes it \
             private (libfstore creates new cache directories so)",
            dir.display(),
            meta.mode() & 0o7777
        );
    }
}
