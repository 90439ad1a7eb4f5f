//! `fstore_store`: the store handle and its calls.

use std::ffi::{c_char, c_void};

use arrow::ffi_stream::FFI_ArrowArrayStream;
use arrow::record_batch::RecordBatchReader;

use super::boundary::{arg, arg_mut, boundary, OK};
use super::handle::{close_handle, enter, open_handle};
pub use super::handle::fstore_store;
use super::error::take_message;
use super::key::{fstore_key, key_arg, key_ref_arg};
use super::options::fstore_options;
use super::request::fstore_request;
use super::sized::{check_out, read_sized, write_sized};
use super::stream::{export, import, take};
use super::{fstore_error, fstore_status, FSTORE_STATUS_OK};
use std::time::Duration;

use crate::data::Data;
use crate::error::{Error, Result, Status};
use crate::key::{Key, KeyRef};
use crate::maintenance::MaintainOptions;
use crate::manifest::Backend;
use crate::request::Request;
use crate::store::{describe, Store};


/// Counters since the store was opened.
#[repr(C)]
#[derive(Default)]
pub struct fstore_stats {
    /// Calls answered from an existing entry without waiting.
    pub hits: u64,
    /// Calls that found no entry at first look.
    pub misses: u64,
    /// Compute callbacks run.
    pub computes: u64,
    /// Compute callbacks that failed or produced invalid data.
    pub compute_failures: u64,
    /// Calls that waited for another caller's compute.
    pub waits: u64,
    /// Calls that gave up waiting.
    pub timeouts: u64,
    pub cancellations: u64,
    pub bytes_written: u64,
    pub bytes_read: u64,
}

/// Computes the data of `key` into `out` and returns FSTORE_STATUS_OK, or
/// returns another status (optionally describing it with `fstore_error_set`).
/// Runs on the thread that called `fstore_store_get_or_compute`.
/// FSTORE_STATUS_CANCELLED or FSTORE_STATUS_TIMEOUT say that the callback's
/// own caller gave up: that call returns the same status, and calls waiting
/// for this compute take it over. Any other status fails the compute: its
/// caller and every waiter get FSTORE_STATUS_CALLBACK_FAILED.
pub type fstore_compute_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        key: *const fstore_key,
        out: *mut FFI_ArrowArrayStream,
        error: *mut fstore_error,
    ) -> fstore_status,
>;

/// Opens the store that `options` describe (NULL: all defaults) into `*out`.
/// The first store to use a cache directory records its coordination
/// settings there (manifest backend and, for PostgreSQL, database and
/// schema; lock granularity and namespace); a store whose settings differ
/// is refused with FSTORE_STATUS_INVALID_STATE naming both, and under
/// `manifest=auto` a directory bound to PostgreSQL fails with
/// FSTORE_STATUS_UNAVAILABLE rather than falling back when the server is
/// unreachable. A cache directory another user could write (or replace
/// through a parent) is refused with FSTORE_STATUS_PERMISSION_DENIED and
/// the command that fixes it (see `cache.check_permissions`). Waits for the
/// embedded manifest's lock at most `wait.timeout_ms`.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_open(
    options: *const fstore_options,
    out: *mut *mut fstore_store,
    error: *mut fstore_error,
) -> fstore_status {
    super::log::install();
    boundary(error, || {
        let out = arg_mut(out, "out")?;
        let options = options.as_ref().map(|o| o.options.clone()).unwrap_or_default();
        *out = open_handle(Store::open(options)?);
        OK
    })
}

/// Closes `*store` (NULL allowed), flushing its manifest, and sets it to NULL.
/// Use `fstore_store_flush` first to learn whether the manifest is complete.
/// Bounded by `wait.timeout_ms`: manifest changes that cannot be written by
/// then are dropped (their entry files remain, and maintenance re-indexes
/// them).
///
/// Safe while other threads are inside calls on the store: their waits end
/// with FSTORE_STATUS_CANCELLED, close waits for them to return (a compute
/// already running finishes and is published), then frees the store. Called
/// from inside a call on the same store (a compute callback), it returns at
/// once and the store is freed when that call returns. Every call on a
/// closed handle, including copies of the pointer used after close,
/// returns FSTORE_STATUS_INVALID_STATE ("the store is closed"); closing it
/// again does nothing. A closed handle keeps a few dozen bytes for this.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_close(store: *mut *mut fstore_store) {
    if let Some(slot) = store.as_mut() {
        let handle = std::mem::replace(slot, std::ptr::null_mut());
        close_handle(handle);
    }
}

