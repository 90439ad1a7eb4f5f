//! The group a shared cache belongs to: resolved from a name or number, and
//! checked to include this process.

use std::ffi::{CStr, CString};

use crate::error::{Error, Result};

/// A resolved group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub gid: libc::gid_t,
    pub name: String,
}

impl Group {
    /// Resolves `value`, a group name or a numeric gid, given through
    /// `source` (the option or environment variable, named in errors).
    pub fn resolve(value: &str, source: &str) -> Result<Group> {
        if value.is_empty() {
            return Err(Error::invalid_argument(format!("{source}: value is empty, expected a group name or gid")));
        }
        if let Ok(gid) = value.parse::<libc::gid_t>() {
            let name = name_of(gid).unwrap_or_else(|| gid.to_string());
            return Ok(Group { gid, name });
        }
        match gid_of(value) {
            Some(gid) => Ok(Group { gid, name: value.to_string() }),
            None => Err(Error::invalid_argument(format!(
                "{source}: no group named '{value}' on this host (create it, or give a group name or numeric gid that exists)"
            ))),
        }
    }

    /// Whether this process may create files owned by the group: root, or
    /// a member (effective or supplementary).
    pub fn includes_this_process(&self) -> bool {
        // SAFETY: plain getters.
        if unsafe { libc::geteuid() } == 0 || unsafe { libc::getegid() } == self.gid {
            return true;
        }
        supplementary_groups().contains(&self.gid)
    }
}

fn supplementary_groups() -> Vec<libc::gid_t> {
    // SAFETY: a zero-sized query returns the count; the second call fills
    // a buffer of that size (retried if the set grew meanwhile).
    unsafe {
        loop {
            let n = libc::getgroups(0, std::ptr::null_mut());
            if n < 0 {
                return Vec::new();
            }
            let mut groups = vec![0 as libc::gid_t; n as usize];
            let got = libc::getgroups(n, groups.as_mut_ptr());
            if got >= 0 {
                groups.truncate(got as usize);
                return groups;
            }
        }
    }
}

/// The gid of the group named `name`, through the C library (so NSS
/// sources such as LDAP count).
fn gid_of(name: &str) -> Option<libc::gid_t> {
    let c_name = CString::new(name).ok()?;
    lookup(|group, buf, result| {
        // SAFETY: valid pointers to a group struct, a buffer of its length and a result slot.
        unsafe { libc::getgrnam_r(c_name.as_ptr(), group, buf.as_mut_ptr(), buf.len(), result) }
    })
    .map(|g| g.gid)
}

/// The name of group `gid`, if it has one.
pub fn name_of(gid: libc::gid_t) -> Option<String> {
    lookup(|group, buf, result| {
        // SAFETY: as in `gid_of`.
        unsafe { libc::getgrgid_r(gid, group, buf.as_mut_ptr(), buf.len(), result) }
    })
    .map(|g| g.name)
}

fn lookup(
    call: impl Fn(*mut libc::group, &mut Vec<libc::c_char>, *mut *mut libc::group) -> libc::c_int,
) -> Option<Group> {
    let mut size = 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: zeroed plain C struct, filled by the call.
        let mut group: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = call(&mut group, &mut buf, &mut result);
        if rc == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        // SAFETY: on success gr_name points into `buf`, NUL-terminated.
        let name = unsafe { CStr::from_ptr(group.gr_name) }.to_string_lossy().into_owned();
        return Some(Group { gid: group.gr_gid, name });
    }
}

/// The name of user `uid`, for messages; its number when it has none.
pub fn user_name(uid: libc::uid_t) -> String {
    let mut size = 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: zeroed plain C struct, filled by getpwuid_r.
        let mut passwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: valid pointers to a passwd struct, a buffer of its length and a result slot.
        let rc = unsafe { libc::getpwuid_r(uid, &mut passwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        if rc != 0 || result.is_null() {
            return uid.to_string();
        }
        // SAFETY: on success pw_name points into `buf`, NUL-terminated.
        return unsafe { CStr::from_ptr(passwd.pw_name) }.to_string_lossy().into_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_numbers() {
        let root = Group::resolve("0", "option cache.group").unwrap();
        assert_eq!(root.gid, 0);
        let by_name = Group::resolve(&root.name, "option cache.group").unwrap();
        assert_eq!(by_name.gid, 0);
        let e = Group::resolve("no-such-group-fstore", "option cache.group").unwrap_err();
        assert_eq!(e.status(), crate::Status::InvalidArgument);
        assert!(e.message().contains("option cache.group") && e.message().contains("no-such-group-fstore"), "{e}");
    }
}
