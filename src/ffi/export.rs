//! Exports an entry as an Arrow C stream with a handful of allocations.
//!
//! arrow-rs's exporter allocates several times per column for the schema
//! (each name and format as a `CString`, a private block, a children
//! array) and again for every batch (each column's buffer list, private
//! block and box): about 180 allocations for a 17-column entry, most of a
//! hit's cost through the C API. Here each schema and each batch is one
//! shared block holding every node of the tree, its pointer arrays and the
//! column names; each node holds a reference to the block, so a consumer
//! may move a child out and release it on its own, as the C Data Interface
//! allows. Types this exporter does not cover (nested, dictionary, view,
//! parameterised types, or any metadata) go through arrow-rs's exporter.

use std::ffi::{c_char, c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow::array::{Array, ArrayData, AsArray, RecordBatch, StructArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    Schema, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow::ffi_stream::FFI_ArrowArrayStream;

use crate::data::Data;

/// `struct ArrowSchema`, field by field as the Arrow specification fixes it.
#[repr(C)]
struct CSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut CSchema,
    dictionary: *mut CSchema,
    release: Option<unsafe extern "C" fn(*mut CSchema)>,
    private_data: *mut c_void,
}

/// `struct ArrowArray`.
#[repr(C)]
struct CArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut CArray,
    dictionary: *mut CArray,
    release: Option<unsafe extern "C" fn(*mut CArray)>,
    private_data: *mut c_void,
}

/// `struct ArrowArrayStream`.
#[repr(C)]
struct CStream {
    get_schema: Option<unsafe extern "C" fn(*mut FFI_ArrowArrayStream, *mut FFI_ArrowSchema) -> c_int>,
    get_next: Option<unsafe extern "C" fn(*mut FFI_ArrowArrayStream, *mut FFI_ArrowArray) -> c_int>,
    get_last_error: Option<unsafe extern "C" fn(*mut FFI_ArrowArrayStream) -> *const c_char>,
    release: Option<unsafe extern "C" fn(*mut FFI_ArrowArrayStream)>,
    private_data: *mut c_void,
}

const _: () = assert!(std::mem::size_of::<CSchema>() == std::mem::size_of::<FFI_ArrowSchema>());
const _: () = assert!(std::mem::size_of::<CArray>() == std::mem::size_of::<FFI_ArrowArray>());
const _: () = assert!(std::mem::size_of::<CStream>() == std::mem::size_of::<FFI_ArrowArrayStream>());

const ARROW_FLAG_NULLABLE: i64 = 2;
/// What `get_schema` and `get_next` return on failure (errno values, as
/// the C stream interface asks).
const EINVAL: c_int = 22;
const EIO: c_int = 5;

/// The format string of a type this exporter covers, NUL-terminated.
fn format_of(data_type: &DataType) -> Option<&'static [u8]> {
    Some(match data_type {
        DataType::Null => b"n\0",
        DataType::Boolean => b"b\0",
        DataType::Int8 => b"c\0",
        DataType::UInt8 => b"C\0",
        DataType::Int16 => b"s\0",
        DataType::UInt16 => b"S\0",
        DataType::Int32 => b"i\0",
        DataType::UInt32 => b"I\0",
        DataType::Int64 => b"l\0",
        DataType::UInt64 => b"L\0",
        DataType::Float16 => b"e\0",
        DataType::Float32 => b"f\0",
        DataType::Float64 => b"g\0",
        DataType::Utf8 => b"u\0",
        DataType::LargeUtf8 => b"U\0",
        DataType::Binary => b"z\0",
        DataType::LargeBinary => b"Z\0",
        DataType::Date32 => b"tdD\0",
        DataType::Date64 => b"tdm\0",
        _ => return None,
    })
}

/// One export's nodes: the root's children, their pointer array and (for a
/// schema) the names, or (for a batch) the buffer pointers and the batch
/// that owns the buffers. Freed when the last node referring to it is
/// released.
struct Block<Node> {
    nodes: *mut [Node],
    children: *mut [*mut Node],
    _buffers: Box<[*const c_void]>,
    _names: Vec<u8>,
    _batch: Option<RecordBatch>,
}