unsafe fn request_arg(request: *const fstore_request, default: &Request) -> &Request {
    request.as_ref().map(|r| &r.request).unwrap_or(default)
}

/// Reads the entry of `key` into `out`. FSTORE_STATUS_NOT_FOUND (with no
/// message) when there is none. Never computes, never waits. `request` may be NULL.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_get(
    store: *const fstore_store,
    key: *const fstore_key,
    request: *const fstore_request,
    out: *mut FFI_ArrowArrayStream,
    error: *mut fstore_error,
) -> fstore_status {
    read_into(store, key, request, out, error, Store::get_borrowed)
}

/// What `fstore_store_get_or_compute` would answer without waiting or
/// computing: reads the entry of `key` into `out`, or returns
/// FSTORE_STATUS_NOT_FOUND (with no message) when that call would have to
/// wait or compute. Unlike `fstore_store_get`, a corrupt entry file counts
/// as missing (get_or_compute computes it again), and a miss is not counted
/// in the stats (the get_or_compute that follows counts it). Never waits for
/// a lock or another caller: for bindings whose waiting calls run elsewhere
/// (a worker thread) to answer a hit on the calling thread. `request` may be
/// NULL.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_try_get(
    store: *const fstore_store,
    key: *const fstore_key,
    request: *const fstore_request,
    out: *mut FFI_ArrowArrayStream,
    error: *mut fstore_error,
) -> fstore_status {
    read_into(store, key, request, out, error, Store::try_get_borrowed)
}

/// The body of the calls that read an entry without computing it: `read`
/// gives the entry (exported into `out`) or `None` (FSTORE_STATUS_NOT_FOUND).
unsafe fn read_into(
    store: *const fstore_store,
    key: *const fstore_key,
    request: *const fstore_request,
    out: *mut FFI_ArrowArrayStream,
    error: *mut fstore_error,
    read: impl FnOnce(&Store, KeyRef<'_>, &Request) -> Result<Option<Data>>,
) -> fstore_status {
    boundary(error, || {
        let inside = enter(store)?;
        let store = &inside.store;
        let key = key_ref_arg(key)?;
        arg_mut(out, "out")?;
        let default = Request::new();
        match read(store, key, request_arg(request, &default))? {
            Some(data) => {
                export(data, out);
                OK
            }
            None => Ok(Status::NotFound),
        }
    })
}

/// Reads the entry of `key` into `out`, computing it with `compute` first if
/// there is none. Exactly one caller per entry (across threads, and across
/// processes sharing the cache) runs `compute`; the others wait, bounded by
/// the request's timeout and cancellable through it, and then receive the
/// same data or the same error. A failed compute stores nothing.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_get_or_compute(
    store: *const fstore_store,
    key: *const fstore_key,
    request: *const fstore_request,
    compute: fstore_compute_fn,
    userdata: *mut c_void,
    out: *mut FFI_ArrowArrayStream,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let inside = enter(store)?;
        let store = &inside.store;
        let rust_key = key_ref_arg(key)?;
        arg_mut(out, "out")?;
        let compute = compute.ok_or_else(|| Error::invalid_argument("compute is NULL"))?;
        let default = Request::new();
        let data = store.get_or_compute_borrowed(rust_key, request_arg(request, &default), |k: &Key| {
            run_callback(compute, userdata, key, k)
        })?;
        export(data, out);
        OK
    })
}

unsafe fn run_callback(
    compute: unsafe extern "C" fn(*mut c_void, *const fstore_key, *mut FFI_ArrowArrayStream, *mut fstore_error) -> fstore_status,
    userdata: *mut c_void,
    c_key: *const fstore_key,
    key: &Key,
) -> Result<Box<dyn RecordBatchReader>> {
    let mut stream = FFI_ArrowArrayStream::empty();
    let mut callback_error = fstore_error::empty();
    let status = compute(userdata, c_key, &mut stream, &mut callback_error);
    let message = take_message(&mut callback_error);
    if status != FSTORE_STATUS_OK {
        drop(stream); // releases whatever the callback left there
        let why = message.unwrap_or_else(|| "no message".into());
        return Err(callback_failure(status, key, &why));
    }
    let reader = import(stream, "the stream the compute callback returned")?;
    Ok(Box::new(reader))
}

