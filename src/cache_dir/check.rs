//! Who may write a cache directory, checked the way ssh checks its key
//! files: a footer checksum is not a signature, so anyone who can write the
//! directory, or replace it through a parent, can plant an entry that
//! verifies.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::group::{self, Group};
use crate::error::{Error, Result, Status};

const GROUP_WRITE: u32 = 0o020;
const OTHER_WRITE: u32 = 0o002;
const STICKY: u32 = 0o1000;

/// Checks `dir`, a canonical path (symlinks resolved), and each of its
/// parents up to `/`, for the user `uid` and the cache group, if any.
///
/// - `dir` must be owned by `uid` (or, with a group, have that group), not
///   be writable by others, and be group-writable only for the group;
/// - each parent must be owned by root or `uid` and not be writable by
///   others or its group (unless that group is the cache group), except
///   with the sticky bit (like `/tmp`): there only a component's owner may
///   rename it, and the component's own owner check covers that.
pub fn check(dir: &Path, uid: libc::uid_t, group: Option<&Group>) -> Result<()> {
    let meta = stat(dir)?;
    check_cache_dir(dir, &meta, uid, group)?;
    for parent in dir.ancestors().skip(1) {
        check_parent(parent, &stat(parent)?, dir, uid, group)?;
    }
    Ok(())
}

fn check_cache_dir(dir: &Path, meta: &fs::Metadata, uid: libc::uid_t, group: Option<&Group>) -> Result<()> {
    let mode = meta.mode();
    let in_group = group.is_some_and(|g| g.gid == meta.gid());
    let path = dir.display();
    if meta.uid() != uid && !in_group {
        let shared = match group {
            Some(g) => format!("it is not shared with cache.group '{}' either (its group is {})", g.name, group_name(meta.gid())),
            None => "cache.group is not set".to_string(),
        };
        return Err(refused(format!(
            "cache directory {path} is owned by {}, not by {} who runs this process, and {shared}: its owner could \
             plant entries that verify. Fix: `chown {} {path}`, or use a directory of your own",
            user(meta.uid()),
            user(uid),
            group::user_name(uid)
        )));
    }
    if mode & OTHER_WRITE != 0 {
        let fix = match group {
            Some(g) => format!("`chgrp {} {path} && chmod 2770 {path}`", g.name),
            None => format!("`chmod 700 {path}`"),
        };
        return Err(refused(format!(
            "cache directory {path} is writable by every user (mode {}): anyone could plant entries that verify. Fix: {fix}",
            octal(mode)
        )));
    }
    if mode & GROUP_WRITE != 0 && !in_group {
        let its_group = group_name(meta.gid());
        let fix = match group {
            Some(g) => format!("`chgrp {} {path}`, or `chmod g-w {path}`", g.name),
            None => format!("`chmod 700 {path}`, or set cache.group (FSTORE_CACHE_GROUP) to {its_group} if that group shares the cache"),
        };
        let configured = group.map_or("cache.group is not set".to_string(), |g| format!("cache.group is '{}'", g.name));
        return Err(refused(format!(
            "cache directory {path} is writable by group {its_group} (mode {}), but {configured}: members of \
             {its_group} could plant entries that verify. Fix: {fix}",
            octal(mode)
        )));
    }
    Ok(())
}

fn check_parent(parent: &Path, meta: &fs::Metadata, dir: &Path, uid: libc::uid_t, group: Option<&Group>) -> Result<()> {
    let mode = meta.mode();
    let path = parent.display();
    if meta.uid() != 0 && meta.uid() != uid {
        return Err(refused(format!(
            "{path}, a parent of cache directory {}, is owned by {}, neither root nor {}: its owner could replace \
             the cache directory. Fix: `chown {} {path}`, or put the cache under a directory owned by you or root",
            dir.display(),
            user(meta.uid()),
            user(uid),
            group::user_name(uid)
        )));
    }
    if mode & STICKY != 0 {
        return Ok(());
    }
    let cache_group = group.is_some_and(|g| g.gid == meta.gid());
    let by = if mode & OTHER_WRITE != 0 {
        "every user".to_string()
    } else if mode & GROUP_WRITE != 0 && !cache_group {
        format!("group {}", group_name(meta.gid()))
    } else {
        return Ok(());
    };
    Err(refused(format!(
        "{path}, a parent of cache directory {}, is writable by {by} (mode {}) without the sticky bit: they could \
         replace the cache directory. Fix: `chmod go-w {path}` (or `chmod +t {path}` for a shared scratch \
         directory like /tmp)",
        dir.display(),
        octal(mode)
    )))
}

fn stat(path: &Path) -> Result<fs::Metadata> {
    fs::metadata(path).map_err(|e| Error::io(format!("cannot check the permissions of {}", path.display()), e))
}

fn refused(message: String) -> Error {
    Error::new(Status::PermissionDenied, message)
}

fn octal(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

fn user(uid: libc::uid_t) -> String {
    format!("{} (uid {uid})", group::user_name(uid))
}

fn group_name(gid: libc::gid_t) -> String {
    group::name_of(gid).unwrap_or_else(|| gid.to_string())
}
