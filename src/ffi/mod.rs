//! The C API: a thin layer that checks and converts arguments, calls the
//! Rust core, and turns every outcome (panics included) into a status.
//!
//! Conventions (after ADBC, rustls-ffi and DuckDB's C API):
//! - every call that can fail returns an `fstore_status` and writes details
//!   to a caller-owned `fstore_error` (NULL allowed), never to thread-local
//!   state;
//! - outputs are written only on success;
//! - handles are freed through a pointer to the handle, which is set to NULL;
//! - no Rust panic crosses the boundary.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

mod boundary;
mod error;
mod export;
mod key;
mod options;
mod request;
mod result;
mod scan;
mod sized;
mod store;
mod stream;

pub use error::*;
pub use key::*;
pub use options::*;
pub use request::*;
pub use result::*;
pub use scan::*;
pub use store::*;

use std::ffi::c_char;

/// A status code: `FSTORE_STATUS_OK` or the class of a problem.
pub type fstore_status = u32;

pub const FSTORE_STATUS_OK: fstore_status = 0;
pub const FSTORE_STATUS_INVALID_ARGUMENT: fstore_status = 1;
pub const FSTORE_STATUS_NOT_FOUND: fstore_status = 2;
pub const FSTORE_STATUS_TIMEOUT: fstore_status = 3;
pub const FSTORE_STATUS_CANCELLED: fstore_status = 4;
pub const FSTORE_STATUS_CALLBACK_FAILED: fstore_status = 5;
pub const FSTORE_STATUS_INVALID_DATA: fstore_status = 6;
pub const FSTORE_STATUS_IO: fstore_status = 7;
pub const FSTORE_STATUS_DATABASE: fstore_status = 8;
pub const FSTORE_STATUS_CORRUPT: fstore_status = 9;
pub const FSTORE_STATUS_INVALID_STATE: fstore_status = 10;
pub const FSTORE_STATUS_UNAVAILABLE: fstore_status = 11;
pub const FSTORE_STATUS_INTERNAL: fstore_status = 12;

/// Longest symbol or feature set accepted, in UTF-8 bytes.
pub const FSTORE_MAX_NAME_BYTES: usize = 1024;

const VERSION_C: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library version, e.g. "0.1.0". Static; do not free.
#[no_mangle]
pub extern "C" fn fstore_version() -> *const c_char {
    VERSION_C.as_ptr().cast()
}

/// A short English name of `status`, e.g. "timeout". Static; do not free.
#[no_mangle]
pub extern "C" fn fstore_status_name(status: fstore_status) -> *const c_char {
    let name: &'static str = match status {
        FSTORE_STATUS_OK => "ok\0",
        FSTORE_STATUS_INVALID_ARGUMENT => "invalid argument\0",
        FSTORE_STATUS_NOT_FOUND => "not found\0",
        FSTORE_STATUS_TIMEOUT => "timeout\0",
        FSTORE_STATUS_CANCELLED => "cancelled\0",
        FSTORE_STATUS_CALLBACK_FAILED => "callback failed\0",
        FSTORE_STATUS_INVALID_DATA => "invalid data\0",
        FSTORE_STATUS_IO => "I/O error\0",
        FSTORE_STATUS_DATABASE => "database error\0",
        FSTORE_STATUS_CORRUPT => "corrupt entry\0",
        FSTORE_STATUS_INVALID_STATE => "invalid state\0",
        FSTORE_STATUS_UNAVAILABLE => "unavailable\0",
        FSTORE_STATUS_INTERNAL => "internal error\0",
        _ => "unknown status\0",
    };
    name.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Status;

    #[test]
    fn name_limit_matches_the_core() {
        assert_eq!(FSTORE_MAX_NAME_BYTES, crate::key::MAX_NAME_BYTES);
    }

    /// The C constants and the Rust enum must never drift apart.
    #[test]
    fn status_constants_match_the_core() {
        let pairs = [
            (FSTORE_STATUS_OK, Status::Ok),
            (FSTORE_STATUS_INVALID_ARGUMENT, Status::InvalidArgument),
            (FSTORE_STATUS_NOT_FOUND, Status::NotFound),
            (FSTORE_STATUS_TIMEOUT, Status::Timeout),
            (FSTORE_STATUS_CANCELLED, Status::Cancelled),
            (FSTORE_STATUS_CALLBACK_FAILED, Status::CallbackFailed),
            (FSTORE_STATUS_INVALID_DATA, Status::InvalidData),
            (FSTORE_STATUS_IO, Status::Io),
            (FSTORE_STATUS_DATABASE, Status::Database),
            (FSTORE_STATUS_CORRUPT, Status::Corrupt),
            (FSTORE_STATUS_INVALID_STATE, Status::InvalidState),
            (FSTORE_STATUS_UNAVAILABLE, Status::Unavailable),
            (FSTORE_STATUS_INTERNAL, Status::Internal),
        ];
        for (c, rust) in pairs {
            assert_eq!(c, rust.code());
            let name = unsafe { std::ffi::CStr::from_ptr(fstore_status_name(c)) };
            assert_eq!(name.to_str().unwrap(), rust.name());
        }
    }
}
