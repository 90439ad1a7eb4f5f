//! Arrow C stream import and export.

use arrow::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};

use crate::data::Data;
use crate::error::{Error, Result};

/// Takes ownership of `stream` (leaving it released) as a reader. A released
/// or incomplete stream is `InvalidData`.
pub(crate) fn import(stream: FFI_ArrowArrayStream, what: &str) -> Result<RecordBatchStreamReader> {
    if stream.release().is_none() {
        return Err(Error::invalid_data(format!("{what} is not set (its release callback is NULL)")));
    }
    if stream.get_schema().is_none() || stream.get_next().is_none() {
        drop(stream); // releases it
        return Err(Error::invalid_data(format!("{what} lacks its get_schema or get_next callback")));
    }
    RecordBatchStreamReader::try_new(stream)
        .map_err(|e| Error::invalid_data(format!("{what}: cannot read its schema: {e}")))
}

/// Moves `stream` out of `*ptr`, leaving a released stream behind.
pub(crate) unsafe fn take(ptr: *mut FFI_ArrowArrayStream) -> FFI_ArrowArrayStream {
    std::ptr::replace(ptr, FFI_ArrowArrayStream::empty())
}

/// Writes `data` as a new stream into `*out` (whose old content is not read).
pub(crate) unsafe fn export(data: Data, out: *mut FFI_ArrowArrayStream) {
    std::ptr::write(out, FFI_ArrowArrayStream::new(Box::new(data.into_reader())));
}