// SAFETY: the raw pointers point into the block's own allocations, which
// nothing else frees; a consumer may release nodes from any thread.
unsafe impl<Node> Send for Block<Node> {}
unsafe impl<Node> Sync for Block<Node> {}

impl<Node> Drop for Block<Node> {
    fn drop(&mut self) {
        // SAFETY: both came from Box::into_raw in `Block::new` and are freed only here.
        unsafe {
            drop(Box::from_raw(self.nodes));
            drop(Box::from_raw(self.children));
        }
    }
}

impl<Node> Block<Node> {
    /// A block owning `nodes`, with the children pointer array pointing at them.
    fn new(nodes: Vec<Node>, buffers: Box<[*const c_void]>, names: Vec<u8>, batch: Option<RecordBatch>) -> Arc<Self> {
        let nodes = Box::into_raw(nodes.into_boxed_slice());
        // SAFETY: `nodes` is a live allocation of `nodes.len()` nodes.
        let children: Box<[*mut Node]> = (0..nodes.len()).map(|i| unsafe { (nodes as *mut Node).add(i) }).collect();
        Arc::new(Block { nodes, children: Box::into_raw(children), _buffers: buffers, _names: names, _batch: batch })
    }

    fn children_ptr(&self) -> *mut *mut Node {
        self.children as *mut *mut Node
    }

    fn node(&self, index: usize) -> *mut Node {
        // SAFETY: callers pass an index below the node count.
        unsafe { (self.nodes as *mut Node).add(index) }
    }

    /// A reference to the block, for one node's `private_data`.
    fn reference(self: &Arc<Self>) -> *mut c_void {
        Arc::into_raw(Arc::clone(self)) as *mut c_void
    }
}

/// Writes the schema of `schema` into `out`, as a struct of its fields.
unsafe fn export_schema(schema: &Schema, out: *mut FFI_ArrowSchema) -> Result<(), String> {
    let fast = schema.metadata().is_empty()
        && schema.fields().iter().all(|f| f.metadata().is_empty() && format_of(f.data_type()).is_some());
    if !fast {
        let exported = FFI_ArrowSchema::try_from(schema).map_err(|e| e.to_string())?;
        std::ptr::write(out, exported);
        return Ok(());
    }
    let mut names = Vec::new();
    let mut name_at = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        if field.name().contains('\0') {
            return Err(format!("column name {:?} holds a NUL byte", field.name()));
        }
        name_at.push(names.len());
        names.extend_from_slice(field.name().as_bytes());
        names.push(0);
    }
    let nodes: Vec<CSchema> = schema
        .fields()
        .iter()
        .zip(&name_at)
        .map(|(field, &at)| CSchema {
            format: format_of(field.data_type()).expect("checked above").as_ptr().cast(),
            // The names buffer does not move when the Vec moves into the block.
            name: names.as_ptr().add(at).cast(),
            metadata: std::ptr::null(),
            flags: if field.is_nullable() { ARROW_FLAG_NULLABLE } else { 0 },
            n_children: 0,
            children: std::ptr::null_mut(),
            dictionary: std::ptr::null_mut(),
            release: Some(release_schema),
            private_data: std::ptr::null_mut(),
        })
        .collect();
    let count = nodes.len();
    let block = Block::new(nodes, Box::new([]), names, None);
    for i in 0..count {
        (*block.node(i)).private_data = block.reference();
    }
    let root = CSchema {
        format: c"+s".as_ptr(),
        name: c"".as_ptr(),
        metadata: std::ptr::null(),
        flags: 0,
        n_children: count as i64,
        children: block.children_ptr(),
        dictionary: std::ptr::null_mut(),
        release: Some(release_schema),
        private_data: Arc::into_raw(block) as *mut c_void,
    };
    std::ptr::write(out.cast::<CSchema>(), root);
    Ok(())
}

