"""fstore: Python binding of libfstore, a feature cache for ML training fleets.

    import datetime, fstore, pyarrow as pa

    with fstore.Store("/data/feature-cache") as store:
        key = fstore.Key("returns", "AAPL", datetime.date(2024, 1, 1), datetime.date(2024, 6, 30),
                         config={"window": 20})
        table = pa.table(store.get_or_compute(key, lambda k: compute_returns(k)))

The library is loaded with ctypes when the package is imported: the copy
bundled inside the package (``pip install ./bindings/python`` from a clone
builds it), else $FSTORE_LIBRARY (a file), else $FSTORE_LIB_DIR (a
directory), else wherever the dynamic loader finds libfstore. Its version
must be the package's. Results implement the Arrow PyCapsule interface
(``__arrow_c_stream__``) and can be read any number of times: pyarrow,
polars, pandas (``to_pandas()``), DuckDB and nanoarrow read them directly;
none of them is required by this package.
"""

from __future__ import annotations

from ctypes import byref, c_int64

from ._admin import LockStats, MaintainReport, MigrationReport, PoolStats, migrate_manifest, migrate_schema
from ._arrow import ArrowStream
from ._errors import (
    CallbackFailed,
    Cancelled,
    Corrupt,
    DatabaseError,
    Error,
    Internal,
    InvalidArgument,
    InvalidData,
    InvalidState,
    IoError,
    NotFound,
    PermissionDenied,
    Status,
    Timeout,
    Unavailable,
    check as _check,
    status_name,
)
from ._key import Key, encode_text as _encode_text
from ._lib import FstoreError as _FstoreError, LibraryNotFound, lib as _lib, library_path
from ._scan import MissingEntry, Scan
from ._store import ArrowStreamExportable, CancelToken, ComputeFn, Stats, Store
from ._version import __version__

# Load and check the library now: a missing library or one of another
# version fails the import with the reason, not some later call.
_lib()
from . import _log  # noqa: E402

_log.install()
set_log_level = _log.set_level
from .feature_store import FeatureStore  # noqa: E402

__all__ = [
    "ArrowStream",
    "ArrowStreamExportable",
    "CallbackFailed",
    "CancelToken",
    "Cancelled",
    "ComputeFn",
    "Corrupt",
    "DatabaseError",
    "Error",
    "Internal",
    "InvalidArgument",
    "InvalidData",
    "InvalidState",
    "IoError",
    "FeatureStore",
    "Key",
    "LibraryNotFound",
    "LockStats",
    "MaintainReport",
    "MigrationReport",
    "MissingEntry",
    "NotFound",
    "PermissionDenied",
    "PoolStats",
    "Scan",
    "Stats",
    "Status",
    "Store",
    "Timeout",
    "Unavailable",
    "library_path",
    "library_version",
    "__version__",
    "lock_key",
    "migrate_manifest",
    "migrate_schema",
    "set_log_level",
    "status_name",
]


def lock_key(symbol: str) -> int:
    """The advisory lock key of `symbol` (as libfstore computes it): the first
    8 bytes of SHA-256 over its UTF-8 bytes, as a signed big-endian int64."""
    out = c_int64()
    err = _FstoreError()
    _check(_lib().fstore_lock_key(_encode_text(symbol, "symbol"), byref(out), byref(err)), err)
    return int(out.value)


def library_version() -> str:
    """The version of the loaded libfstore, e.g. "0.1.0"."""
    version: bytes = _lib().fstore_version()
    return version.decode("utf-8")
