//! Foreign Arrow arrays handed over the C API (`fstore_store_put`'s input, a
//! compute callback's output) are validated before anything reads them.
//! Every batch here has honestly sized buffers with hostile contents, or
//! pointers a producer must not send: each is INVALID_DATA naming the column
//! at fault, nothing is stored, and the entry stored before stays readable.

mod hostile_arrow;

#[path = "common/c_api.rs"]
mod c_api;
use c_api::{open_store, CError};
use std::ffi::{c_void, CString};
use std::ptr;
use std::sync::Arc;

use hostile_arrow::Tamper;
use fstore::arrow::array::{Array, ArrayData, Float64Array, RecordBatch, RecordBatchIterator, StringArray};
use fstore::arrow::buffer::Buffer;
use fstore::arrow::datatypes::{DataType, Field, Schema};
use fstore::arrow::ffi_stream::{RecordBatchStreamReader, FFI_ArrowArrayStream};
use fstore::ffi::*;

/// A store opened through the C API on a temporary directory.
struct CStore {
    store: *mut fstore_store,
    _dir: tempfile::TempDir,
}

impl CStore {
    fn open() -> CStore {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        CStore { store, _dir: dir }
    }

    /// `fstore_store_put`: the status and the error message.
    fn put(&self, key: &CKey, mut stream: FFI_ArrowArrayStream) -> (fstore_status, String) {
        let mut err = CError::new();
        let status = unsafe { fstore_store_put(self.store, &key.key, &mut stream, err.ptr()) };
        assert!(stream.release().is_none(), "put takes the stream in every case");
        (status, err.message())
    }

    fn contains(&self, key: &CKey) -> bool {
        let mut err = CError::new();
        let mut present = true;
        let status = unsafe { fstore_store_contains(self.store, &key.key, &mut present, err.ptr()) };
        assert_eq!(status, FSTORE_STATUS_OK, "{}", err.message());
        present
    }

    /// The entry's batches, read back through `fstore_store_get`.
    fn get(&self, key: &CKey) -> Vec<RecordBatch> {
        let mut err = CError::new();
        let mut out = FFI_ArrowArrayStream::empty();
        let status = unsafe { fstore_store_get(self.store, &key.key, ptr::null(), &mut out, err.ptr()) };
        assert_eq!(status, FSTORE_STATUS_OK, "{}", err.message());
        RecordBatchStreamReader::try_new(out).unwrap().collect::<Result<_, _>>().unwrap()
    }
}

impl Drop for CStore {
    fn drop(&mut self) {
        unsafe { fstore_store_close(&mut self.store) };
    }
}


/// A key and the C strings it points into.
struct CKey {
    key: fstore_key,
    _strings: [CString; 3],
}

fn c_key(symbol: &str) -> CKey {
    let strings = [c"prices".to_owned(), CString::new(symbol).unwrap(), c"{\"window\": 5}".to_owned()];
    let key = fstore_key {
        feature_set: strings[0].as_ptr(),
        symbol: strings[1].as_ptr(),
        start_date: 19000,
        end_date: 19002,
        config: strings[2].as_ptr(),
        reserved: [std::ptr::null(); 4],
    };
    CKey { key, _strings: strings }
}

/// Three rows: a good `price` column and a `name` column of `name`'s type.
fn batch_with(name: ArrayData) -> RecordBatch {
    let price = Float64Array::from(vec![1.5, 2.5, 3.5]);
    let schema = Schema::new(vec![
        Field::new("price", DataType::Float64, true),
        Field::new("name", name.data_type().clone(), true),
    ]);
    let columns = vec![Arc::new(price) as _, fstore::arrow::array::make_array(name)];
    RecordBatch::try_new(Arc::new(schema), columns).unwrap()
}

fn good_batch() -> RecordBatch {
    batch_with(StringArray::from(vec!["a", "bb", "ccc"]).into_data())
}

fn stream_of(batch: RecordBatch) -> FFI_ArrowArrayStream {
    let schema = batch.schema();
    FFI_ArrowArrayStream::new(Box::new(RecordBatchIterator::new(vec![Ok(batch)], schema)))
}

/// Builds an array as given, without the checks a producer skipped.
fn unchecked(data_type: DataType, len: usize, buffers: Vec<Buffer>, children: Vec<ArrayData>) -> ArrayData {
    let builder = ArrayData::builder(data_type).len(len).buffers(buffers).child_data(children);
    unsafe { builder.build_unchecked() }
}

fn utf8(offsets: &[i32], values: &[u8]) -> ArrayData {
    unchecked(DataType::Utf8, offsets.len() - 1, vec![Buffer::from_slice_ref(offsets), Buffer::from_slice_ref(values)], vec![])
}

/// Stores a good entry, then offers `stream` both over it and under a new
/// key: each is INVALID_DATA with a message containing every one of
/// `needles`, the new key stays absent and the good entry reads back whole.
fn assert_refused(make_stream: impl Fn() -> FFI_ArrowArrayStream, needles: &[&str]) {
    let store = CStore::open();
    let (good, fresh) = (c_key("GOOD"), c_key("FRESH"));
    assert_eq!(store.put(&good, stream_of(good_batch())).0, FSTORE_STATUS_OK);
    for key in [&good, &fresh] {
        let (status, message) = store.put(key, make_stream());
        assert_eq!(status, FSTORE_STATUS_INVALID_DATA, "{message}");
        for needle in needles {
            assert!(message.contains(needle), "no {needle:?} in: {message}");
        }
    }
    assert!(!store.contains(&fresh), "nothing is stored");
    assert_eq!(store.get(&good), vec![good_batch()], "the earlier entry is intact");
}

