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
mod handle;
mod key;
mod log;
mod options;
mod request;
mod result;
mod scan;
mod sized;
mod store;
mod stream;

pub use error::*;
pub use key::*;
pub use log::*;
pub use options::*;
pub use request::*;
pub use result::*;
pub use scan::*;
pub use store::*;

use std::ffi::c_char;

/// A status code: `FSTORE_STATUS_OK` or the class of a problem. The values
/// never change; new codes may be added in minor versions, so treat a code
/// you do not know as a failure (`fstore_status_name` names it "unknown
/// status").
pub type fstore_status = u32;

/// Success. Outputs are written.
pub const FSTORE_STATUS_OK: fstore_status = 0;
/// An argument is NULL, malformed or out of range (a key part, an option, a
/// size); the message names it. Retrying the same call fails the same way.
pub const FSTORE_STATUS_INVALID_ARGUMENT: fstore_status = 1;
/// What was asked for does not exist: no entry for the key (`get`,
/// `try_get`, `invalidate`, with no message), or no PostgreSQL figures
/// for an embedded store.
pub const FSTORE_STATUS_NOT_FOUND: fstore_status = 2;
/// A bounded wait ran out: for another caller's compute, a lock, a pool
/// connection or the manifest. Retrying later may succeed.
pub const FSTORE_STATUS_TIMEOUT: fstore_status = 3;
/// The call's request was cancelled, its store was closed while it
/// waited, or a compute callback reported that its own caller gave up.
pub const FSTORE_STATUS_CANCELLED: fstore_status = 4;
/// The compute callback failed (its message is kept in the error); every
/// caller waiting for that compute gets the same. Nothing was stored.
pub const FSTORE_STATUS_CALLBACK_FAILED: fstore_status = 5;
/// An Arrow stream given to the library (input, or a callback's output) was
/// unset, failed midway or holds data that does not match its schema; or a
/// scan's entries do not share their columns.
pub const FSTORE_STATUS_INVALID_DATA: fstore_status = 6;
/// A file-system operation failed (the message names it and the path):
/// permissions, a full disk, a vanished directory.
pub const FSTORE_STATUS_IO: fstore_status = 7;
/// The manifest database (DuckDB or PostgreSQL) refused a statement; for
/// PostgreSQL the error's `sqlstate` says why.
pub const FSTORE_STATUS_DATABASE: fstore_status = 8;
/// A stored entry failed its integrity check (checksum, footer, key).
/// `get_or_compute` recomputes such an entry instead of failing.
pub const FSTORE_STATUS_CORRUPT: fstore_status = 9;
/// The object cannot be used in its current state: a closed store, a
/// store used in a child after fork(), a cache directory bound to other
/// coordination settings.
pub const FSTORE_STATUS_INVALID_STATE: fstore_status = 10;
/// A required server could not be reached or dropped the connection
/// (`sqlstate` set when the server said why). Retrying later may succeed.
pub const FSTORE_STATUS_UNAVAILABLE: fstore_status = 11;
/// A bug in libfstore (for example a caught panic): please report it.
pub const FSTORE_STATUS_INTERNAL: fstore_status = 12;
/// The cache directory is unsafe: another user could write it or replace
/// it through a parent (world- or group-writable, owned by someone else).
/// The message names the path, what is wrong and the command that fixes it.
pub const FSTORE_STATUS_PERMISSION_DENIED: fstore_status = 13;

/// Longest symbol or feature set accepted, in UTF-8 bytes.
pub const FSTORE_MAX_NAME_BYTES: usize = 1024;

const VERSION_C: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library version, e.g. "0.1.0". Static; do not free.
#[no_mangle]
pub extern "C" fn fstore_version() -> *const c_char {
    VERSION_C.as_ptr().cast()
}

/// The library version as major * 1000000 + minor * 1000 + patch, to compare
/// with the header's FSTORE_VERSION_NUMBER: a program runs against any
/// library of the same major version whose number is not lower than the one
/// it was built with.
#[no_mangle]
pub extern "C" fn fstore_version_number() -> u32 {
    VERSION_NUMBER
}

const VERSION_NUMBER: u32 = {
    let (major, minor, patch) = (
        parse_version_part(env!("CARGO_PKG_VERSION_MAJOR")),
        parse_version_part(env!("CARGO_PKG_VERSION_MINOR")),
        parse_version_part(env!("CARGO_PKG_VERSION_PATCH")),
    );
    assert!(minor < 1000 && patch < 1000, "minor and patch versions must stay below 1000");
    major * 1_000_000 + minor * 1000 + patch
};

const fn parse_version_part(text: &str) -> u32 {
    let bytes = text.as_bytes();
    let mut value = 0;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "a version part is decimal digits");
        value = value * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    value
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
        FSTORE_STATUS_PERMISSION_DENIED => "permission denied\0",
        _ => "unknown status\0",
    };
    name.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Status;

    #[test]
    fn version_number_follows_the_version_string() {
        let text = unsafe { std::ffi::CStr::from_ptr(fstore_version()) }.to_str().unwrap();
        let parts: Vec<u32> = text.split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(fstore_version_number(), parts[0] * 1_000_000 + parts[1] * 1000 + parts[2]);
    }

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
            (FSTORE_STATUS_PERMISSION_DENIED, Status::PermissionDenied),
        ];
        for (c, rust) in pairs {
            assert_eq!(c, rust.code());
            let name = unsafe { std::ffi::CStr::from_ptr(fstore_status_name(c)) };
            assert_eq!(name.to_str().unwrap(), rust.name());
        }
    }
}
