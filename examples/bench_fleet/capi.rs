//! libfstore through its C API, called as a C program would: the exported
//! `fstore_*` functions, a compute callback that fills an Arrow C stream,
//! and results consumed through the Arrow C stream interface.

use std::ffi::{c_void, CStr, CString};
use std::ptr;
use std::time::Duration;

use fstore::arrow::ffi_stream::{RecordBatchStreamReader, FFI_ArrowArrayStream};
use fstore::ffi::*;

use crate::data::{self, BenchKey};
use crate::fleet::now_ns;

/// An open store (`fstore_store *`). Thread-safe, as the C API says.
pub struct CStore(*mut fstore_store);

// SAFETY: fstore_store is documented thread-safe.
unsafe impl Send for CStore {}
unsafe impl Sync for CStore {}

/// Runs the compute: sleeps for `ms` (the expensive part), then makes the
/// features. Records when each compute began and ended.
pub struct Compute {
    pub ms: u64,
    pub spans: Vec<(u64, u64)>,
}

impl Compute {
    pub fn new(ms: u64) -> Self {
        Compute { ms, spans: Vec::new() }
    }

    /// The expensive part, timed.
    pub fn run(&mut self) {
        let start = now_ns();
        std::thread::sleep(Duration::from_millis(self.ms));
        self.spans.push((start, now_ns()));
    }
}

/// A zero-initialised error, as the C API asks.
fn no_error() -> fstore_error {
    unsafe { std::mem::zeroed::<fstore_error>() }
}

fn message(error: &mut fstore_error) -> String {
    let text = if error.message.is_null() {
        "no message".to_string()
    } else {
        // SAFETY: a NUL-terminated message owned by the error.
        unsafe { CStr::from_ptr(error.message) }.to_string_lossy().into_owned()
    };
    // SAFETY: the error is ours, released once.
    unsafe { fstore_error_release(error) };
    text
}

fn check(status: fstore_status, error: &mut fstore_error, what: &str) -> Result<(), String> {
    if status == FSTORE_STATUS_OK {
        return Ok(());
    }
    // SAFETY: status names are static strings.
    let name = unsafe { CStr::from_ptr(fstore_status_name(status)) }.to_string_lossy();
    Err(format!("{what}: {name}: {}", message(error)))
}

fn c_key(key: &BenchKey) -> fstore_key {
    fstore_key {
        feature_set: key.feature_set.as_ptr(),
        symbol: key.symbol.as_ptr(),
        start_date: key.start_date,
        end_date: key.end_date,
        config: key.config.as_ptr(),
        reserved: [std::ptr::null(); 4],
    }
}

/// Reads a result stream to the end (as a consumer would); returns its rows.
fn consume(stream: &mut FFI_ArrowArrayStream) -> Result<usize, String> {
    // SAFETY: a stream the library just exported; the reader takes it over.
    let reader = unsafe { RecordBatchStreamReader::from_raw(stream) }.map_err(|e| format!("cannot import: {e}"))?;
    let mut rows = 0;
    for batch in reader {
        rows += batch.map_err(|e| format!("cannot read a batch: {e}"))?.num_rows();
    }
    Ok(rows)
}

unsafe extern "C" fn compute_callback(
    userdata: *mut c_void,
    key: *const fstore_key,
    out: *mut FFI_ArrowArrayStream,
    _error: *mut fstore_error,
) -> fstore_status {
    // No panic can cross this boundary: nothing here unwraps.
    let compute = &mut *(userdata as *mut Compute);
    compute.run();
    let key = &*key;
    ptr::write(out, FFI_ArrowArrayStream::new(Box::new(data::features(key.start_date, key.end_date))));
    FSTORE_STATUS_OK
}

impl CStore {
    pub fn open(options: &[(&str, String)]) -> Result<CStore, String> {
        let mut error = no_error();
        let mut opts = fstore_options_new();
        let mut result = Ok(());
        for (name, value) in options {
            let (n, v) = (CString::new(*name).expect("no NUL"), CString::new(value.as_str()).map_err(|e| e.to_string())?);
            // SAFETY: live options and NUL-terminated strings.
            result = check(unsafe { fstore_options_set(opts, n.as_ptr(), v.as_ptr(), &mut error) }, &mut error, name);
            if result.is_err() {
                break;
            }
        }
        let mut store = ptr::null_mut();
        if result.is_ok() {
            // SAFETY: live options; `store` is written on success only.
            result = check(unsafe { fstore_store_open(opts, &mut store, &mut error) }, &mut error, "open");
        }
        // SAFETY: frees the options once.
        unsafe { fstore_options_free(&mut opts) };
        result.map(|()| CStore(store))
    }

    /// Returns the rows of the entry, computing it with `compute` on a miss.
    pub fn get_or_compute(&self, key: &BenchKey, compute: &mut Compute) -> Result<usize, String> {
        let (k, mut error, mut out) = (c_key(key), no_error(), FFI_ArrowArrayStream::empty());
        // SAFETY: live store, key strings and out-parameters; `compute` outlives the call.
        let status = unsafe {
            fstore_store_get_or_compute(
                self.0,
                &k,
                ptr::null(),
                Some(compute_callback),
                compute as *mut Compute as *mut c_void,
                &mut out,
                &mut error,
            )
        };
        check(status, &mut error, "get_or_compute")?;
        consume(&mut out)
    }

    /// The rows of the entry, or `None` when there is none.
    pub fn get(&self, key: &BenchKey) -> Result<Option<usize>, String> {
        let (k, mut error, mut out) = (c_key(key), no_error(), FFI_ArrowArrayStream::empty());
        // SAFETY: live store, key and out-parameters.
        let status = unsafe { fstore_store_get(self.0, &k, ptr::null(), &mut out, &mut error) };
        if status == FSTORE_STATUS_NOT_FOUND {
            return Ok(None);
        }
        check(status, &mut error, "get")?;
        consume(&mut out).map(Some)
    }
}

impl Drop for CStore {
    fn drop(&mut self) {
        // SAFETY: closes the store once and nulls the handle.
        unsafe { fstore_store_close(&mut self.0) };
    }
}