/// What a failed callback's status becomes. A callback whose own caller gave
/// up (a cancelled Go context, Ctrl-C in Python) reports CANCELLED or
/// TIMEOUT: that is about its caller, not about the key, so it stays
/// cancellation and the calls waiting for this compute take it over instead
/// of failing. Every other status is the compute's failure.
fn callback_failure(status: fstore_status, key: &Key, why: &str) -> Error {
    let key = describe(key);
    match status {
        super::FSTORE_STATUS_CANCELLED => Error::new(Status::Cancelled, format!("the compute of {key} was cancelled: {why}")),
        super::FSTORE_STATUS_TIMEOUT => Error::new(Status::Timeout, format!("the compute of {key} gave up: {why}")),
        _ => Error::new(Status::CallbackFailed, format!("compute callback for {key} failed with status {status}: {why}")),
    }
}

/// Stores the data of `input` as the entry of `key`, replacing any. Takes
/// ownership of `*input` in every case (it is released on return). Waits
/// (at most `wait.timeout_ms`) for a compute of the entry in progress.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_put(
    store: *const fstore_store,
    key: *const fstore_key,
    input: *mut FFI_ArrowArrayStream,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let stream = take(arg_mut(input, "input")?);
        let inside = enter(store)?;
        let store = &inside.store;
        let key = key_arg(key)?;
        let mut reader = import(stream, "the input stream")?;
        store.put(&key, &mut reader)?;
        OK
    })
}

/// Removes the entry of `key`; FSTORE_STATUS_NOT_FOUND if there was none.
/// Waits (at most `wait.timeout_ms`) for a compute of the entry in progress
/// and removes its result: a compute that began before the invalidation
/// never publishes after it.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_invalidate(
    store: *const fstore_store,
    key: *const fstore_key,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let inside = enter(store)?;
        let store = &inside.store;
        let key = key_arg(key)?;
        match store.invalidate(&key) {
            Err(e) if e.status() == Status::NotFound => Ok(Status::NotFound),
            other => other.map(|_| Status::Ok),
        }
    })
}

/// Sets `*out` to whether a complete entry of `key` exists.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_contains(
    store: *const fstore_store,
    key: *const fstore_key,
    out: *mut bool,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let inside = enter(store)?;
        let store = &inside.store;
        let key = key_arg(key)?;
        let out = arg_mut(out, "out")?;
        *out = store.contains(&key)?;
        OK
    })
}

/// Copies the store's counters into `*out`; pass `sizeof *out` as
/// `out_size` (the struct may grow: a larger one is zero-filled past the
/// fields this library knows).
#[no_mangle]
pub unsafe extern "C" fn fstore_store_stats(
    store: *const fstore_store,
    out: *mut fstore_stats,
    out_size: usize,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let inside = enter(store)?;
        let store = &inside.store;
        check_out(out, out_size, "out")?;
        let s = store.stats();
        let value = fstore_stats {
            hits: s.hits,
            misses: s.misses,
            computes: s.computes,
            compute_failures: s.compute_failures,
            waits: s.waits,
            timeouts: s.timeouts,
            cancellations: s.cancellations,
            bytes_written: s.bytes_written,
            bytes_read: s.bytes_read,
        };
        write_sized(out, out_size, value);
        OK
    })
}

/// Reads the manifest into `out`, one row per entry, the same columns for
/// every backend: entry_id, feature_set, symbol (utf8), start_date, end_date
/// (date32), config (canonical JSON), path (relative to the cache directory),
/// rows, bytes (uint64), checksum (utf8), created_at (timestamp[us, UTC]).
#[no_mangle]
pub unsafe extern "C" fn fstore_store_list(
    store: *const fstore_store,
    out: *mut FFI_ArrowArrayStream,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let inside = enter(store)?;
        let store = &inside.store;
        arg_mut(out, "out")?;
        export(store.entries()?, out);
        OK
    })
}

/// Waits (at most `wait.timeout_ms`) until the manifest records every entry
/// published so far; reports a manifest failure since the last flush.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_flush(store: *const fstore_store, error: *mut fstore_error) -> fstore_status {
    boundary(error, || {
        enter(store)?.store.flush()?;
        OK
    })
}

/// The manifest backend in use: "postgres" or "duckdb" (which also decides
/// how processes lock). Static; do not free. NULL for a NULL or closed store.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_manifest_backend(store: *const fstore_store) -> *const c_char {
    match enter(store).ok().map(|s| s.store.manifest_backend()) {
        Some(Backend::Postgres) => c"postgres".as_ptr(),
        Some(Backend::DuckDb) => c"duckdb".as_ptr(),
        None => std::ptr::null(),
    }
}

