//! `fstore_result`: the batches of a stream, held so that they can be read
//! any number of times. Consumers such as DuckDB ask a producer for its
//! stream more than once; a result hands each of them a fresh stream over
//! the same buffers.

use arrow::ffi_stream::FFI_ArrowArrayStream;

use super::boundary::{arg, arg_mut, boundary, OK};
use super::export::take_unread;
use super::stream::{export, import, take};
use super::{fstore_error, fstore_status};
use crate::data::Data;

/// The whole content of an Arrow stream, held in memory. Immutable: any
/// number of threads may export it at once. Free it with
/// `fstore_result_free`; streams exported from it stay valid after that.
pub struct fstore_result {
    data: Data,
}

/// Reads `stream` to its end into a new result written to `*out`. Takes
/// ownership of `stream` whatever happens (it is left released). The
/// batches' buffers are kept as they are, never copied; a stream exported by
/// this library is read as cheaply as a memory hit. A stream that fails
/// midway, or whose batches do not match its schema, is
/// FSTORE_STATUS_INVALID_DATA.
#[no_mangle]
pub unsafe extern "C" fn fstore_result_new(
    stream: *mut FFI_ArrowArrayStream,
    out: *mut *mut fstore_result,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let mut stream = take(arg_mut(stream, "stream")?);
        let out = arg_mut(out, "out")?;
        let data = match take_unread(&mut stream) {
            Some(data) => data,
            None => Data::collect(&mut import(stream, "the stream")?)?,
        };
        *out = Box::into_raw(Box::new(fstore_result { data }));
        OK
    })
}

/// Writes a new stream over the result's batches into `*out` (zero-initialised
/// or released). Call it any number of times, from any thread: each stream
/// starts at the first batch and shares the result's buffers.
#[no_mangle]
pub unsafe extern "C" fn fstore_result_export(
    result: *const fstore_result,
    out: *mut FFI_ArrowArrayStream,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let result = arg(result, "result")?;
        arg_mut(out, "out")?;
        export(result.data.clone(), out);
        OK
    })
}

/// The number of rows of the result; 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn fstore_result_row_count(result: *const fstore_result) -> u64 {
    result.as_ref().map_or(0, |r| r.data.num_rows() as u64)
}

/// The number of batches of the result; 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn fstore_result_batch_count(result: *const fstore_result) -> u64 {
    result.as_ref().map_or(0, |r| r.data.batches.len() as u64)
}

/// Frees the result and sets `*result` to NULL. NULL and a NULL handle are
/// allowed. Streams exported from it stay valid.
#[no_mangle]
pub unsafe extern "C" fn fstore_result_free(result: *mut *mut fstore_result) {
    if let Some(slot) = result.as_mut() {
        if !slot.is_null() {
            let result = Box::from_raw(*slot);
            *slot = std::ptr::null_mut();
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(result)));
        }
    }
}
