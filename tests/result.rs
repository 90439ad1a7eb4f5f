//! `fstore_result`: a stream read once into memory, then exported any number
//! of times, from any thread, each export a fresh stream over the same
//! buffers, valid after the result is freed.

#[path = "common/c_api.rs"]
mod c_api;
use c_api::{open_store, CError};
use std::ptr;
use std::sync::Arc;

use fstore::arrow::array::{Array, Float64Array, Int64Array, RecordBatch, RecordBatchIterator, StringArray};
use fstore::arrow::datatypes::{DataType, Field, Schema};
use fstore::arrow::error::ArrowError;
use fstore::arrow::record_batch::RecordBatchReader;
use fstore::arrow::ffi_stream::{RecordBatchStreamReader, FFI_ArrowArrayStream};
use fstore::ffi::*;


/// Owns a result and frees it.
struct CResult(*mut fstore_result);

// SAFETY: a result is immutable and documented as exportable from any thread.
unsafe impl Send for CResult {}
unsafe impl Sync for CResult {}

impl Drop for CResult {
    fn drop(&mut self) {
        unsafe { fstore_result_free(&mut self.0) };
        assert!(self.0.is_null(), "free sets the handle to NULL");
    }
}

impl CResult {
    fn from_stream(mut stream: FFI_ArrowArrayStream) -> CResult {
        let mut err = CError::new();
        let mut result = ptr::null_mut();
        let status = unsafe { fstore_result_new(&mut stream, &mut result, err.ptr()) };
        assert_eq!(status, FSTORE_STATUS_OK, "{}", err.message());
        assert!(stream.release().is_none(), "the result takes the stream");
        CResult(result)
    }

    fn export(&self) -> FFI_ArrowArrayStream {
        let mut err = CError::new();
        let mut out = FFI_ArrowArrayStream::empty();
        let status = unsafe { fstore_result_export(self.0, &mut out, err.ptr()) };
        assert_eq!(status, FSTORE_STATUS_OK, "{}", err.message());
        out
    }
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("x", DataType::Int64, false),
        Field::new("price", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
    ]))
}

fn batches() -> Vec<RecordBatch> {
    (0..3)
        .map(|b| {
            let base = b * 4;
            RecordBatch::try_new(
                schema(),
                vec![
                    Arc::new(Int64Array::from((base..base + 4).collect::<Vec<i64>>())),
                    Arc::new(Float64Array::from(vec![Some(1.5), None, Some(2.5), Some(b as f64)])),
                    Arc::new(StringArray::from(vec![Some("a"), Some("bb"), None, Some("dddd")])),
                ],
            )
            .unwrap()
        })
        .collect()
}

fn stream_of(batches: Vec<RecordBatch>) -> FFI_ArrowArrayStream {
    let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema());
    FFI_ArrowArrayStream::new(Box::new(reader))
}

fn read(stream: FFI_ArrowArrayStream) -> Vec<RecordBatch> {
    RecordBatchStreamReader::try_new(stream).unwrap().collect::<Result<_, _>>().unwrap()
}

/// The address of column `column`'s values buffer in `batch`.
fn values_address(batch: &RecordBatch, column: usize) -> *const u8 {
    let data = batch.column(column).to_data();
    data.buffers()[data.buffers().len() - 1].as_ptr()
}

#[test]
fn every_export_is_a_fresh_stream_over_the_same_buffers() {
    let original = batches();
    let result = CResult::from_stream(stream_of(original.clone()));
    assert_eq!(unsafe { fstore_result_row_count(result.0) }, 12);
    assert_eq!(unsafe { fstore_result_batch_count(result.0) }, 3);
    for round in 0..3 {
        let read = read(result.export());
        assert_eq!(read, original, "export {round} holds every batch from the first");
        for (got, sent) in read.iter().zip(&original) {
            for column in 0..sent.num_columns() {
                assert_eq!(
                    values_address(got, column),
                    values_address(sent, column),
                    "export {round}, column {column}: the producer's buffer, not a copy"
                );
            }
        }
    }
}

#[test]
fn a_stream_outlives_the_result_it_came_from() {
    let original = batches();
    let result = CResult::from_stream(stream_of(original.clone()));
    let unread = result.export();
    let mut half_read = RecordBatchStreamReader::try_new(result.export()).unwrap();
    let first = half_read.next().unwrap().unwrap();
    drop(result);
    assert_eq!(read(unread), original);
    let rest: Vec<_> = half_read.collect::<Result<_, _>>().unwrap();
    assert_eq!([vec![first], rest].concat(), original);
}

#[test]
fn threads_export_one_result_at_once() {
    let original = batches();
    let result = Arc::new(CResult::from_stream(stream_of(original.clone())));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let result = Arc::clone(&result);
            std::thread::spawn(move || (0..50).map(|_| read(result.export())).collect::<Vec<_>>())
        })
        .collect();
    for thread in threads {
        for read in thread.join().unwrap() {
            assert_eq!(read, original);
        }
    }
}

#[test]
fn an_empty_stream_makes_an_empty_result_with_its_schema() {
    let result = CResult::from_stream(stream_of(Vec::new()));
    assert_eq!(unsafe { fstore_result_row_count(result.0) }, 0);
    let reader = RecordBatchStreamReader::try_new(result.export()).unwrap();
    assert_eq!(reader.schema(), schema());
    assert_eq!(reader.count(), 0);
}

