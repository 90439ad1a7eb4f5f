//! Arrow C stream import and export.

use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow::array::{layout, ArrayData, BufferSpec, RecordBatch, RecordBatchOptions, StructArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ffi::{from_ffi_and_data_type, FFI_ArrowArray, FFI_ArrowSchema};
use arrow::ffi_stream::FFI_ArrowArrayStream;
use arrow::record_batch::RecordBatchReader;

use crate::error::{Error, Result};

/// Reads a foreign C stream. What each batch declares is checked against the
/// schema before arrow-rs imports it, since arrow-rs asserts (panics) on a
/// mismatch, and every value is validated after: a malformed batch from a
/// caller is bad input, not a bug, and is never read out of bounds or stored.
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

/// The C Data Interface's `struct ArrowArray`, field by field as the Arrow
/// specification fixes it. What a producer declared is read through this
/// rather than arrow-rs's accessors, which assert (panic) on NULL pointers.
#[repr(C)]
struct DeclaredArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *const *const c_void,
    children: *const *const DeclaredArray,
    dictionary: *const DeclaredArray,
    release: Option<unsafe extern "C" fn(*mut DeclaredArray)>,
    private_data: *mut c_void,
}

const _: () = assert!(std::mem::size_of::<DeclaredArray>() == std::mem::size_of::<FFI_ArrowArray>());

impl DeclaredArray {
    fn of(array: &FFI_ArrowArray) -> &DeclaredArray {
        // SAFETY: FFI_ArrowArray is #[repr(C)] with exactly these fields.
        unsafe { &*(array as *const FFI_ArrowArray).cast::<DeclaredArray>() }
    }

    /// Buffer `index`, which must be below the checked `n_buffers`.
    fn buffer(&self, index: usize) -> *const c_void {
        // SAFETY: `buffers` is non-NULL and holds `n_buffers` pointers (checked).
        unsafe { *self.buffers.add(index) }
    }

    /// Child `index`, which must be below the checked `n_children`.
    fn child(&self, index: usize) -> Option<&DeclaredArray> {
        // SAFETY: `children` is non-NULL and holds `n_children` pointers (checked).
        unsafe { (*self.children.add(index)).as_ref() }
    }
}

/// The child types an array of `data_type` has, by name.
fn child_types(data_type: &DataType) -> Vec<(&str, &DataType)> {
    match data_type {
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
    }
}

/// Checks what the producer declared against `data_type`, recursively:
/// lengths, null counts, buffer and child counts, and the pointers arrow-rs
/// follows while importing. After this, arrow-rs's import reads nothing but
/// the last offset of a variable-width array, within its declared size.
/// `path` names the array in messages; the batch's children are its columns.
fn check_declared(array: &DeclaredArray, data_type: &DataType, path: &str) -> std::result::Result<(), String> {
    let (length, offset) = (array.length, array.offset);
    if length < 0 || offset < 0 || length.checked_add(offset).is_none() {
        return Err(format!("{path} has length {length} and offset {offset}"));
    }
    if array.null_count < -1 || array.null_count > length {
        return Err(format!("{path} has null_count {} for a length of {length}", array.null_count));
    }
    check_buffers(array, data_type, path)?;
    let children = child_types(data_type);
    if array.n_children != children.len() as i64 {
        return Err(format!(
            "{path} does not match the stream's schema: it has {} child arrays where its type {data_type} needs {}",
            array.n_children,
            children.len()
        ));
    }
    if !children.is_empty() && array.children.is_null() {
        return Err(format!("{path} has {} child arrays but a NULL children pointer", children.len()));
    }
    for (index, (name, child_type)) in children.into_iter().enumerate() {
        let child_path = if path == BATCH { format!("column '{name}'") } else { format!("{path}.{name}") };
        let child = array.child(index).ok_or_else(|| format!("{child_path} is a NULL pointer"))?;
        check_declared(child, child_type, &child_path)?;
    }
    match (data_type, array.dictionary.is_null()) {
        (DataType::Dictionary(_, value_type), false) => {
            // SAFETY: a non-NULL dictionary points at an array, as the interface requires.
            check_declared(unsafe { &*array.dictionary }, value_type, &format!("{path}'s dictionary"))
        }
        (DataType::Dictionary(..), true) => Err(format!("{path} is a dictionary array without a dictionary")),
        (_, false) => Err(format!("{path} has a dictionary but its type {data_type} is not a dictionary")),
        (_, true) => Ok(()),
    }
}

/// How messages name the batch's own struct array.
const BATCH: &str = "the batch";

