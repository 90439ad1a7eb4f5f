"""The Arrow PyCapsule interface (`__arrow_c_stream__`) in pure ctypes.

Streams move between Python objects and libfstore by value: the struct is
copied to its new home and the source's `release` is set to NULL, so exactly
one owner ever releases it (the Arrow C stream interface's move semantics).
"""

from __future__ import annotations

import ctypes
from ctypes import CFUNCTYPE, PYFUNCTYPE, c_char_p, c_int, c_size_t, c_void_p, py_object, sizeof
from typing import Any

from ._errors import InvalidState
from ._lib import ArrowArrayStream

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


def _make_capsule_destructor():
    # The destructor may run late in interpreter shutdown: it looks up no
    # globals, everything it needs is bound here.
    get_pointer = PYFUNCTYPE(c_void_p, c_void_p, c_void_p)(("PyCapsule_GetPointer", _api))
    raw_free = _raw_free
    at = ArrowArrayStream.from_address
    release_fn = _RELEASE_FN
    name = _NAME_ADDRESS

    def destructor(capsule):
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


def _new_capsule(stream: ArrowArrayStream) -> object:
    """Moves `stream` into a new "arrow_array_stream" capsule that releases it
    (if its consumer did not) and frees its memory."""
    ptr = _raw_calloc(1, _STREAM_SIZE)
    if not ptr:
        raise MemoryError("cannot allocate an ArrowArrayStream")
    ctypes.memmove(ptr, ctypes.addressof(stream), _STREAM_SIZE)
    stream.release = None
    try:
        return _capsule_new(ptr, _NAME_ADDRESS, _DESTRUCTOR_ADDRESS)
    except BaseException:
        # Hand it back so that its owner still releases it.
        ctypes.memmove(ctypes.addressof(stream), ptr, _STREAM_SIZE)
        _raw_free(ptr)
        raise


def stream_capsule_of(obj: object, what: str) -> object:
    """`obj.__arrow_c_stream__()`, checked. `what` names `obj` in messages."""
    export = getattr(type(obj), "__arrow_c_stream__", None)
    if export is None:
        raise TypeError(
            f"{what} is a {type(obj).__module__}.{type(obj).__qualname__}, which does not export "
            "__arrow_c_stream__ (return e.g. a pyarrow Table or RecordBatchReader, or a polars DataFrame)"
        )
    capsule = obj.__arrow_c_stream__()
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


# Release callbacks by address: a few functions of the library, each wrapped
# once rather than on every release.
_release_fns: dict[int, Any] = {}


def _release(stream: ArrowArrayStream) -> None:
    address = stream.release
    if address:
        release = _release_fns.get(address)
        if release is None:
            release = _release_fns.setdefault(address, _RELEASE_FN(address))
        release(ctypes.addressof(stream))
        stream.release = None


class ArrowStream:
    """Arrow data returned by libfstore: one Arrow C stream, read once.

    Implements the Arrow PyCapsule interface, so ``pyarrow.table(s)``,
    ``pyarrow.RecordBatchReader.from_stream(s)``, ``polars.DataFrame(s)`` or
    DuckDB read it without a copy. Not thread-safe (nor is the stream).
    """

    __slots__ = ("_stream",)

    def __init__(self, stream: ArrowArrayStream):
        self._stream: ArrowArrayStream | None = stream

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        # A requested schema is a hint the producer may ignore; the consumer
        # checks (and casts) what it receives.
        stream = self._stream
        if stream is None or not stream.release:
            raise InvalidState(10, "this ArrowStream was already consumed or closed; a stream is read once")
        self._stream = None
        return _new_capsule(stream)

    @property
    def closed(self) -> bool:
        """Whether the stream was consumed or closed."""
        return self._stream is None or not self._stream.release

    def to_pyarrow(self):
        """Reads the whole stream into a `pyarrow.Table` (needs pyarrow)."""
        try:
            import pyarrow
        except ImportError as e:
            raise ImportError("ArrowStream.to_pyarrow() needs pyarrow (pip install pyarrow)") from e
        return pyarrow.RecordBatchReader.from_stream(self).read_all()

    def close(self) -> None:
        """Releases the stream if it was not consumed."""
        stream, self._stream = self._stream, None
        if stream is not None:
            _release(stream)

    def __enter__(self) -> ArrowStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if self._stream is not None:
                self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<fstore.ArrowStream {'closed' if self.closed else 'unread'}>"
