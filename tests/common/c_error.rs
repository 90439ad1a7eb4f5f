//! `fstore_error` as a test holds it: zeroed, released on drop.

use std::ffi::CStr;

use fstore::ffi::{fstore_error, fstore_error_release};

pub struct CError(pub fstore_error);

impl CError {
    pub fn new() -> CError {
        // SAFETY: an all-zero fstore_error is the documented initial state.
        CError(unsafe { std::mem::zeroed() })
    }
    pub fn ptr(&mut self) -> *mut fstore_error {
        &mut self.0
    }
    pub fn message(&self) -> String {
        if self.0.message.is_null() {
            return String::new();
        }
        unsafe { CStr::from_ptr(self.0.message) }.to_string_lossy().into_owned()
    }
}

impl Drop for CError {
    fn drop(&mut self) {
        unsafe { fstore_error_release(&mut self.0) };
    }
}
