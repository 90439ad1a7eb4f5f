"""Operating a store: warnings, PostgreSQL pool and lock figures, the
summary, maintenance and the migrations. Each converts one C call's
arguments and result; the library does the work."""

from __future__ import annotations

import ctypes
import datetime
import os
from ctypes import Structure, byref
from dataclasses import dataclass, fields
from typing import Any, Mapping, Optional, TypeVar

from ._arrow import ArrowStream
from ._duration import to_ms
from ._errors import check
from ._lib import (
    STATUS_NOT_FOUND,
    ArrowArrayStream,
    FstoreError,
    FstoreLockStats,
    FstoreMaintainOptions,
    FstoreMaintainReport,
    FstoreMigrationReport,
    FstorePoolStats,
    lib,
)
from ._options import c_options

__all__ = [
    "LockStats",
    "MaintainReport",
    "MigrationReport",
    "PoolStats",
    "migrate_manifest",
    "migrate_schema",
]


@dataclass(frozen=True)
class PoolStats:
    """The PostgreSQL connection pool's figures (`fstore_pool_stats`)."""

    size: int
    """Connections open, idle or in use."""
    idle: int
    in_use: int
    waits: int
    """Check-outs that had to wait for a connection."""


@dataclass(frozen=True)
class LockStats:
    """Advisory locks in the manifest's database, from `pg_locks` (`fstore_lock_stats`)."""

    held: int
    waiting: int


@dataclass(frozen=True)
class MaintainReport:
    """What `Store.maintain` did, or would have done in a dry run (`fstore_maintain_report`)."""

    expired_entries: int
    """Entries older than `max_age`: file and row."""
    rows_without_file: int
    """Manifest rows whose file is gone."""
    corrupt_files: int
    """Entry files that failed verification, removed."""
    temp_files: int
    """Temporary files left by writers that died."""
    bytes_freed: int
    reindexed_files: int
    """Verified entry files whose manifest row was missing, indexed again."""
    invalid_rows: int
    """Manifest rows with a malformed entry id, removed."""
    lock_files: int
    """Lock files nobody held, removed (embedded mode)."""


@dataclass(frozen=True)
class MigrationReport:
    """What `migrate_manifest` did (`fstore_migration_report`)."""

    rows_read: int
    inserted: int
    already_present: int


_Report = TypeVar("_Report")


def _convert(raw: Structure, report: type[_Report]) -> _Report:
    """The dataclass `report` of the C struct `raw`, field by field (their
    names are the same)."""
    names = [field.name for field in fields(report)]  # type: ignore[arg-type]
    return report(**{name: int(getattr(raw, name)) for name in names})


def warnings(handle: Optional[int]) -> list[str]:
    text = lib().fstore_store_warnings(handle)
    return text.decode("utf-8", "replace").splitlines() if text else []


def pool_stats(handle: Optional[int]) -> Optional[PoolStats]:
    return _postgres_figures(lib().fstore_store_pool_stats, handle, FstorePoolStats(), PoolStats)


def lock_stats(handle: Optional[int]) -> Optional[LockStats]:
    return _postgres_figures(lib().fstore_store_lock_stats, handle, FstoreLockStats(), LockStats)


def _postgres_figures(call: Any, handle: Optional[int], raw: Structure, report: type[_Report]) -> Optional[_Report]:
    """Figures only a PostgreSQL store has: None for NOT_FOUND (embedded)."""
    err = FstoreError()
    status = call(handle, byref(raw), ctypes.sizeof(raw), byref(err))
    if status == STATUS_NOT_FOUND:
        lib().fstore_error_release(byref(err))
        return None
    check(status, err)
    return _convert(raw, report)


def summary(handle: Optional[int]) -> ArrowStream:
    out = ArrowArrayStream()
    err = FstoreError()
    check(lib().fstore_store_summary(handle, byref(out), byref(err)), err)
    return ArrowStream(out)


def maintain(
    handle: Optional[int],
    max_age: Optional[float | datetime.timedelta],
    grace: float | datetime.timedelta,
    dry_run: bool,
) -> MaintainReport:
    options = FstoreMaintainOptions(
        max_age_ms=-1 if max_age is None else to_ms(max_age, "max_age", " (None keeps every entry)"),
        grace_ms=to_ms(grace, "grace"),
        dry_run=bool(dry_run),
    )
    raw = FstoreMaintainReport()
    err = FstoreError()
    status = lib().fstore_store_maintain(
        handle, byref(options), ctypes.sizeof(options), byref(raw), ctypes.sizeof(raw), byref(err)
    )
    check(status, err)
    return _convert(raw, MaintainReport)


def migrate_schema(
    options: Optional[Mapping[str, Any]] = None, *, cache_dir: Optional[str | os.PathLike[str]] = None
) -> None:
    """Creates or upgrades libfstore's PostgreSQL schema (``postgres.schema``
    in the database of ``postgres.dsn``, or of $PG_MANIFEST_DSN, $PG_HOST...),
    for deployments whose workers run with ``postgres.auto_migrate=False``.
    `options` are `Store`'s."""
    err = FstoreError()
    with c_options(cache_dir, options) as opts:
        check(lib().fstore_migrate_schema(opts, byref(err)), err)


def migrate_manifest(
    options: Optional[Mapping[str, Any]] = None, *, cache_dir: Optional[str | os.PathLike[str]] = None
) -> MigrationReport:
    """Copies the embedded DuckDB manifest of the cache directory into
    PostgreSQL (backing the DuckDB file up first). Idempotent, and safe while
    workers run. `options` are `Store`'s."""
    raw = FstoreMigrationReport()
    err = FstoreError()
    with c_options(cache_dir, options) as opts:
        check(lib().fstore_migrate_manifest(opts, byref(raw), ctypes.sizeof(raw), byref(err)), err)
    return _convert(raw, MigrationReport)
