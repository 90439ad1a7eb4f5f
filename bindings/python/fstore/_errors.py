"""Exceptions: one class per fstore_status, all derived from `fstore.Error`."""

from __future__ import annotations

import ctypes
import enum
from typing import Any

from ._lib import FstoreError, lib


class Status(enum.IntEnum):
    """The C API's `fstore_status` values (stable ABI constants)."""

    OK = 0
    INVALID_ARGUMENT = 1
    NOT_FOUND = 2
    TIMEOUT = 3
    CANCELLED = 4
    CALLBACK_FAILED = 5
    INVALID_DATA = 6
    IO = 7
    DATABASE = 8
    CORRUPT = 9
    INVALID_STATE = 10
    UNAVAILABLE = 11
    INTERNAL = 12
    PERMISSION_DENIED = 13


def status_name(status: int) -> str:
    """The library's short English name of `status`, e.g. "timeout"."""
    name = lib().fstore_status_name(status)
    return name.decode("utf-8", "replace") if name else f"status {status}"


class Error(Exception):
    """A failed libfstore call: `status` (a `Status`) and the library's message."""

    sqlstate: str
    """The SQLSTATE of the PostgreSQL error behind this one (e.g. "3D000",
    "55P03"), or "" when there is none."""

    def __init__(self, status: int, message: str = "", sqlstate: str = ""):
        # Only the message goes to the base classes: OSError would otherwise
        # read (status, message) as (errno, strerror).
        super().__init__(message)
        # An int when the library returns a status newer than this package.
        self.status: Status | int
        try:
            self.status = Status(status)
        except ValueError:
            self.status = status
        self.message = message
        self.sqlstate = sqlstate

    @property
    def status_name(self) -> str:
        return status_name(self.status)

    def __str__(self) -> str:
        return self.message or self.status_name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self.status)}, {self.message!r})"

    def __reduce__(self) -> tuple[Any, tuple[int, str, str]]:
        return (_rebuild, (int(self.status), self.message, self.sqlstate))


def _rebuild(status: int, message: str, sqlstate: str = "") -> Error:
    return error_for(status, message, sqlstate)


class InvalidArgument(Error, ValueError):
    """A caller-supplied argument is malformed or out of range."""


class NotFound(Error, KeyError):
    """The entry asked for does not exist."""


class Timeout(Error, TimeoutError):
    """A bounded wait ran out."""


class Cancelled(Error):
    """The call was cancelled (`CancelToken.cancel`, or Ctrl-C in another call)."""


class CallbackFailed(Error):
    """The compute callback failed (in this call, its exception is the `__cause__`)."""


class InvalidData(Error):
    """An Arrow stream was unset, failed midway or did not match its schema."""


class IoError(Error, OSError):
    """A file-system operation failed."""


class DatabaseError(Error):
    """The manifest database failed."""


class Corrupt(Error):
    """A stored entry failed its integrity check."""


class InvalidState(Error):
    """The object cannot be used now (closed, consumed, or used after fork())."""


class Unavailable(Error):
    """A required server could not be reached."""


class Internal(Error):
    """A bug in libfstore."""


class PermissionDenied(Error, PermissionError):
    """The cache directory is unsafe: another user could write it (the message says how to fix it)."""


_CLASSES = {
    Status.INVALID_ARGUMENT: InvalidArgument,
    Status.NOT_FOUND: NotFound,
    Status.TIMEOUT: Timeout,
    Status.CANCELLED: Cancelled,
    Status.CALLBACK_FAILED: CallbackFailed,
    Status.INVALID_DATA: InvalidData,
    Status.IO: IoError,
    Status.DATABASE: DatabaseError,
    Status.CORRUPT: Corrupt,
    Status.INVALID_STATE: InvalidState,
    Status.UNAVAILABLE: Unavailable,
    Status.INTERNAL: Internal,
    Status.PERMISSION_DENIED: PermissionDenied,
}


def error_for(status: int, message: str, sqlstate: str = "") -> Error:
    cls: type[Error] = _CLASSES.get(status, Error)  # type: ignore[call-overload]
    return cls(status, message, sqlstate)


def take_error(status: int, err: FstoreError) -> Error:
    """The exception for a failed call, releasing `err`'s content."""
    try:
        message = ctypes.string_at(err.message).decode("utf-8", "replace") if err.message else ""
        sqlstate = bytes(err.sqlstate).split(b"\0", 1)[0].decode("ascii", "replace")
    finally:
        lib().fstore_error_release(ctypes.byref(err))
    return error_for(status, message, sqlstate)


def check(status: int, err: FstoreError) -> None:
    if status != Status.OK:
        raise take_error(status, err)