unsafe extern "C" fn release_schema(schema: *mut CSchema) {
    let Some(schema) = schema.as_mut() else { return };
    for i in 0..schema.n_children.max(0) as usize {
        let child = *schema.children.add(i);
        if let Some(release) = (*child).release {
            release(child);
        }
    }
    drop(Arc::from_raw(schema.private_data as *const Block<CSchema>));
    schema.release = None;
}

/// Appends the value buffers of `array` (those after its validity bitmap)
/// to `out` and returns its offset, for a flat array of a covered type;
/// `None` for anything else.
fn value_buffers(array: &dyn Array, out: &mut Vec<*const c_void>) -> Option<usize> {
    macro_rules! primitive {
        ($t:ty) => {{
            out.push(array.as_primitive::<$t>().values().inner().as_ptr().cast());
            0
        }};
    }
    macro_rules! variable {
        ($a:expr) => {{
            let a = $a;
            out.push(a.offsets().inner().inner().as_ptr().cast());
            out.push(a.values().as_ptr().cast());
            0
        }};
    }
    Some(match array.data_type() {
        DataType::Boolean => {
            let values = array.as_boolean().values();
            out.push(values.inner().as_ptr().cast());
            values.offset()
        }
        DataType::Int8 => primitive!(Int8Type),
        DataType::UInt8 => primitive!(UInt8Type),
        DataType::Int16 => primitive!(Int16Type),
        DataType::UInt16 => primitive!(UInt16Type),
        DataType::Int32 => primitive!(Int32Type),
        DataType::UInt32 => primitive!(UInt32Type),
        DataType::Int64 => primitive!(Int64Type),
        DataType::UInt64 => primitive!(UInt64Type),
        DataType::Float16 => primitive!(Float16Type),
        DataType::Float32 => primitive!(Float32Type),
        DataType::Float64 => primitive!(Float64Type),
        DataType::Date32 => primitive!(Date32Type),
        DataType::Date64 => primitive!(Date64Type),
        DataType::Utf8 => variable!(array.as_string::<i32>()),
        DataType::LargeUtf8 => variable!(array.as_string::<i64>()),
        DataType::Binary => variable!(array.as_binary::<i32>()),
        DataType::LargeBinary => variable!(array.as_binary::<i64>()),
        _ => return None,
    })
}

/// Writes `batch` into `out` as a struct array of its columns.
unsafe fn export_batch(batch: &RecordBatch, out: *mut FFI_ArrowArray) {
    // Every column's buffer pointers, validity first (NULL without nulls),
    // straight from the arrays: nothing is copied or rebuilt.
    let mut buffers = Vec::with_capacity(batch.num_columns() * 3 + 1);
    let mut columns = Vec::with_capacity(batch.num_columns());
    for array in batch.columns() {
        let at = buffers.len();
        buffers.push(array.nulls().map_or(std::ptr::null(), |n| n.buffer().as_ptr().cast()));
        let offset = value_buffers(array.as_ref(), &mut buffers);
        let aligned = offset.is_some_and(|o| array.nulls().is_none_or(|n| n.offset() == o));
        if !aligned {
            let data = ArrayData::from(StructArray::from(batch.clone()));
            std::ptr::write(out, FFI_ArrowArray::new(&data));
            return;
        }
        columns.push((array, at, offset.unwrap_or(0)));
    }
    let ends: Vec<usize> = columns.iter().skip(1).map(|c| c.1).chain([buffers.len()]).collect();
    // Last, the root struct array's one buffer: no validity bitmap.
    buffers.push(std::ptr::null());
    let mut buffers = buffers.into_boxed_slice();
    let base = buffers.as_mut_ptr();
    let nodes: Vec<CArray> = columns
        .iter()
        .zip(ends)
        .map(|(&(array, from, offset), to)| CArray {
            length: array.len() as i64,
            null_count: array.null_count() as i64,
            offset: offset as i64,
            n_buffers: (to - from) as i64,
            n_children: 0,
            buffers: base.add(from),
            children: std::ptr::null_mut(),
            dictionary: std::ptr::null_mut(),
            release: Some(release_array),
            private_data: std::ptr::null_mut(),
        })
        .collect();
    let root_buffers = base.add(buffers.len() - 1);
    let count = nodes.len();
    let block = Block::new(nodes, buffers, Vec::new(), Some(batch.clone()));
    for i in 0..count {
        (*block.node(i)).private_data = block.reference();
    }
    let root = CArray {
        length: batch.num_rows() as i64,
        null_count: 0,
        offset: 0,
        n_buffers: 1,
        n_children: count as i64,
        buffers: root_buffers,
        children: block.children_ptr(),
        dictionary: std::ptr::null_mut(),
        release: Some(release_array),
        private_data: Arc::into_raw(block) as *mut c_void,
    };
    std::ptr::write(out.cast::<CArray>(), root);
}