/// The buffer count of `data_type`'s layout, and the pointers that must be
/// set: every fixed-width buffer of a non-empty array, the validity bitmap of
/// one with nulls, and the lengths of a view array's variadic buffers.
fn check_buffers(array: &DeclaredArray, data_type: &DataType, path: &str) -> std::result::Result<(), String> {
    let layout = layout(data_type);
    let validity = usize::from(layout.can_contain_null_mask);
    // A view array ends with a buffer of its variadic buffers' lengths.
    let fixed = (validity + layout.buffers.len() + usize::from(layout.variadic)) as i64;
    let count_ok = if layout.variadic { array.n_buffers >= fixed } else { array.n_buffers == fixed };
    if !count_ok {
        let at_least = if layout.variadic { "at least " } else { "" };
        return Err(format!(
            "{path} does not match the stream's schema: it has {} buffers where its type {data_type} needs {at_least}{fixed}",
            array.n_buffers
        ));
    }
    if array.n_buffers > 0 && array.buffers.is_null() {
        return Err(format!("{path} has {} buffers but a NULL buffers pointer", array.n_buffers));
    }
    if validity == 1 && array.null_count > 0 && array.buffer(0).is_null() {
        return Err(format!("{path} has null_count {} but no validity bitmap", array.null_count));
    }
    let has_slots = array.length + array.offset > 0;
    for (index, spec) in layout.buffers.iter().enumerate() {
        let fixed_width = matches!(spec, BufferSpec::FixedWidth { .. } | BufferSpec::BitMap);
        if fixed_width && has_slots && array.buffer(validity + index).is_null() {
            return Err(format!("{path}'s buffer {} is NULL", validity + index));
        }
    }
    let variadic_buffers = array.n_buffers - fixed;
    if layout.variadic && variadic_buffers > 0 && array.buffer(array.n_buffers as usize - 1).is_null() {
        return Err(format!("{path}'s variadic buffer lengths are NULL"));
    }
    Ok(())
}

/// Imports one batch after checking what its producer declared against
/// `row_type`.
fn import_batch(array: FFI_ArrowArray, row_type: DataType) -> std::result::Result<ArrayData, String> {
    check_declared(DeclaredArray::of(&array), &row_type, BATCH)?;
    // SAFETY: the producer vouches for its buffers' sizes; everything else
    // arrow-rs follows was checked above.
    unsafe { from_ffi_and_data_type(array, row_type) }.map_err(|e| format!("{BATCH} cannot be imported: {e}"))
}

/// `data` with every array of no elements replaced by the empty array of its
/// type. arrow-rs imports a zero-length string or binary array with an empty
/// values buffer whatever its one offset says (a producer's slice at a
/// non-zero offset, say), which validation would then refuse; with no
/// elements there is nothing to read or lose.
fn without_empty_arrays(data: ArrayData) -> ArrayData {
    if data.is_empty() {
        return ArrayData::new_empty(data.data_type());
    }
    if !data.child_data().iter().any(|child| has_empty_arrays(child)) {
        return data;
    }
    let children = data.child_data().iter().cloned().map(without_empty_arrays).collect();
    // SAFETY: only children change, each to an equivalent array; the whole
    // batch is validated before use.
    unsafe { data.into_builder().child_data(children).build_unchecked() }
}

fn has_empty_arrays(data: &ArrayData) -> bool {
    data.is_empty() || data.child_data().iter().any(has_empty_arrays)
}

/// Checks every value of an imported batch (offsets in order and within the
/// values, UTF-8, dictionary keys, null counts against bitmaps, ...), which
/// the import itself trusts: a bad batch is refused before anything reads
/// it, naming the column at fault.
fn validate_batch(data: &ArrayData, schema: &Schema) -> std::result::Result<(), String> {
    for (field, column) in schema.fields().iter().zip(data.child_data()) {
        column.validate_full().map_err(|e| format!("column '{}' is invalid: {e}", field.name()))?;
    }
    // The batch itself: its columns' lengths and the nulls of non-nullable columns.
    data.validate_data().map_err(|e| format!("{BATCH} is invalid: {e}"))
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
        // Should an arrow-rs assertion still trip on a defect the checks
        // miss, it is bad input all the same, not a crash.
        let row_type = DataType::Struct(self.schema.fields().clone());
        let schema = &self.schema;
        let imported = catch_unwind(AssertUnwindSafe(|| {
            let data = without_empty_arrays(import_batch(array, row_type)?);
            validate_batch(&data, schema).map(|()| data)
        }))
        .unwrap_or_else(|_| Err(format!("{BATCH}'s arrays cannot be read")))
        .map_err(ArrowError::CDataInterface);
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

pub(crate) use super::export::export;

