//! `fstore_options`: named settings for opening a store.

use std::ffi::c_char;

use super::boundary::{arg_mut, boundary, str_arg, OK};
use super::{fstore_error, fstore_status};
use crate::options::Options;

/// Options for `fstore_store_open`. Not thread-safe.
pub struct fstore_options {
    pub(crate) options: Options,
}

/// A new set of default options. Free with `fstore_options_free`.
#[no_mangle]
pub extern "C" fn fstore_options_new() -> *mut fstore_options {
    Box::into_raw(Box::new(fstore_options { options: Options::default() }))
}

/// Sets option `key` to `value`. Unknown keys and bad values return
/// FSTORE_STATUS_INVALID_ARGUMENT and leave the options unchanged. Keys:
/// - `cache_dir`: default `$FSTORE_CACHE_DIR`, else `~/.feature_cache`
/// - `cache.group`: a group name or gid sharing the cache (default
///   `$FSTORE_CACHE_GROUP`, else none: the cache is private to its owner,
///   directories 0700 and files 0600; with a group, 2770 and 0660). An
///   unknown group is FSTORE_STATUS_INVALID_ARGUMENT
/// - `cache.check_permissions`: `true` (default) refuses, at open, a cache
///   directory that another user could write or replace, with
///   FSTORE_STATUS_PERMISSION_DENIED; `false` (for file systems without
///   Unix permissions) skips the check and logs a warning at every open
/// - `lock.granularity`: `symbol` (default) or `entry`
/// - `lock.cross_process`: `true` (default) or `false`
/// - `lock.namespace`: mixed into every lock key (default empty)
/// - `wait.timeout_ms`: longest wait for another's compute (default 600000)
/// - `verify_checksums`: `true` (default) or `false`
/// - `memory_cache_mb`: decoded entries kept in memory per store (default 64;
///   0 disables); served only while their file is unchanged
/// - `manifest`: `auto` (default), `postgres` or `duckdb`
/// - `metrics.max_symbols` (1000), `metrics.max_feature_sets` (100):
///   distinct label values with metric series of their own; the rest share
///   the value `other`
/// - `postgres.dsn`, or `postgres.host`, `.port`, `.database`, `.user`,
///   `.password` (default: `PG_MANIFEST_DSN`, or `PG_HOST`, `PG_PORT`, ...)
/// - `postgres.pool_min` (2), `postgres.pool_max` (16),
///   `postgres.connect_timeout_ms` (5000)
/// - `postgres.schema` (`fstore`), `postgres.auto_migrate` (`true`)
/// - `postgres.keepalives_idle_ms` (5000), `postgres.keepalives_interval_ms`
///   (1000), `postgres.keepalives_count` (5), `postgres.tcp_user_timeout_ms`
///   (10000): TCP keepalives and user timeout on both ends of every
///   connection, so that a dead or cut-off host's locks come free within
///   seconds (whole seconds for the keepalive times)
#[no_mangle]
pub unsafe extern "C" fn fstore_options_set(
    options: *mut fstore_options,
    key: *const c_char,
    value: *const c_char,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let options = arg_mut(options, "options")?;
        let key = str_arg(key, "key")?;
        let value = str_arg(value, "value")?;
        options.options.set(key, value)?;
        OK
    })
}

/// Frees `*options` (NULL allowed) and sets it to NULL.
#[no_mangle]
pub unsafe extern "C" fn fstore_options_free(options: *mut *mut fstore_options) {
    if let Some(slot) = options.as_mut() {
        if !slot.is_null() {
            drop(Box::from_raw(*slot));
            *slot = std::ptr::null_mut();
        }
    }
}
