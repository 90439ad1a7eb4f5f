//! `fstore_key` and `fstore_lock_key`.

use std::ffi::{c_char, c_void};

use super::boundary::{arg, arg_mut, boundary, str_arg, OK};
use super::{fstore_error, fstore_status};
use super::error::to_c_string;
use crate::error::{Error, Result};
use crate::key::{lock_key, Key, KeyRef, ResolvedKey};

/// The five parts of a cache key. Strings are NUL-terminated UTF-8; a symbol
/// or feature set is 1 to 1,024 bytes. Dates are days since 1970-01-01 (Arrow
/// date32), `end_date >= start_date`. `config` is JSON text (NULL or empty
/// means `{}`), canonicalised (RFC 8785: member order, whitespace and escape
/// spelling do not matter; duplicate member names are refused) so that equal
/// configs name one entry and different ones never do. Numbers are compared
/// by their exact decimal value, not as doubles: `1`, `1.0`, `1e0` and `10e-1`
/// are equal and `-0` is `0`, but `1700000000000000001` and
/// `1700000000000000000` (or `1e-400` and `0`) are different configs, so
/// nanosecond timestamps and 64-bit ids need no quoting. A number prints in
/// ECMAScript notation from its own digits, which for every shortest
/// round-trip double (what JSON serialisers emit; where two shortest forms
/// tie, the one ECMAScript picks) is exactly RFC 8785's output. Numbers too
/// large for a double (`1e400`) are refused.
///
/// `reserved` must be zero (`fstore_key key = {0};` or designated
/// initialisers do it): later versions may give it meaning, with zero
/// meaning today's behaviour, and a key whose reserved space is not zero is
/// refused (FSTORE_STATUS_INVALID_ARGUMENT) rather than misread.
#[repr(C)]
pub struct fstore_key {
    pub feature_set: *const c_char,
    pub symbol: *const c_char,
    pub start_date: i32,
    pub end_date: i32,
    pub config: *const c_char,
    pub reserved: [*const c_void; 4],
}

/// Length of an entry id written by `fstore_key_canonical`, with its NUL.
pub const FSTORE_ENTRY_ID_SIZE: usize = 65;

pub(crate) unsafe fn key_arg(key: *const fstore_key) -> Result<Key> {
    key_ref_arg(key).map(KeyRef::to_key)
}

/// The key's parts, borrowed for the duration of the call.
pub(crate) unsafe fn key_ref_arg<'a>(key: *const fstore_key) -> Result<KeyRef<'a>> {
    let key = arg(key, "key")?;
    if key.reserved.iter().any(|p| !p.is_null()) {
        return Err(Error::invalid_argument(
            "key.reserved is not zero: zero-initialise fstore_key (was the program built against a newer fstore.h?)",
        ));
    }
    let config = if key.config.is_null() { "" } else { str_arg(key.config, "key.config")? };
    Ok(KeyRef {
        feature_set: str_arg(key.feature_set, "key.feature_set")?,
        symbol: str_arg(key.symbol, "key.symbol")?,
        start_date: key.start_date,
        end_date: key.end_date,
        config,
    })
}

/// The advisory lock key of `symbol`: the first 8 bytes of SHA-256 over its
/// UTF-8 bytes as a big-endian signed 64-bit integer.
#[no_mangle]
pub unsafe extern "C" fn fstore_lock_key(symbol: *const c_char, out: *mut i64, error: *mut fstore_error) -> fstore_status {
    boundary(error, || {
        let symbol = str_arg(symbol, "symbol")?;
        let out = arg_mut(out, "out")?;
        *out = lock_key(symbol)?;
        OK
    })
}

/// Validates `key` and writes what identifies its entry: `*config`, the
/// canonical form of its config (free it with `fstore_string_free`), and
/// `entry_id`, a NUL-terminated hex string of FSTORE_ENTRY_ID_SIZE bytes.
/// Two keys name the same entry exactly when their entry ids are equal (and
/// then their canonical configs are too): for bindings that compare and hash
/// keys the way the library does. `config` may be NULL when only the id is
/// wanted.
#[no_mangle]
pub unsafe extern "C" fn fstore_key_canonical(
    key: *const fstore_key,
    config: *mut *mut c_char,
    entry_id: *mut c_char,
    error: *mut fstore_error,
) -> fstore_status {
    boundary(error, || {
        let key = key_ref_arg(key)?;
        if entry_id.is_null() {
            return Err(Error::invalid_argument("entry_id is NULL"));
        }
        let resolved = ResolvedKey::resolve_borrowed(key)?;
        debug_assert_eq!(resolved.entry_id.len() + 1, FSTORE_ENTRY_ID_SIZE);
        let id = resolved.entry_id.as_bytes();
        std::ptr::copy_nonoverlapping(id.as_ptr().cast::<c_char>(), entry_id, id.len());
        *entry_id.add(id.len()) = 0;
        if let Some(config) = config.as_mut() {
            *config = to_c_string(&resolved.canonical_config).into_raw();
        }
        OK
    })
}

/// Frees a string the library allocated for the caller (NULL allowed) and
/// sets `*string` to NULL.
#[no_mangle]
pub unsafe extern "C" fn fstore_string_free(string: *mut *mut c_char) {
    if let Some(slot) = string.as_mut() {
        if !slot.is_null() {
            drop(std::ffi::CString::from_raw(*slot));
            *slot = std::ptr::null_mut();
        }
    }
}
