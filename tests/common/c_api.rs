//! The C API as the Rust tests call it: an `fstore_error` zeroed and
//! released on drop, and a store opened on a directory.

use std::ffi::{CStr, CString};

use fstore::ffi::{
    fstore_error, fstore_error_release, fstore_options_free, fstore_options_new, fstore_options_set, fstore_store,
    fstore_store_open, FSTORE_STATUS_OK,
};

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

/// A store opened through the C API on `dir` with default options.
pub fn open_store(dir: &std::path::Path) -> *mut fstore_store {
    let path = CString::new(dir.to_str().unwrap()).unwrap();
    let mut err = CError::new();
    let mut store = std::ptr::null_mut();
    unsafe {
        let mut options = fstore_options_new();
        assert_eq!(fstore_options_set(options, c"cache_dir".as_ptr(), path.as_ptr(), err.ptr()), FSTORE_STATUS_OK);
        let status = fstore_store_open(options, &mut store, err.ptr());
        fstore_options_free(&mut options);
        assert_eq!(status, FSTORE_STATUS_OK, "{}", err.message());
    }
    store
}
