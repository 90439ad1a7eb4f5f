//! `fstore_store_scan`: many entries at once.

use std::ffi::c_char;

use arrow::ffi_stream::FFI_ArrowArrayStream;

use super::boundary::{arg, arg_mut, boundary, str_arg, OK};
use super::handle::{enter, fstore_store};
use super::stream::export;
use super::{fstore_error, fstore_status};
use crate::error::{Error, Result};
use crate::scan::ScanRequest;

/// What `fstore_store_scan` reads. Strings are NUL-terminated UTF-8.
///
/// - `feature_set`: as in `fstore_key`.
/// - `symbols[0..symbol_count]`: the symbols to read; `symbols` NULL (with
///   `symbol_count` 0) reads every symbol. A non-NULL list with
///   `symbol_count` 0 is refused (FSTORE_STATUS_INVALID_ARGUMENT), so that
///   an empty selection never reads everything.
/// - `start_date`, `end_date`: the window (days since 1970-01-01, both
///   included, `end_date >= start_date`). An entry is read when its whole
///   range lies within the window; one that only overlaps it is not.
/// - `config`: JSON text (NULL or empty means `{}`), canonicalised as in
///   `fstore_key`; only entries of this config are read.
/// - `columns[0..column_count]`: feature columns to return, in this order;
///   `column_count` 0 returns all.
#[repr(C)]
pub struct fstore_scan_request {
    pub feature_set: *const c_char,
    pub symbols: *const *const c_char,
    pub symbol_count: usize,
    pub start_date: i32,
    pub end_date: i32,
    pub config: *const c_char,
    pub columns: *const *const c_char,
    pub column_count: usize,
}

unsafe fn strings(ptr: *const *const c_char, count: usize, name: &str) -> Result<Vec<String>> {
    if count > 0 && ptr.is_null() {
        return Err(Error::invalid_argument(format!("{name} is NULL but {name} count is {count}")));
    }
    (0..count).map(|i| str_arg(*ptr.add(i), &format!("{name}[{i}]")).map(str::to_string)).collect()
}

unsafe fn scan_arg(scan: *const fstore_scan_request) -> Result<ScanRequest> {
    let scan = arg(scan, "scan")?;
    let symbols = strings(scan.symbols, scan.symbol_count, "symbols")?;
    let columns = strings(scan.columns, scan.column_count, "columns")?;
    Ok(ScanRequest {
        feature_set: str_arg(scan.feature_set, "scan.feature_set")?.to_string(),
        symbols: (!scan.symbols.is_null()).then_some(symbols),
        start_date: scan.start_date,
        end_date: scan.end_date,
        config: if scan.config.is_null() { String::new() } else { str_arg(scan.config, "scan.config")?.to_string() },
        columns: (!columns.is_empty()).then_some(columns),
    })
}

/// Reads the entries `scan` selects into `out`, one stream: the key columns
/// `fstore_symbol` (utf8), `fstore_start_date` and `fstore_end_date`
/// (date32), then the entries' columns (or the projected ones), entries in
/// the order of symbol, start date and end date. Never computes. Entries
/// the manifest lists whose file is missing or fails verification are not
/// dropped: they are written to `missing`, one row each: feature_set,
/// symbol (utf8), start_date, end_date (date32), config (canonical JSON),
/// reason (utf8); the call still returns FSTORE_STATUS_OK. Entries whose
/// (projected) columns differ, or a feature column named like a key column,
/// fail with FSTORE_STATUS_INVALID_DATA naming the entries; an unknown
/// column with FSTORE_STATUS_INVALID_ARGUMENT. A scan that selects no entry
/// returns the key columns only. Both streams are written only on success.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_scan(
    store: *const fstore_store,
    scan: *const fstore_scan_request,
    out: *mut FFI_ArrowArrayStream,
    missing: *mut FFI_ArrowArrayStream,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let inside = enter(store)?;
        let store = &inside.store;
        let request = scan_arg(scan)?;
        arg_mut(out, "out")?;
        arg_mut(missing, "missing")?;
        let result = store.scan(&request)?;
        let missing_data = result.missing_to_arrow()?;
        export(result.data, out);
        export(missing_data, missing);
        OK
    })
}
