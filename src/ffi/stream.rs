//! Arrow C stream import and export.

use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow::array::{ArrayData, RecordBatch, RecordBatchOptions, StructArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ffi::{from_ffi_and_data_type, FFI_ArrowArray, FFI_ArrowSchema};
use arrow::ffi_stream::FFI_ArrowArrayStream;
use arrow::record_batch::RecordBatchReader;

use crate::data::Data;
use crate::error::{Error, Result};

/// Reads a foreign C stream. Each array's shape is checked against the
/// schema before arrow-rs imports it, since arrow-rs asserts (panics) on a
/// mismatch, and a malformed batch from a caller is bad input, not a bug.
pub(crate) struct StreamReader {
    stream: FFI_ArrowArrayStream,
    schema: SchemaRef,
}

/// Takes ownership of `stream` (released when the reader drops). A released
/// or incomplete stream, or one whose schema cannot be read, is `InvalidData`.
pub(crate) fn import(mut stream: FFI_ArrowArrayStream, what: &str) -> Result<StreamReader> {
    if stream.release().is_none() {
        return Err(Error::invalid_data(format!("{what} is not set (its release callback is NULL)")));
    }
    let (Some(get_schema), Some(_)) = (stream.get_schema(), stream.get_next()) else {
        return Err(Error::invalid_data(format!("{what} lacks its get_schema or get_next callback")));
    };
    let mut ffi_schema = FFI_ArrowSchema::empty();
    // SAFETY: a live stream and a zeroed schema for it to fill.
    let code = unsafe { get_schema(&mut stream, &mut ffi_schema) };
    if code != 0 {
        let why = last_error(&mut stream);
        return Err(Error::invalid_data(format!("{what}: get_schema failed with code {code}{why}")));
    }
    let schema = Schema::try_from(&ffi_schema)
        .map_err(|e| Error::invalid_data(format!("{what}: its schema cannot be read: {e}")))?;
    Ok(StreamReader { stream, schema: Arc::new(schema) })
}

/// ": <producer's message>", or nothing when it has none.
fn last_error(stream: &mut FFI_ArrowArrayStream) -> String {
    let Some(get_last_error) = stream.get_last_error() else {
        return String::new();
    };
    // SAFETY: called right after a failed call, as the C stream interface allows.
    let message = unsafe { get_last_error(stream) };
    if message.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated string owned by the producer until its next call.
    format!(": {}", unsafe { CStr::from_ptr(message) }.to_string_lossy())
}

/// Checks child counts against `data_type`, recursively.
fn check_shape(array: &FFI_ArrowArray, data_type: &DataType, path: &str) -> std::result::Result<(), String> {
    let children: Vec<(&str, &DataType)> = match data_type {
        DataType::Struct(fields) => fields.iter().map(|f| (f.name().as_str(), f.data_type())).collect(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::Map(f, _) => vec![(f.name().as_str(), f.data_type())],
        DataType::Union(fields, _) => fields.iter().map(|(_, f)| (f.name().as_str(), f.data_type())).collect(),
        DataType::RunEndEncoded(ends, values) => {
            vec![(ends.name().as_str(), ends.data_type()), (values.name().as_str(), values.data_type())]
        }
        _ => Vec::new(),
    };
    if array.num_children() != children.len() {
        return Err(format!(
            "{path} has {} child arrays where its type {data_type} needs {}",
            array.num_children(),
            children.len()
        ));
    }
    for (i, (name, child_type)) in children.into_iter().enumerate() {
        check_shape(array.child(i), child_type, &format!("{path}.{name}"))?;
    }
    Ok(())
}

/// Imports one batch after checking its shape against `row_type`.
fn import_batch(array: FFI_ArrowArray, row_type: DataType) -> std::result::Result<ArrayData, String> {
    check_shape(&array, &row_type, "the batch")?;
    // SAFETY: the producer vouches for the buffers; their shape was checked.
    unsafe { from_ffi_and_data_type(array, row_type) }.map_err(|e| e.to_string())
}

impl Iterator for StreamReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let get_next = self.stream.get_next().expect("checked at import");
        let mut array = FFI_ArrowArray::empty();
        // SAFETY: a live stream and a zeroed array for it to fill.
        let code = unsafe { get_next(&mut self.stream, &mut array) };
        if code != 0 {
            let why = last_error(&mut self.stream);
            return Some(Err(ArrowError::CDataInterface(format!("get_next failed with code {code}{why}"))));
        }
        if array.is_released() {
            return None; // the end of the stream
        }
        // A defect the shape check cannot see (a NULL children pointer, say)
        // still trips an arrow-rs assertion: bad input all the same, not a crash.
        let row_type = DataType::Struct(self.schema.fields().clone());
        let imported = catch_unwind(AssertUnwindSafe(|| import_batch(array, row_type)))
            .unwrap_or_else(|_| Err("its child arrays cannot be read".into()))
            .map_err(|why| ArrowError::CDataInterface(format!("it does not match the stream's schema: {why}")));
        Some(imported.and_then(|data| {
            let rows = data.len();
            let columns = StructArray::from(data).into_parts().1;
            RecordBatch::try_new_with_options(
                Arc::clone(&self.schema),
                columns,
                &RecordBatchOptions::new().with_row_count(Some(rows)),
            )
        }))
    }
}

impl RecordBatchReader for StreamReader {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

/// Moves `stream` out of `*ptr`, leaving a released stream behind.
pub(crate) unsafe fn take(ptr: *mut FFI_ArrowArrayStream) -> FFI_ArrowArrayStream {
    std::ptr::replace(ptr, FFI_ArrowArrayStream::empty())
}

/// Writes `data` as a new stream into `*out` (whose old content is not read).
pub(crate) unsafe fn export(data: Data, out: *mut FFI_ArrowArrayStream) {
    std::ptr::write(out, FFI_ArrowArrayStream::new(Box::new(data.into_reader())));
}