/// Warnings from opening the store (one per line), such as a fallback from
/// PostgreSQL to the embedded manifest and why; NULL when there were none.
/// Owned by the store: valid until it is closed.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_warnings(store: *const fstore_store) -> *const c_char {
    enter(store).ok().and_then(|s| s.warnings.as_ref().map(|w| w.as_ptr())).unwrap_or(std::ptr::null())
}

/// Renders the store's metrics in the Prometheus text exposition format
/// (version 0.0.4) into `*out`, NUL-terminated; free it with
/// `fstore_string_free`. The series keep the `featurestore_` names of the
/// design libfstore replaces: hits, misses and waits per symbol, computes
/// and latency histograms per feature set (label values beyond
/// `metrics.max_symbols` / `metrics.max_feature_sets` fold into `other`),
/// errors per status, memory cache, pool and advisory-lock gauges, and
/// `featurestore_info`. With PostgreSQL it queries `pg_locks`.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_metrics(
    store: *const fstore_store,
    out: *mut *mut c_char,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let inside = enter(store)?;
        let out = arg_mut(out, "out")?;
        let text = inside.store.metrics()?;
        *out = super::error::to_c_string(&text).into_raw();
        OK
    })
}

/// Connection pool figures.
#[repr(C)]
#[derive(Default)]
pub struct fstore_pool_stats {
    /// Connections open, idle or in use.
    pub size: u32,
    pub idle: u32,
    pub in_use: u32,
    /// Check-outs that had to wait for a connection.
    pub waits: u64,
}

/// Copies the PostgreSQL pool's figures into `*out` (`out_size`: `sizeof
/// *out`); FSTORE_STATUS_NOT_FOUND (no message) when the store does not use
/// PostgreSQL.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_pool_stats(
    store: *const fstore_store,
    out: *mut fstore_pool_stats,
    out_size: usize,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let inside = enter(store)?;
        let store = &inside.store;
        check_out(out, out_size, "out")?;
        match store.pool_stats() {
            Some(p) => {
                let value = fstore_pool_stats { size: p.size, idle: p.idle, in_use: p.in_use, waits: p.waits };
                write_sized(out, out_size, value);
                OK
            }
            None => Ok(Status::NotFound),
        }
    })
}

/// Advisory locks in the manifest's database, from `pg_locks`.
#[repr(C)]
#[derive(Default)]
pub struct fstore_lock_stats {
    pub held: u64,
    pub waiting: u64,
}

/// Copies the advisory-lock figures into `*out` (`out_size`: `sizeof
/// *out`); FSTORE_STATUS_NOT_FOUND (no message) when the store does not use
/// PostgreSQL.
#[no_mangle]
pub unsafe extern "C" fn fstore_store_lock_stats(
    store: *const fstore_store,
    out: *mut fstore_lock_stats,
    out_size: usize,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let inside = enter(store)?;
        let store = &inside.store;
        check_out(out, out_size, "out")?;
        match store.lock_stats()? {
            Some(l) => {
                write_sized(out, out_size, fstore_lock_stats { held: l.held, waiting: l.waiting });
                OK
            }
            None => Ok(Status::NotFound),
        }
    })
}

/// Reads entries, rows, bytes and age per feature set and symbol into `out`:
/// feature_set, symbol (utf8), entries, rows, bytes (uint64), oldest, newest
/// (timestamp[us, UTC]).
#[no_mangle]
pub unsafe extern "C" fn fstore_store_summary(
    store: *const fstore_store,
    out: *mut FFI_ArrowArrayStream,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let inside = enter(store)?;
        let store = &inside.store;
        arg_mut(out, "out")?;
        export(store.summary()?, out);
        OK
    })
}

/// What `fstore_store_maintain` removes.
#[repr(C)]
#[derive(Copy, Clone)]
pub struct fstore_maintain_options {
    /// Remove entries created longer ago than this; negative (or INT64_MAX)
    /// keeps them all. A large value never wraps around.
    pub max_age_ms: i64,
    /// Never remove a file modified more recently than this (at least 0).
    pub grace_ms: i64,
    /// Count, but change nothing.
    pub dry_run: bool,
}

/// `fstore_maintain_options` as the library reads it: a caller's `bool` may
/// hold any byte, and only 0 and 1 are valid Rust `bool`s.
#[repr(C)]
#[derive(Copy, Clone)]
struct MaintainOptionsBytes {
    max_age_ms: i64,
    grace_ms: i64,
    dry_run: u8,
}

