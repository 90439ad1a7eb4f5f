//! `fstore_error`: details of a failure, owned by the caller, released by the library.

use std::ffi::{c_char, CString};

use super::boundary::str_arg;
use super::fstore_status;
use crate::error::Error;

/// Details of a failed call. Zero-initialise it; after a failure `message`
/// holds a NUL-terminated description and `status` the status returned. Call
/// `release` (or `fstore_error_release`) when done; a call that writes an
/// error releases the previous content first, so one struct can be reused.
#[repr(C)]
pub struct fstore_error {
    /// NUL-terminated UTF-8, or NULL. Owned by the library.
    pub message: *mut c_char,
    pub status: fstore_status,
    /// Frees `message`; NULL when there is nothing to free.
    pub release: Option<unsafe extern "C" fn(error: *mut fstore_error)>,
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
    fstore_error_release(error);
    (*error).status = status;
    (*error).message = to_c_string(&text).into_raw();
    (*error).release = Some(release_error);
}

pub(crate) unsafe fn write_error(error: *mut fstore_error, e: &Error) {
    if error.is_null() {
        return;
    }
    fstore_error_release(error);
    (*error).status = e.status().code();
    (*error).message = to_c_string(e.message()).into_raw();
    (*error).release = Some(release_error);
}

pub(crate) unsafe fn clear_error(error: *mut fstore_error, status: fstore_status) {
    if error.is_null() {
        return;
    }
    fstore_error_release(error);
    (*error).status = status;
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
        fstore_error { message: std::ptr::null_mut(), status: 0, release: None }
    }
}

/// Messages cannot hold NUL bytes in C: drop them.
pub(crate) fn to_c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "")).expect("NUL bytes removed")
}