unsafe extern "C" fn release_array(array: *mut CArray) {
    let Some(array) = array.as_mut() else { return };
    for i in 0..array.n_children.max(0) as usize {
        let child = *array.children.add(i);
        if let Some(release) = (*child).release {
            release(child);
        }
    }
    drop(Arc::from_raw(array.private_data as *const Block<CArray>));
    array.release = None;
}

/// What a stream hands out, and its last error.
struct StreamState {
    data: Data,
    next_batch: usize,
    last_error: Option<CString>,
}

/// Writes `data` as a new stream into `*out` (whose old content is not read).
pub(crate) unsafe fn export(data: Data, out: *mut FFI_ArrowArrayStream) {
    let state = Box::new(StreamState { data, next_batch: 0, last_error: None });
    let stream = FFI_ArrowArrayStream::new_unchecked(
        Some(get_schema),
        Some(get_next),
        Some(get_last_error),
        Some(release_stream),
        Box::into_raw(state).cast(),
    );
    std::ptr::write(out, stream);
}

unsafe fn stream_state<'a>(stream: *mut FFI_ArrowArrayStream) -> Option<&'a mut StreamState> {
    let stream = stream.cast::<CStream>().as_mut()?;
    stream.release?;
    stream.private_data.cast::<StreamState>().as_mut()
}

/// Runs a callback's body, turning a failure or a panic into an errno and
/// the stream's last error.
unsafe fn guarded(stream: *mut FFI_ArrowArrayStream, body: impl FnOnce(&mut StreamState) -> Result<(), String>) -> c_int {
    let Some(state) = stream_state(stream) else { return EINVAL };
    let outcome = catch_unwind(AssertUnwindSafe(|| body(state)))
        .unwrap_or_else(|_| Err("libfstore panicked while exporting the stream".into()));
    match outcome {
        Ok(()) => 0,
        Err(why) => {
            // The body's borrow of the state ended with it.
            if let Some(state) = stream_state(stream) {
                state.last_error = Some(CString::new(why.replace('\0', "")).unwrap_or_default());
            }
            EIO
        }
    }
}

unsafe extern "C" fn get_schema(stream: *mut FFI_ArrowArrayStream, out: *mut FFI_ArrowSchema) -> c_int {
    if out.is_null() {
        return EINVAL;
    }
    guarded(stream, |state| export_schema(&state.data.schema, out))
}

unsafe extern "C" fn get_next(stream: *mut FFI_ArrowArrayStream, out: *mut FFI_ArrowArray) -> c_int {
    if out.is_null() {
        return EINVAL;
    }
    guarded(stream, |state| {
        match state.data.batches.get(state.next_batch) {
            Some(batch) => {
                export_batch(batch, out);
                state.next_batch += 1;
            }
            // The end of the stream: a released array.
            None => std::ptr::write(out, FFI_ArrowArray::empty()),
        }
        Ok(())
    })
}

