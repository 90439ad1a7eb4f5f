"""The Arrow PyCapsule interface (`__arrow_c_stream__`) in pure ctypes.

Results are held by the library (`fstore_result`), which exports a fresh
stream for every consumer. Streams a caller hands in move by value: the
struct is copied to its new home and the source's `release` is set to NULL,
so exactly one owner ever releases it (the C stream interface's move
semantics).
"""

from __future__ import annotations

import ctypes
from ctypes import CFUNCTYPE, PYFUNCTYPE, c_char_p, c_int, c_size_t, c_void_p, py_object, sizeof
import importlib
import threading
from typing import TYPE_CHECKING, Any, Optional

from ._errors import Error, InvalidState, Status, check, take_error
from ._lib import ArrowArrayStream, FstoreError, lib

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow

__all__ = ["ArrowStream", "move_stream_into", "stream_capsule_of"]

_CAPSULE_NAME = b"arrow_array_stream"
_STREAM_SIZE = sizeof(ArrowArrayStream)
_RELEASE_OFFSET = ArrowArrayStream.release.offset

_api = ctypes.pythonapi
# Separate prototypes per use, so that no shared attribute's argtypes change.
_capsule_new = PYFUNCTYPE(py_object, c_void_p, c_void_p, c_void_p)(("PyCapsule_New", _api))
_capsule_is_valid = PYFUNCTYPE(c_int, py_object, c_char_p)(("PyCapsule_IsValid", _api))
_capsule_pointer = PYFUNCTYPE(c_void_p, py_object, c_char_p)(("PyCapsule_GetPointer", _api))
_raw_calloc = PYFUNCTYPE(c_void_p, c_size_t, c_size_t)(("PyMem_RawCalloc", _api))
_raw_free = PYFUNCTYPE(None, c_void_p)(("PyMem_RawFree", _api))
_incref = PYFUNCTYPE(None, py_object)(("Py_IncRef", _api))

# A capsule keeps a pointer to its name, not a copy: give it one that is
# never freed.
_name_buffer = ctypes.create_string_buffer(_CAPSULE_NAME)
_incref(_name_buffer)
_NAME_ADDRESS = ctypes.addressof(_name_buffer)

_RELEASE_FN = CFUNCTYPE(None, c_void_p)


def _make_capsule_destructor() -> Any:
    # The destructor may run late in interpreter shutdown: it looks up no
    # globals, everything it needs is bound here.
    get_pointer = PYFUNCTYPE(c_void_p, c_void_p, c_void_p)(("PyCapsule_GetPointer", _api))
    raw_free = _raw_free
    at = ArrowArrayStream.from_address
    release_fn = _RELEASE_FN
    name = _NAME_ADDRESS

    def destructor(capsule: int) -> None:
        ptr = get_pointer(capsule, name)
        if ptr:
            stream = at(ptr)
            if stream.release:
                release_fn(stream.release)(ptr)
            raw_free(ptr)

    return CFUNCTYPE(None, c_void_p)(destructor)


# Referenced by the module and by one leaked reference: capsules made here may
# outlive the module's globals.
_capsule_destructor = _make_capsule_destructor()
_incref(_capsule_destructor)
_DESTRUCTOR_ADDRESS = ctypes.cast(_capsule_destructor, c_void_p).value


def stream_capsule_of(obj: object, what: str) -> object:
    """`obj.__arrow_c_stream__()`, checked. `what` names `obj` in messages."""
    export = getattr(type(obj), "__arrow_c_stream__", None)
    if export is None:
        raise TypeError(
            f"{what} is a {type(obj).__module__}.{type(obj).__qualname__}, which does not export "
            "__arrow_c_stream__ (return e.g. a pyarrow Table or RecordBatchReader, or a polars DataFrame)"
        )
    capsule: object = export(obj)
    if not _capsule_is_valid(capsule, _CAPSULE_NAME):
        raise TypeError(f"{what}.__arrow_c_stream__() did not return an 'arrow_array_stream' PyCapsule")
    return capsule


def move_stream_into(capsule: object, dest: int) -> None:
    """Moves the stream out of `capsule` into the struct at address `dest`,
    leaving the capsule's stream released (so its destructor only frees)."""
    src = _capsule_pointer(capsule, _CAPSULE_NAME)
    released = ArrowArrayStream.from_address(src)
    if not released.release:
        raise ValueError("the exported ArrowArrayStream was already consumed (its release is NULL)")
    ctypes.memmove(dest, src, _STREAM_SIZE)
    released.release = None


