//! `fstore_error`: details of a failure, owned by the caller, released by the library.

use std::ffi::{c_char, c_void, CString};

use super::boundary::str_arg;
use super::fstore_status;
use crate::error::Error;

/// Details of a failed call. Zero-initialise it (`fstore_error e = {0};`);
/// after a failure `message` holds a NUL-terminated description and `status`
/// the status returned. Call `release` (or `fstore_error_release`) when
/// done; a call that writes an error releases the previous content first, so
/// one struct can be reused. Fields may be added in `reserved` (which the
/// library writes as zeros); the struct's size and the offsets of the fields
/// above it do not change within a major version.
#[repr(C)]
pub struct fstore_error {
    /// NUL-terminated UTF-8, or NULL. Owned by the library.
    pub message: *mut c_char,
    pub status: fstore_status,
    /// The five-character SQLSTATE of the PostgreSQL error behind this one
    /// (e.g. "28P01" for a rejected password), NUL-terminated; empty when
    /// there was none.
    pub sqlstate: [c_char; 6],
    /// Frees `message`; NULL when there is nothing to free.
    pub release: Option<unsafe extern "C" fn(error: *mut fstore_error)>,
    /// Room for fields of later versions; written as zeros.
    pub reserved: [*mut c_void; 4],
}

unsafe extern "C" fn release_error(error: *mut fstore_error) {
    if let Some(e) = error.as_mut() {
        if !e.message.is_null() {
            drop(CString::from_raw(e.message));
        }
        e.message = std::ptr::null_mut();
        e.release = None;
    }
}

/// Releases the error's content (if any); the struct can then be reused.
#[no_mangle]
pub unsafe extern "C" fn fstore_error_release(error: *mut fstore_error) {
    if let Some(e) = error.as_mut() {
        if let Some(release) = e.release {
            release(e);
        }
    }
}

/// Fills `error` with `status` and a copy of `message` (NULL allowed), for
/// compute callbacks that want to say why they failed.
#[no_mangle]
pub unsafe extern "C" fn fstore_error_set(error: *mut fstore_error, status: fstore_status, message: *const c_char) {
    if error.is_null() {
        return;
    }
    let text = if message.is_null() {
        String::new()
    } else {
        // A non-UTF-8 message is still worth keeping: replace the bad bytes.
        str_arg(message, "message")
            .map(str::to_string)
            .unwrap_or_else(|_| std::ffi::CStr::from_ptr(message).to_string_lossy().into_owned())
    };
    fill(error, status, to_c_string(&text), None);
}

/// Writes a whole error: its content, a SQLSTATE or none, zeroed reserved space.
unsafe fn fill(error: *mut fstore_error, status: fstore_status, message: CString, sqlstate: Option<&str>) {
    fstore_error_release(error);
    let mut code = [0 as c_char; 6];
    for (to, from) in code.iter_mut().zip(sqlstate.unwrap_or("").bytes().take(5)) {
        *to = from as c_char;
    }
    error.write(fstore_error {
        message: message.into_raw(),
        status,
        sqlstate: code,
        release: Some(release_error),
        reserved: [std::ptr::null_mut(); 4],
    });
}

pub(crate) unsafe fn write_error(error: *mut fstore_error, e: &Error) {
    if error.is_null() {
        return;
    }
    fill(error, e.status().code(), to_c_string(e.message()), e.sqlstate());
}

pub(crate) unsafe fn clear_error(error: *mut fstore_error, status: fstore_status) {
    if error.is_null() {
        return;
    }
    fstore_error_release(error);
    error.write(fstore_error { status, ..fstore_error::empty() });
}

/// Takes the message out of an error a callback filled, releasing it.
pub(crate) unsafe fn take_message(error: &mut fstore_error) -> Option<String> {
    let message = (!error.message.is_null())
        .then(|| std::ffi::CStr::from_ptr(error.message).to_string_lossy().into_owned());
    fstore_error_release(error);
    message.filter(|m| !m.is_empty())
}

impl fstore_error {
    pub(crate) fn empty() -> Self {
        fstore_error {
            message: std::ptr::null_mut(),
            status: 0,
            sqlstate: [0; 6],
            release: None,
            reserved: [std::ptr::null_mut(); 4],
        }
    }
}

/// Messages cannot hold NUL bytes in C: drop them.
pub(crate) fn to_c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "")).expect("NUL bytes removed")
}