#[test]
fn utf8_offsets_that_decrease_are_refused() {
    assert_refused(|| stream_of(batch_with(utf8(&[0, 3, 1, 4], b"abcd"))), &["column 'name'", "offset"]);
}

#[test]
fn binary_offsets_that_decrease_are_refused() {
    let binary = unchecked(
        DataType::Binary,
        3,
        vec![Buffer::from_slice_ref([0i32, 4, 2, 6]), Buffer::from_slice_ref(b"abcdef")],
        vec![],
    );
    assert_refused(|| stream_of(batch_with(binary.clone())), &["column 'name'", "offset"]);
}

#[test]
fn list_offsets_past_the_child_values_are_refused() {
    let values = fstore::arrow::array::Int32Array::from(vec![1, 2, 3]).into_data();
    let item = Arc::new(Field::new("item", DataType::Int32, true));
    let list = unchecked(DataType::List(item), 3, vec![Buffer::from_slice_ref([0i32, 1, 2, 9])], vec![values]);
    assert_refused(|| stream_of(batch_with(list.clone())), &["column 'name'"]);
}

#[test]
fn invalid_utf8_is_refused() {
    assert_refused(|| stream_of(batch_with(utf8(&[0, 1, 3, 4], b"a\xc3\x28b"))), &["column 'name'", "UTF"]);
}

#[test]
fn dictionary_keys_out_of_range_are_refused() {
    let values = StringArray::from(vec!["x", "y"]).into_data();
    let dictionary = unchecked(
        DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)),
        3,
        vec![Buffer::from_slice_ref([0i8, 7, 1])],
        vec![values],
    );
    assert_refused(|| stream_of(batch_with(dictionary.clone())), &["column 'name'", "7"]);
}

#[test]
fn a_null_count_that_disagrees_with_the_bitmap_is_refused() {
    // All three rows valid in the bitmap, but two nulls declared.
    let builder = ArrayData::builder(DataType::Utf8)
        .len(3)
        .buffers(vec![Buffer::from_slice_ref([0i32, 1, 2, 3]), Buffer::from_slice_ref(b"abc")])
        .null_bit_buffer(Some(Buffer::from_slice_ref([0b111u8])))
        .null_count(2);
    let lying = unsafe { builder.build_unchecked() };
    assert_refused(|| stream_of(batch_with(lying.clone())), &["column 'name'", "null_count"]);
}

/// The next tests change what the exported batch declares, the way a C
/// producer's bug would.
fn tampered(tamper: Tamper) -> FFI_ArrowArrayStream {
    hostile_arrow::tampered_stream(stream_of(good_batch()), tamper)
}

#[test]
fn nulls_without_a_validity_bitmap_are_refused() {
    // price has no nulls, so no bitmap; declare one null anyway.
    assert_refused(|| tampered(|batch| batch.child(0).null_count = 1), &["column 'price'", "no validity bitmap"]);
}

#[test]
fn a_null_offsets_buffer_is_refused() {
    assert_refused(
        || tampered(|batch| hostile_arrow::set_buffer(batch.child(1), 1, ptr::null())),
        &["column 'name'", "buffer 1 is NULL"],
    );
}

#[test]
fn too_few_buffers_are_refused() {
    assert_refused(|| tampered(|batch| batch.child(1).n_buffers = 2), &["column 'name'", "2 buffers", "needs 3"]);
}

#[test]
fn a_negative_length_is_refused() {
    assert_refused(|| tampered(|batch| batch.child(1).length = -1), &["column 'name'", "length -1"]);
}

#[test]
fn a_null_count_beyond_the_length_is_refused() {
    assert_refused(|| tampered(|batch| batch.child(0).null_count = 4), &["column 'price'", "null_count 4"]);
}

#[test]
fn a_null_child_pointer_is_refused() {
    assert_refused(|| tampered(|batch| hostile_arrow::set_child(batch, 1, ptr::null_mut())), &["column 'name' is a NULL pointer"]);
}

/// A compute callback whose stream holds decreasing offsets.
unsafe extern "C" fn hostile_compute(
    _userdata: *mut c_void,
    _key: *const fstore_key,
    out: *mut FFI_ArrowArrayStream,
    _error: *mut fstore_error,
) -> fstore_status {
    ptr::write(out, stream_of(batch_with(utf8(&[0, 3, 1, 4], b"abcd"))));
    FSTORE_STATUS_OK
}

#[test]
fn a_compute_callback_returning_bad_offsets_stores_nothing() {
    let store = CStore::open();
    let key = c_key("COMPUTED");
    for _ in 0..2 {
        let mut err = CError::new();
        let mut out = FFI_ArrowArrayStream::empty();
        let status = unsafe {
            fstore_store_get_or_compute(store.store, &key.key, ptr::null(), Some(hostile_compute), ptr::null_mut(), &mut out, err.ptr())
        };
        assert_eq!(status, FSTORE_STATUS_INVALID_DATA, "{}", err.message());
        assert!(err.message().contains("column 'name'"), "{}", err.message());
        assert!(out.release().is_none(), "no output on failure");
    }
    assert!(!store.contains(&key));
}
