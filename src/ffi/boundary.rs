//! The panic boundary and argument checks shared by every entry point.

use std::any::Any;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::error::{clear_error, write_error};
use super::{fstore_error, fstore_status};
use crate::error::{Error, Result, Status};

/// Runs `body`, turning its outcome into a status. `error` is left alone on
/// success; `Ok(NOT_FOUND)` and the like set its status with no message;
/// `Err` and panics are written to it.
pub(crate) fn boundary(error: *mut fstore_error, body: impl FnOnce() -> Result<Status>) -> fstore_status {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| Err(panic_error(panic)));
    match outcome {
        Ok(status) => {
            if status != Status::Ok {
                // SAFETY: the caller passes NULL or a valid fstore_error.
                unsafe { clear_error(error, status.code()) };
            }
            status.code()
        }
        Err(e) => {
            unsafe { write_error(error, &e) };
            e.status().code()
        }
    }
}

pub(crate) fn panic_error(panic: Box<dyn Any + Send>) -> Error {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    Error::internal(format!("libfstore panicked: {what}"))
}

/// `Ok(&T)` for a non-NULL pointer, else an error naming the argument.
pub(crate) unsafe fn arg<'a, T>(ptr: *const T, name: &str) -> Result<&'a T> {
    ptr.as_ref().ok_or_else(|| Error::invalid_argument(format!("{name} is NULL")))
}

pub(crate) unsafe fn arg_mut<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T> {
    ptr.as_mut().ok_or_else(|| Error::invalid_argument(format!("{name} is NULL")))
}

/// A NUL-terminated UTF-8 string argument.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::invalid_argument(format!("{name} is NULL")));
    }
    CStr::from_ptr(ptr)
        .to_str()
        .map_err(|e| Error::invalid_argument(format!("{name} is not valid UTF-8 (byte {})", e.valid_up_to())))
}

pub(crate) const OK: Result<Status> = Ok(Status::Ok);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::{fstore_error_release, FSTORE_STATUS_INTERNAL, FSTORE_STATUS_NOT_FOUND};

    fn message(e: &fstore_error) -> String {
        unsafe { std::ffi::CStr::from_ptr(e.message) }.to_str().unwrap().to_string()
    }

    #[test]
    fn a_panic_becomes_an_internal_status_with_its_message() {
        let mut error = fstore_error::empty();
        let status = boundary(&mut error, || panic!("boom \0 with a NUL"));
        assert_eq!(status, FSTORE_STATUS_INTERNAL);
        assert_eq!(error.status, FSTORE_STATUS_INTERNAL);
        assert_eq!(message(&error), "libfstore panicked: boom  with a NUL");
        unsafe { fstore_error_release(&mut error) };
        assert!(error.message.is_null() && error.release.is_none());
    }

    #[test]
    fn success_leaves_the_error_alone_and_not_found_clears_it() {
        let mut error = fstore_error::empty();
        boundary(&mut error, || Err(Error::invalid_argument("first")));
        assert_eq!(message(&error), "first");
        assert_eq!(boundary(&mut error, || OK), 0);
        assert_eq!(message(&error), "first", "success must not touch the error");
        assert_eq!(boundary(&mut error, || Ok(Status::NotFound)), FSTORE_STATUS_NOT_FOUND);
        assert!(error.message.is_null());
        assert_eq!(error.status, FSTORE_STATUS_NOT_FOUND);
        // A NULL error pointer is allowed.
        assert_eq!(boundary(std::ptr::null_mut(), || Err(Error::invalid_argument("x"))), 1);
    }
}
