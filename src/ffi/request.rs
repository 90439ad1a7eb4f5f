//! `fstore_request`: per-call projection, wait bound and cancellation.

use std::ffi::c_char;
use std::time::Duration;

use super::boundary::{arg_mut, boundary, str_arg, OK};
use super::{fstore_error, fstore_status};
use crate::error::Error;
use crate::request::Request;

/// Settings of a call. A request can be reused; once cancelled it stays
/// cancelled. `fstore_request_cancel` may be called from any thread while a
/// call uses the request; the setters must not race with a call.
pub struct fstore_request {
    pub(crate) request: Request,
}

/// A new request with no projection, the store's wait bound, not cancelled.
#[no_mangle]
pub extern "C" fn fstore_request_new() -> *mut fstore_request {
    Box::into_raw(Box::new(fstore_request { request: Request::new() }))
}

/// Returns only `columns[0..count]`, in that order; `count == 0` returns all.
#[no_mangle]
pub unsafe extern "C" fn fstore_request_set_columns(
    request: *mut fstore_request,
    columns: *const *const c_char,
    count: usize,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let request = arg_mut(request, "request")?;
        if count > 0 && columns.is_null() {
            return Err(Error::invalid_argument("columns is NULL but count is not 0"));
        }
        let mut names = Vec::with_capacity(count);
        for i in 0..count {
            names.push(str_arg(*columns.add(i), &format!("columns[{i}]"))?.to_string());
        }
        request.request.columns = (!names.is_empty()).then_some(names);
        OK
    })
}

/// Waits of calls with this request give up after `timeout_ms` (0: do not
/// wait at all); a negative value restores the store's `wait.timeout_ms`.
#[no_mangle]
pub unsafe extern "C" fn fstore_request_set_timeout_ms(
    request: *mut fstore_request,
    timeout_ms: i64,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let request = arg_mut(request, "request")?;
        request.request.timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        OK
    })
}

/// Waits of calls with this request end `ms_from_now` milliseconds from now
/// at the latest. Unlike a timeout, a deadline only ever shortens the wait
/// (the store's `wait.timeout_ms`, or the request's timeout): use it for a
/// caller's own deadline, such as a Go context's. Negative clears it.
#[no_mangle]
pub unsafe extern "C" fn fstore_request_set_deadline_ms(
    request: *mut fstore_request,
    ms_from_now: i64,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let request = arg_mut(request, "request")?;
        request.request.deadline = u64::try_from(ms_from_now)
            .ok()
            .map(|ms| std::time::Instant::now().checked_add(Duration::from_millis(ms)))
            .map(|at| at.unwrap_or_else(|| std::time::Instant::now() + Duration::from_secs(100 * 365 * 86_400)));
        OK
    })
}

/// Cancels every wait of calls that use `request`, now and later: they return
/// FSTORE_STATUS_CANCELLED. A compute already running is not interrupted.
/// Thread-safe. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn fstore_request_cancel(request: *const fstore_request) {
    if let Some(r) = request.as_ref() {
        r.request.cancel();
    }
}

/// Frees `*request` (NULL allowed) and sets it to NULL.
#[no_mangle]
pub unsafe extern "C" fn fstore_request_free(request: *mut *mut fstore_request) {
    if let Some(slot) = request.as_mut() {
        if !slot.is_null() {
            drop(Box::from_raw(*slot));
            *slot = std::ptr::null_mut();
        }
    }
}