#[test]
fn a_stream_that_fails_midway_is_invalid_data_and_released() {
    let failing: Vec<Result<RecordBatch, ArrowError>> =
        vec![Ok(batches().remove(0)), Err(ArrowError::ComputeError("the producer broke".into()))];
    let mut stream = FFI_ArrowArrayStream::new(Box::new(RecordBatchIterator::new(failing, schema())));
    let mut err = CError::new();
    let mut result = ptr::null_mut();
    let status = unsafe { fstore_result_new(&mut stream, &mut result, err.ptr()) };
    assert_eq!(status, FSTORE_STATUS_INVALID_DATA);
    assert!(err.message().contains("the producer broke"), "{}", err.message());
    assert!(result.is_null(), "no output on failure");
    assert!(stream.release().is_none(), "the stream is taken in every case");
}

#[test]
fn bad_arguments_are_refused_with_a_message() {
    let mut err = CError::new();
    let mut result = ptr::null_mut();
    // A released stream.
    let mut released = FFI_ArrowArrayStream::empty();
    assert_eq!(unsafe { fstore_result_new(&mut released, &mut result, err.ptr()) }, FSTORE_STATUS_INVALID_DATA);
    assert!(err.message().contains("not set"), "{}", err.message());
    // NULL stream, NULL out.
    assert_eq!(unsafe { fstore_result_new(ptr::null_mut(), &mut result, err.ptr()) }, FSTORE_STATUS_INVALID_ARGUMENT);
    assert_eq!(err.message(), "stream is NULL");
    let mut stream = stream_of(batches());
    assert_eq!(unsafe { fstore_result_new(&mut stream, ptr::null_mut(), err.ptr()) }, FSTORE_STATUS_INVALID_ARGUMENT);
    assert_eq!(err.message(), "out is NULL");
    assert!(result.is_null());
    // Exporting from NULL, or into NULL.
    let mut out = FFI_ArrowArrayStream::empty();
    assert_eq!(unsafe { fstore_result_export(ptr::null(), &mut out, err.ptr()) }, FSTORE_STATUS_INVALID_ARGUMENT);
    assert_eq!(err.message(), "result is NULL");
    assert!(out.release().is_none(), "no output on failure");
    let result = CResult::from_stream(stream_of(batches()));
    assert_eq!(unsafe { fstore_result_export(result.0, ptr::null_mut(), err.ptr()) }, FSTORE_STATUS_INVALID_ARGUMENT);
    assert_eq!(err.message(), "out is NULL");
    // Counts of NULL, and freeing NULL.
    assert_eq!(unsafe { fstore_result_row_count(ptr::null()) }, 0);
    unsafe { fstore_result_free(ptr::null_mut()) };
    let mut none: *mut fstore_result = ptr::null_mut();
    unsafe { fstore_result_free(&mut none) };
}

#[test]
fn a_result_holds_a_store_entry_read_many_times() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_store(dir.path());
    let mut err = CError::new();
    // SAFETY: an all-zero key is valid to fill in field by field.
    let mut key: fstore_key = unsafe { std::mem::zeroed() };
    key.feature_set = c"prices".as_ptr();
    key.symbol = c"AAPL".as_ptr();
    key.start_date = 19000;
    key.end_date = 19010;
    let original = batches();
    let mut input = stream_of(original.clone());
    assert_eq!(unsafe { fstore_store_put(store, &key, &mut input, err.ptr()) }, FSTORE_STATUS_OK, "{}", err.message());
    let mut entry = FFI_ArrowArrayStream::empty();
    let status = unsafe { fstore_store_get(store, &key, ptr::null(), &mut entry, err.ptr()) };
    assert_eq!(status, FSTORE_STATUS_OK, "{}", err.message());
    let result = CResult::from_stream(entry);
    unsafe { fstore_store_close(&mut store) };
    let expected = fstore::arrow::compute::concat_batches(&schema(), &original).unwrap();
    for _ in 0..2 {
        let read = read(result.export());
        let got = fstore::arrow::compute::concat_batches(&schema(), &read).unwrap();
        assert_eq!(got, expected);
    }
}

#[test]
fn a_partly_read_stream_of_the_library_keeps_its_unread_batches() {
    let original = batches();
    let whole = CResult::from_stream(stream_of(original.clone()));
    // The library's own export, one batch read.
    let mut rest = FFI_ArrowArrayStream::empty();
    let mut exported = whole.export();
    let get_next = exported.get_next().unwrap();
    let mut first = fstore::arrow::ffi::FFI_ArrowArray::empty();
    assert_eq!(unsafe { get_next(&mut exported, &mut first) }, 0);
    drop(first);
    std::mem::swap(&mut rest, &mut exported);
    let rest = CResult::from_stream(rest);
    assert_eq!(unsafe { fstore_result_batch_count(rest.0) }, 2);
    let read = read(rest.export());
    assert_eq!(read, original[1..].to_vec());
    assert_eq!(values_address(&read[0], 0), values_address(&original[1], 0), "the same buffers");
}