class ArrowStream:
    """Arrow data returned by libfstore, held by the library (an
    `fstore_result`): read it any number of times, by any consumer.

    Implements the Arrow PyCapsule interface: each ``__arrow_c_stream__``
    call exports a fresh stream over the same buffers, so
    ``pyarrow.table(r)``, ``pyarrow.RecordBatchReader.from_stream(r)``,
    ``polars.DataFrame(r)``, ``duckdb.sql("select ... from r")``,
    ``duckdb.from_arrow(r)`` and ``nanoarrow.c_array_stream(r)`` read it
    without a copy, as often as they like, from any thread. Streams already
    exported stay valid after `close()`.
    """

    __slots__ = ("_stream", "_handle", "_closed", "_lock")

    # The library's stream is turned into a result (fstore_result_new) when
    # the data is first asked for, not when it is returned: a hit costs one C
    # call less for callers that only check it.

    def __init__(self, stream: ArrowArrayStream) -> None:
        """Takes `stream`, a stream the library exported (left released)."""
        self._lock = threading.Lock()
        self._stream: Optional[ArrowArrayStream] = stream
        self._handle: Optional[int] = None
        self._closed = False

    def _result(self) -> int:
        """The `fstore_result`, made on first use. Call with `_lock` held."""
        if self._closed:
            raise InvalidState(Status.INVALID_STATE, "this fstore.ArrowStream is closed")
        handle = self._handle
        if handle is None:
            stream, self._stream = self._stream, None
            if stream is None:
                raise InvalidState(Status.INVALID_STATE, "this fstore.ArrowStream's data could not be read")
            out = c_void_p()
            err = FstoreError()
            check(lib().fstore_result_new(ctypes.byref(stream), ctypes.byref(out), ctypes.byref(err)), err)
            handle = self._handle = out.value
        assert handle is not None
        return handle

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """A new "arrow_array_stream" PyCapsule over the data. A requested
        schema is a hint the producer may ignore; the consumer checks (and
        casts) what it receives."""
        ptr = _raw_calloc(1, _STREAM_SIZE)
        if not ptr:
            raise MemoryError("cannot allocate an ArrowArrayStream")
        err = FstoreError()
        try:
            with self._lock:
                status = lib().fstore_result_export(self._result(), ptr, ctypes.byref(err))
        except BaseException:
            _raw_free(ptr)
            raise
        if status != Status.OK:
            _raw_free(ptr)
            raise take_error(status, err)
        try:
            return _capsule_new(ptr, _NAME_ADDRESS, _DESTRUCTOR_ADDRESS)
        except BaseException:
            _release_at(ptr)
            _raw_free(ptr)
            raise

    @property
    def num_rows(self) -> int:
        """The number of rows."""
        with self._lock:
            return int(lib().fstore_result_row_count(self._result()))

    @property
    def num_batches(self) -> int:
        """The number of record batches."""
        with self._lock:
            return int(lib().fstore_result_batch_count(self._result()))

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    def to_pyarrow(self) -> "pyarrow.Table":
        """The data as a `pyarrow.Table` (needs pyarrow)."""
        pa = _import_reader("pyarrow", "to_pyarrow")
        table: pyarrow.Table = pa.RecordBatchReader.from_stream(self).read_all()
        return table

    def to_polars(self) -> "polars.DataFrame":
        """The data as a `polars.DataFrame` (needs polars)."""
        pl = _import_reader("polars", "to_polars")
        frame: polars.DataFrame = pl.DataFrame(self)
        return frame

    def to_pandas(self) -> "pandas.DataFrame":
        """The data as a `pandas.DataFrame` (needs pandas and pyarrow)."""
        _import_reader("pandas", "to_pandas")
        _import_reader("pyarrow", "to_pandas")
        frame: pandas.DataFrame = self.to_pyarrow().to_pandas()
        return frame

    def close(self) -> None:
        """Frees the data now rather than when the object is collected.
        Streams exported already stay valid; exporting again raises."""
        with self._lock:
            self._closed = True
            stream, self._stream = self._stream, None
            handle, self._handle = self._handle, None
        if stream is not None:
            _release_at(ctypes.addressof(stream))
        if handle:
            lib().fstore_result_free(ctypes.byref(c_void_p(handle)))

    def __enter__(self) -> ArrowStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_handle", None) or getattr(self, "_stream", None) is not None:
                self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        if self.closed:
            return "<fstore.ArrowStream closed>"
        try:
            return f"<fstore.ArrowStream {self.num_rows} rows in {self.num_batches} batches>"
        except Error:
            return "<fstore.ArrowStream unreadable>"


def _import_reader(module: str, method: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"ArrowStream.{method}() needs {module} (pip install {module})") from e


def _release_at(ptr: int) -> None:
    stream = ArrowArrayStream.from_address(ptr)
    if stream.release:
        _RELEASE_FN(stream.release)(ptr)
        stream.release = None
