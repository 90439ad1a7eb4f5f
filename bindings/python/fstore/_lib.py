"""Loading libfstore and declaring its C API (include/fstore.h) for ctypes.

Every function the binding calls is declared here with its argtypes and
restype; nothing else in the package touches the shared library directly
without going through `lib()`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_int32,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any, Optional

from ._version import __version__

__all__ = ["lib", "LibraryNotFound", "FstoreError", "FstoreKey", "FstoreStats", "ArrowArrayStream", "COMPUTE_FN"]


class LibraryNotFound(ImportError):
    """libfstore could not be located or loaded."""


# Length of an entry id written by fstore_key_canonical, with its NUL.
ENTRY_ID_SIZE = 65

# fstore_status values the binding itself needs (the header's constants).
STATUS_OK = 0
STATUS_NOT_FOUND = 2
STATUS_CANCELLED = 4
STATUS_CALLBACK_FAILED = 5


class ArrowArrayStream(Structure):
    """`struct ArrowArrayStream`. The callbacks are kept as plain pointers:
    the binding only moves streams, it never reads them."""

    _fields_ = [
        ("get_schema", c_void_p),
        ("get_next", c_void_p),
        ("get_last_error", c_void_p),
        ("release", c_void_p),
        ("private_data", c_void_p),
    ]


class FstoreError(Structure):
    """`fstore_error`: caller-owned, zero-initialised, released by the library."""

    _fields_ = [
        ("message", c_void_p),  # char*, owned by the library
        ("status", c_uint32),
        ("sqlstate", c_char * 6),
        ("release", c_void_p),
        ("reserved", c_void_p * 4),
    ]


class FstoreKey(Structure):
    """`fstore_key`. The `c_char_p` fields keep their bytes objects alive."""

    _fields_ = [
        ("feature_set", c_char_p),
        ("symbol", c_char_p),
        ("start_date", c_int32),
        ("end_date", c_int32),
        ("config", c_char_p),
        ("reserved", c_void_p * 4),  # zero, as ctypes initialises it
    ]


class FstoreScanRequest(Structure):
    """`fstore_scan_request`. The caller keeps the arrays and strings alive."""

    _fields_ = [
        ("feature_set", c_char_p),
        ("symbols", POINTER(c_char_p)),
        ("symbol_count", c_size_t),
        ("start_date", c_int32),
        ("end_date", c_int32),
        ("config", c_char_p),
        ("columns", POINTER(c_char_p)),
        ("column_count", c_size_t),
    ]


class FstoreStats(Structure):
    """`fstore_stats`."""

    _fields_ = [
        ("hits", c_uint64),
        ("misses", c_uint64),
        ("computes", c_uint64),
        ("compute_failures", c_uint64),
        ("waits", c_uint64),
        ("timeouts", c_uint64),
        ("cancellations", c_uint64),
        ("bytes_written", c_uint64),
        ("bytes_read", c_uint64),
    ]


class FstorePoolStats(Structure):
    """`fstore_pool_stats`."""

    _fields_ = [("size", c_uint32), ("idle", c_uint32), ("in_use", c_uint32), ("waits", c_uint64)]


class FstoreLockStats(Structure):
    """`fstore_lock_stats`."""

    _fields_ = [("held", c_uint64), ("waiting", c_uint64)]


class FstoreMaintainOptions(Structure):
    """`fstore_maintain_options`."""

    _fields_ = [("max_age_ms", c_int64), ("grace_ms", c_int64), ("dry_run", c_bool)]


class FstoreMaintainReport(Structure):
    """`fstore_maintain_report`."""

    _fields_ = [
        ("expired_entries", c_uint64),
        ("rows_without_file", c_uint64),
        ("corrupt_files", c_uint64),
        ("temp_files", c_uint64),
        ("bytes_freed", c_uint64),
        ("reindexed_files", c_uint64),
        ("invalid_rows", c_uint64),
        ("lock_files", c_uint64),
    ]


class FstoreMigrationReport(Structure):
    """`fstore_migration_report`."""

    _fields_ = [("rows_read", c_uint64), ("inserted", c_uint64), ("already_present", c_uint64)]


# fstore_compute_fn(userdata, key, out, error) -> fstore_status
COMPUTE_FN = CFUNCTYPE(c_uint32, c_void_p, POINTER(FstoreKey), c_void_p, c_void_p)
# fstore_log_fn: (userdata, level, message)
LOG_FN = CFUNCTYPE(None, c_void_p, c_uint32, c_char_p)

_ERR = POINTER(FstoreError)
_STREAM = POINTER(ArrowArrayStream)
_KEY = POINTER(FstoreKey)

# name: (restype, argtypes)
_SIGNATURES = {
    "fstore_version": (c_char_p, []),
    "fstore_version_number": (c_uint32, []),
    "fstore_key_canonical": (c_uint32, [_KEY, POINTER(c_void_p), c_char_p, _ERR]),
    "fstore_string_free": (None, [POINTER(c_void_p)]),
    "fstore_status_name": (c_char_p, [c_uint32]),
    "fstore_error_release": (None, [_ERR]),
    "fstore_error_set": (None, [c_void_p, c_uint32, c_char_p]),
    "fstore_lock_key": (c_uint32, [c_char_p, POINTER(c_int64), _ERR]),
    "fstore_options_new": (c_void_p, []),
    "fstore_options_set": (c_uint32, [c_void_p, c_char_p, c_char_p, _ERR]),
    "fstore_options_free": (None, [POINTER(c_void_p)]),
    "fstore_request_new": (c_void_p, []),
    "fstore_request_set_columns": (c_uint32, [c_void_p, POINTER(c_char_p), c_size_t, _ERR]),
    "fstore_request_set_timeout_ms": (c_uint32, [c_void_p, c_int64, _ERR]),
    "fstore_request_cancel": (None, [c_void_p]),
    "fstore_request_free": (None, [POINTER(c_void_p)]),
    "fstore_store_open": (c_uint32, [c_void_p, POINTER(c_void_p), _ERR]),
    "fstore_store_close": (None, [POINTER(c_void_p)]),
    "fstore_store_get": (c_uint32, [c_void_p, _KEY, c_void_p, _STREAM, _ERR]),
    "fstore_store_try_get": (c_uint32, [c_void_p, _KEY, c_void_p, _STREAM, _ERR]),
    "fstore_store_get_or_compute": (c_uint32, [c_void_p, _KEY, c_void_p, COMPUTE_FN, c_void_p, _STREAM, _ERR]),
    "fstore_store_put": (c_uint32, [c_void_p, _KEY, _STREAM, _ERR]),
    "fstore_store_invalidate": (c_uint32, [c_void_p, _KEY, _ERR]),
    "fstore_store_contains": (c_uint32, [c_void_p, _KEY, POINTER(c_bool), _ERR]),
    "fstore_store_stats": (c_uint32, [c_void_p, POINTER(FstoreStats), c_size_t, _ERR]),
    "fstore_store_list": (c_uint32, [c_void_p, _STREAM, _ERR]),
    "fstore_store_scan": (c_uint32, [c_void_p, POINTER(FstoreScanRequest), _STREAM, _STREAM, _ERR]),
    "fstore_store_flush": (c_uint32, [c_void_p, _ERR]),
    "fstore_store_manifest_backend": (c_char_p, [c_void_p]),
    "fstore_store_metrics": (c_uint32, [c_void_p, POINTER(c_void_p), _ERR]),
    "fstore_store_warnings": (c_char_p, [c_void_p]),
    "fstore_store_pool_stats": (c_uint32, [c_void_p, POINTER(FstorePoolStats), c_size_t, _ERR]),
    "fstore_store_lock_stats": (c_uint32, [c_void_p, POINTER(FstoreLockStats), c_size_t, _ERR]),
    "fstore_store_summary": (c_uint32, [c_void_p, _STREAM, _ERR]),
    "fstore_store_maintain": (
        c_uint32,
        [c_void_p, POINTER(FstoreMaintainOptions), c_size_t, POINTER(FstoreMaintainReport), c_size_t, _ERR],
    ),
    "fstore_migrate_schema": (c_uint32, [c_void_p, _ERR]),
    "fstore_migrate_manifest": (c_uint32, [c_void_p, POINTER(FstoreMigrationReport), c_size_t, _ERR]),
    "fstore_log_set_level": (c_uint32, [c_uint32, _ERR]),
    "fstore_log_set_callback": (None, [LOG_FN, c_void_p]),
    "fstore_result_new": (c_uint32, [_STREAM, POINTER(c_void_p), _ERR]),
    "fstore_result_export": (c_uint32, [c_void_p, c_void_p, _ERR]),
    "fstore_result_row_count": (c_uint64, [c_void_p]),
    "fstore_result_batch_count": (c_uint64, [c_void_p]),
    "fstore_result_free": (None, [POINTER(c_void_p)]),
}

_HOW_TO = (
    "install the package from a clone (pip install ./bindings/python), which bundles the library; "
    "or set FSTORE_LIBRARY to the full path of libfstore.so (e.g. /opt/fstore/lib/libfstore.so), "
    "or FSTORE_LIB_DIR to the directory that holds it, or install it where the dynamic loader finds it"
)

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# What setup.py names the library it bundles, with the platform's suffix.
_BUNDLED_PREFIX = "_libfstore."
_LIBRARY_SUFFIXES = (".so", ".dylib", ".dll", ".pyd")


def _library_file_names() -> list[str]:
    if sys.platform == "darwin":
        return ["libfstore.dylib"]
    if os.name == "nt":
        return ["fstore.dll", "libfstore.dll"]
    return ["libfstore.so"]


def _bundled() -> Optional[str]:
    """The library installed inside the package, if any."""
    try:
        names = sorted(os.listdir(_PACKAGE_DIR))
    except OSError:
        return None
    for name in names:
        if name.startswith(_BUNDLED_PREFIX) and name.endswith(_LIBRARY_SUFFIXES):
            return os.path.join(_PACKAGE_DIR, name)
    return None


def _locate() -> str:
    """Next to the package first, then $FSTORE_LIBRARY (a file), then
    $FSTORE_LIB_DIR (a directory), then wherever the dynamic loader looks."""
    bundled = _bundled()
    if bundled:
        return bundled
    path = os.environ.get("FSTORE_LIBRARY")
    if path:
        if not os.path.isfile(path):
            raise LibraryNotFound(f"FSTORE_LIBRARY={path!r} is not a file; {_HOW_TO}")
        return path
    directory = os.environ.get("FSTORE_LIB_DIR")
    if directory:
        for name in _library_file_names():
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate):
                return candidate
        raise LibraryNotFound(
            f"FSTORE_LIB_DIR={directory!r} holds none of {', '.join(_library_file_names())}; {_HOW_TO}"
        )
    found = ctypes.util.find_library("fstore")
    if found:
        return found
    raise LibraryNotFound(f"libfstore not found: {_HOW_TO}")


def _check_version(loaded: ctypes.CDLL, path: str) -> None:
    """Refuses a library of another version than the package's: their C
    declarations (struct layouts, signatures) would not match."""
    try:
        version_fn = loaded.fstore_version
    except AttributeError as e:
        raise LibraryNotFound(f"{path} does not export fstore_version: is it libfstore?") from e
    version_fn.restype = c_char_p
    version_fn.argtypes = []
    raw = version_fn()
    found = raw.decode("utf-8", "replace") if raw else "(none)"
    if found != __version__:
        raise LibraryNotFound(
            f"{path} is libfstore {found}, but this fstore package is {__version__}: the two must be the same "
            "version. Reinstall the package from the clone the library was built from "
            "(pip install ./bindings/python), or point FSTORE_LIBRARY at a libfstore.so of version "
            f"{__version__}"
        )


_loaded: Optional[ctypes.CDLL] = None
_load_lock = threading.Lock()


def lib() -> ctypes.CDLL:
    """The loaded library, its version checked and every signature declared
    (loaded once, when the package is imported)."""
    global _loaded
    if _loaded is not None:
        return _loaded
    with _load_lock:
        if _loaded is None:
            path = _locate()
            try:
                # CDLL (not PyDLL): every call releases the GIL.
                loaded = ctypes.CDLL(path)
            except OSError as e:
                raise LibraryNotFound(f"cannot load {path}: {e}; {_HOW_TO}") from e
            _check_version(loaded, path)
            for name, (restype, argtypes) in _SIGNATURES.items():
                try:
                    fn = getattr(loaded, name)
                except AttributeError as e:
                    raise LibraryNotFound(f"{path} does not export {name}: is it an older libfstore?") from e
                fn.restype = restype
                fn.argtypes = argtypes
            _loaded = loaded
    return _loaded


def library_path() -> str:
    """Where libfstore is loaded from, as the loader reports it."""
    name: str = lib()._name
    return name