const _: () = assert!(std::mem::size_of::<MaintainOptionsBytes>() == std::mem::size_of::<fstore_maintain_options>());

/// What `fstore_store_maintain` did (or would have done, in a dry run).
#[repr(C)]
#[derive(Default)]
pub struct fstore_maintain_report {
    /// Entries older than `max_age_ms`: file and row.
    pub expired_entries: u64,
    /// Manifest rows whose file is gone.
    pub rows_without_file: u64,
    /// Entry files that failed verification, removed.
    pub corrupt_files: u64,
    /// Temporary files left by writers that died.
    pub temp_files: u64,
    pub bytes_freed: u64,
    /// Verified entry files whose manifest row was missing, indexed again.
    pub reindexed_files: u64,
    /// Manifest rows with a malformed entry id, removed (never used as paths).
    pub invalid_rows: u64,
    /// Lock files nobody held, removed (embedded mode).
    pub lock_files: u64,
}

/// Removes expired entries (under each entry's lock, so that a republished
/// one stays), manifest rows whose file is gone, entry files that fail
/// verification, stale temporary files and unused lock files, and
/// re-indexes verified entry files whose manifest row is missing (the file
/// proves the entry). Nothing modified within the grace period is touched.
/// `options` NULL: nothing expires, one hour of grace. Pass `sizeof
/// *options` and `sizeof *out` as the sizes (both structs may grow).
#[no_mangle]
pub unsafe extern "C" fn fstore_store_maintain(
    store: *const fstore_store,
    options: *const fstore_maintain_options,
    options_size: usize,
    out: *mut fstore_maintain_report,
    out_size: usize,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let inside = enter(store)?;
        let store = &inside.store;
        check_out(out, out_size, "out")?;
        let mut settings = MaintainOptions::default();
        if !options.is_null() {
            let defaults = MaintainOptionsBytes {
                max_age_ms: -1,
                grace_ms: settings.grace.as_millis() as i64,
                dry_run: 0,
            };
            let o = read_sized(options.cast::<MaintainOptionsBytes>(), options_size, defaults);
            if o.grace_ms < 0 {
                return Err(Error::invalid_argument(format!("grace_ms is negative ({})", o.grace_ms)));
            }
            settings.max_age = u64::try_from(o.max_age_ms)
                .ok()
                .filter(|_| o.max_age_ms != i64::MAX)
                .map(Duration::from_millis);
            settings.grace = Duration::from_millis(o.grace_ms as u64);
            settings.dry_run = o.dry_run != 0;
        }
        let r = store.maintain(&settings)?;
        let report = fstore_maintain_report {
            expired_entries: r.expired_entries,
            rows_without_file: r.rows_without_file,
            corrupt_files: r.corrupt_files,
            temp_files: r.temp_files,
            bytes_freed: r.bytes_freed,
            reindexed_files: r.reindexed_files,
            invalid_rows: r.invalid_rows,
            lock_files: r.lock_files,
        };
        write_sized(out, out_size, report);
        OK
    })
}

/// What `fstore_migrate_manifest` did.
#[repr(C)]
#[derive(Default)]
pub struct fstore_migration_report {
    pub rows_read: u64,
    pub inserted: u64,
    pub already_present: u64,
}

/// Creates or upgrades libfstore's PostgreSQL schema, for deployments whose
/// workers run with `postgres.auto_migrate=false`.
#[no_mangle]
pub unsafe extern "C" fn fstore_migrate_schema(options: *const fstore_options, error: *mut fstore_error) -> fstore_status {
    super::log::install();
    boundary(error, || {
        let options = arg(options, "options")?;
        crate::migration::migrate_schema(&options.options)?;
        OK
    })
}

/// Copies the embedded DuckDB manifest of `options`' cache directory into
/// PostgreSQL (backing the DuckDB file up first) and reports into `*out`
/// (`out_size`: `sizeof *out`). Idempotent; safe while workers run.
#[no_mangle]
pub unsafe extern "C" fn fstore_migrate_manifest(
    options: *const fstore_options,
    out: *mut fstore_migration_report,
    out_size: usize,
    error: *mut fstore_error,
) -> fstore_status {
    super::log::install();
    boundary(error, || {
        let options = arg(options, "options")?;
        check_out(out, out_size, "out")?;
        let r = crate::migration::migrate_manifest(&options.options)?;
        let report =
            fstore_migration_report { rows_read: r.rows_read, inserted: r.inserted, already_present: r.already_present };
        write_sized(out, out_size, report);
        OK
    })
}