unsafe extern "C" fn get_last_error(stream: *mut FFI_ArrowArrayStream) -> *const c_char {
    match stream_state(stream) {
        Some(state) => state.last_error.as_ref().map_or(std::ptr::null(), |e| e.as_ptr()),
        None => std::ptr::null(),
    }
}

unsafe extern "C" fn release_stream(stream: *mut FFI_ArrowArrayStream) {
    let Some(stream) = stream.cast::<CStream>().as_mut() else { return };
    if stream.release.is_none() {
        return;
    }
    drop(Box::from_raw(stream.private_data.cast::<StreamState>()));
    stream.private_data = std::ptr::null_mut();
    stream.release = None;
}

/// The batches a stream exported here has not handed out yet, taken without
/// going through the C interface (the stream is left released): what
/// `fstore_result_new` holds of the library's own streams. `None`, leaving
/// the stream untouched, for any other producer's stream.
pub(crate) unsafe fn take_unread(stream: &mut FFI_ArrowArrayStream) -> Option<Data> {
    let stream = (stream as *mut FFI_ArrowArrayStream).cast::<CStream>().as_mut()?;
    let ours = release_stream as unsafe extern "C" fn(*mut FFI_ArrowArrayStream);
    if !stream.release.is_some_and(|release| std::ptr::fn_addr_eq(release, ours)) {
        return None;
    }
    let state = Box::from_raw(stream.private_data.cast::<StreamState>());
    stream.private_data = std::ptr::null_mut();
    stream.release = None;
    let StreamState { mut data, next_batch, .. } = *state;
    data.batches.drain(..next_batch.min(data.batches.len()));
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, LargeStringArray, ListArray,
        StringArray, TimestampMicrosecondArray, UInt8Array,
    };
    use arrow::datatypes::{Field, Int32Type};
    use arrow::ffi_stream::RecordBatchStreamReader;
    use std::collections::HashMap;

    fn batch_of(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    /// Exports `batches` and imports them back with arrow-rs.
    fn round_trip(batches: Vec<RecordBatch>) -> (arrow::datatypes::SchemaRef, Vec<RecordBatch>) {
        let schema = batches[0].schema();
        let mut stream = FFI_ArrowArrayStream::empty();
        unsafe { export(Data { schema, batches }, &mut stream) };
        let reader = unsafe { RecordBatchStreamReader::from_raw(&mut stream) }.unwrap();
        let schema = arrow::record_batch::RecordBatchReader::schema(&reader);
        (schema, reader.collect::<Result<Vec<_>, _>>().unwrap())
    }

    fn covered() -> RecordBatch {
        batch_of(vec![
            ("date", Arc::new(Date32Array::from(vec![19000, 19001, 19002, 19003])) as ArrayRef),
            ("f0", Arc::new(Float64Array::from(vec![Some(1.5), None, Some(-2.0), Some(0.0)]))),
            ("n", Arc::new(Int64Array::from(vec![1, 2, 3, 4]))),
            ("flag", Arc::new(BooleanArray::from(vec![Some(true), Some(false), None, Some(true)]))),
            ("name", Arc::new(StringArray::from(vec![Some("a"), None, Some("ccc"), Some("")]))),
            ("big", Arc::new(LargeStringArray::from(vec!["x", "yy", "", "zzz"]))),
            ("byte", Arc::new(UInt8Array::from(vec![0, 255, 7, 8]))),
        ])
    }

    #[test]
    fn covered_types_survive_a_round_trip_with_nulls_and_slices() {
        let whole = covered();
        let sliced = whole.slice(1, 3); // values at an offset; nulls at an offset too
        let (schema, batches) = round_trip(vec![whole.clone(), sliced.clone(), whole.slice(0, 0)]);
        assert_eq!(schema.as_ref(), whole.schema().as_ref());
        assert_eq!(batches, vec![whole.clone(), sliced, whole.slice(0, 0)]);
        let fields: Vec<_> = schema.fields().iter().map(|f| (f.name().clone(), f.is_nullable())).collect();
        assert_eq!(fields[1], ("f0".to_string(), true));
    }

    #[test]
    fn other_types_and_metadata_go_through_arrow_rs() {
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1), None]), None, Some(vec![])]);
        let stamps = TimestampMicrosecondArray::from(vec![1, 2, 3]).with_timezone("UTC");
        let batch = batch_of(vec![
            ("list", Arc::new(list) as ArrayRef),
            ("ts", Arc::new(stamps)),
            ("i", Arc::new(Int32Array::from(vec![1, 2, 3]))),
        ]);
        let (schema, batches) = round_trip(vec![batch.clone()]);
        assert_eq!(batches, vec![batch.clone()]);
        assert_eq!(schema.as_ref(), batch.schema().as_ref());

        let meta = HashMap::from([("unit".to_string(), "usd".to_string())]);
        let field = Field::new("p", DataType::Float64, false).with_metadata(meta.clone());
        let schema = Arc::new(Schema::new(vec![field]).with_metadata(meta.clone()));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Float64Array::from(vec![1.0]))]).unwrap();
        let (imported, batches) = round_trip(vec![batch.clone()]);
        assert_eq!(imported.metadata(), &meta);
        assert_eq!(imported.field(0).metadata(), &meta);
        assert_eq!(batches, vec![batch]);
    }

    #[test]
    fn a_child_moved_out_outlives_its_released_parent() {
        let batch = covered();
        let mut stream = FFI_ArrowArrayStream::empty();
        unsafe { export(Data { schema: batch.schema(), batches: vec![batch.clone()] }, &mut stream) };
        let mut schema = FFI_ArrowSchema::empty();
        let mut array = FFI_ArrowArray::empty();
        unsafe {
            let raw = (&mut stream as *mut FFI_ArrowArrayStream).cast::<CStream>();
            assert_eq!(((*raw).get_schema.unwrap())(&mut stream, &mut schema), 0);
            assert_eq!(((*raw).get_next.unwrap())(&mut stream, &mut array), 0);
            drop(stream); // the stream may go before what it handed out
            // Move column 4 (strings with a null) out of both trees, as the C Data Interface allows.
            let (c_schema, c_array) = (&*(&schema as *const FFI_ArrowSchema).cast::<CSchema>(), &*(&array as *const FFI_ArrowArray).cast::<CArray>());
            let child_schema = std::ptr::replace((*c_schema.children.add(4)).cast::<FFI_ArrowSchema>(), FFI_ArrowSchema::empty());
            let child_array = std::ptr::replace((*c_array.children.add(4)).cast::<FFI_ArrowArray>(), FFI_ArrowArray::empty());
            drop(array);
            drop(schema);
            let field = Field::try_from(&child_schema).unwrap();
            assert_eq!((field.name().as_str(), field.data_type()), ("name", &DataType::Utf8));
            let data = arrow::ffi::from_ffi(child_array, &child_schema).unwrap();
            assert_eq!(arrow::array::make_array(data).as_ref(), batch.column(4).as_ref());
        }
    }

    #[test]
    fn a_released_stream_is_refused_and_the_end_is_a_released_array() {
        let batch = covered();
        let mut stream = FFI_ArrowArrayStream::empty();
        unsafe { export(Data { schema: batch.schema(), batches: vec![] }, &mut stream) };
        let raw = (&mut stream as *mut FFI_ArrowArrayStream).cast::<CStream>();
        unsafe {
            let get_next = (*raw).get_next.unwrap();
            let mut array = FFI_ArrowArray::empty();
            assert_eq!(get_next(&mut stream, &mut array), 0);
            assert!(array.is_released(), "no batches: the first get_next ends the stream");
            assert_eq!(get_next(&mut stream, std::ptr::null_mut()), EINVAL);
            let release = (*raw).release.unwrap();
            release(&mut stream);
            assert!((*raw).release.is_none());
            assert_eq!(get_next(&mut stream, &mut array), EINVAL, "a released stream");
        }
    }
}
