"""`fstore.Store`: an open cache directory, and the calls on it."""

from __future__ import annotations

import ctypes
import datetime
import itertools
import os
import queue
import sys
import threading
from ctypes import byref, c_bool, c_char_p, c_void_p
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional, Protocol

from . import _admin
from ._admin import LockStats, MaintainReport, PoolStats
from ._arrow import ArrowStream, move_stream_into, stream_capsule_of
from ._duration import to_ms
from ._errors import Error, InvalidArgument, InvalidState, Status, check, take_error
from . import _scan
from ._key import Key, encode_text
from ._options import c_options
from ._scan import Scan
from ._lib import (
    COMPUTE_FN,
    STATUS_CALLBACK_FAILED,
    STATUS_CANCELLED,
    STATUS_NOT_FOUND,
    STATUS_OK,
    ArrowArrayStream,
    FstoreError,
    FstoreKey,
    FstoreStats,
    lib,
)

__all__ = ["Store", "Stats", "CancelToken", "ComputeFn", "ArrowStreamExportable"]


class ArrowStreamExportable(Protocol):
    """Anything exporting the Arrow PyCapsule stream interface: a pyarrow
    Table or RecordBatchReader, a polars DataFrame, an `fstore.ArrowStream`..."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...


class ComputeFn(Protocol):
    """What `Store.get_or_compute` calls on a miss: ``compute(key)`` returns
    the features of `key` as Arrow data."""

    def __call__(self, key: Key, /) -> ArrowStreamExportable: ...

# How often a waiting caller wakes up to let signal handlers (Ctrl-C) run.
_WAIT_SLICE = 0.05
# How long an interrupted caller waits for libfstore to notice the cancel.
_CANCEL_GRACE = 2.0
# How often a worker waiting for its caller's compute checks that the caller
# is still there.
_CALLER_CHECK = 0.1


@dataclass(frozen=True)
class Stats:
    """The store's counters since it was opened (`fstore_stats`)."""

    hits: int
    """Calls answered from an existing entry without waiting."""
    misses: int
    """Calls that found no entry at first look."""
    computes: int
    """Compute callbacks run."""
    compute_failures: int
    """Compute callbacks that failed or produced invalid data."""
    waits: int
    """Calls that waited for another caller's compute."""
    timeouts: int
    """Calls that gave up waiting."""
    cancellations: int
    bytes_written: int
    bytes_read: int


class CancelToken:
    """Cancels, from any thread, the waits of the calls it is passed to.

    ``store.get_or_compute(key, compute, cancel=token)`` raises
    `fstore.Cancelled` once ``token.cancel()`` is called while it waits for
    another caller's compute; a compute already running is not interrupted.
    Once cancelled a token stays cancelled, and so does every later call
    given it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._calls: set[_ComputeCall] = set()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            calls = list(self._calls)
        for call in calls:
            call.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def _attach(self, call: _ComputeCall) -> None:
        with self._lock:
            self._calls.add(call)
            cancelled = self._cancelled
        if cancelled:
            call.cancel()

    def _detach(self, call: _ComputeCall) -> None:
        with self._lock:
            self._calls.discard(call)


def _free_request(request: Optional[int]) -> None:
    if request:
        lib().fstore_request_free(byref(c_void_p(request)))


def _new_request(columns: Optional[Iterable[str]], timeout: Any) -> int:
    """A new `fstore_request` with `columns` and `timeout` set (the caller frees it)."""
    L = lib()
    request = L.fstore_request_new()
    if not request:
        raise MemoryError("fstore_request_new failed")
    try:
        err = FstoreError()
        if columns is not None:
            if isinstance(columns, (str, bytes)):
                raise TypeError("columns must be a sequence of column names, not a single string")
            names = [encode_text(c, f"columns[{i}]") for i, c in enumerate(columns)]
            array = (c_char_p * len(names))(*names)
            check(L.fstore_request_set_columns(request, array, len(names), byref(err)), err)
        if timeout is not None:
            check(L.fstore_request_set_timeout_ms(request, _timeout_ms(timeout), byref(err)), err)
        return int(request)
    except BaseException:
        _free_request(request)
        raise


def _timeout_ms(timeout: Any) -> int:
    return to_ms(timeout, "timeout", " (None uses the store's wait.timeout_ms)")


def _c_key(key: Key) -> FstoreKey:
    if not isinstance(key, Key):
        raise TypeError(f"key must be an fstore.Key, not {type(key).__name__}")
    return key._c or key.to_c()


# --- get_or_compute -------------------------------------------------------
#
# The C call blocks (waiting for another caller's compute, or for the
# cross-process lock), so it runs on a worker thread while the calling thread
# waits in short slices: Ctrl-C (or a CancelToken) then cancels the call's
# fstore_request and the C call returns promptly. The compute callback is
# handed back to the calling thread, so user code runs where it was called
# from (and is itself interruptible by Ctrl-C).

_calls: dict[int, _ComputeCall] = {}
_call_ids = itertools.count(1)


class _Workers:
    """Parked daemon threads for the blocking C calls. A call takes an idle
    one or starts a new one, so calls never queue behind each other; a few
    stay parked to spare the next calls a thread start."""

    KEEP = 8
    IDLE_SECONDS = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []
        self._names = itertools.count(1)

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue[Callable[[], None]]()
            thread = threading.Thread(
                target=self._serve, args=(inbox,), name=f"fstore-worker-{next(self._names)}", daemon=True
            )
            thread.start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            try:
                job = inbox.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if inbox not in self._idle:
                        continue  # taken meanwhile: its job is on the way
                    self._idle.remove(inbox)
                return
            job()
            del job
            with self._lock:
                if len(self._idle) >= self.KEEP:
                    return
                self._idle.append(inbox)

    def _after_fork_in_child(self) -> None:
        # The parked threads do not exist in a forked child.
        self._lock = threading.Lock()
        self._idle = []


_workers = _Workers()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_workers._after_fork_in_child)


def _report(error: int, status: int, message: str) -> int:
    text = message.replace("\0", "").encode("utf-8", "replace")
    lib().fstore_error_set(error, status, text)
    return status


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _trampoline(userdata: int, key: int, out: int, error: int) -> int:
    # Never let an exception escape into C (ctypes would print it and return 0, "OK").
    try:
        call = _calls.get(userdata)
        if call is None:
            return _report(error, STATUS_CALLBACK_FAILED, "the Python call that supplied this compute is gone")
        return call.compute_into(out, error)
    except BaseException as exc:
        try:
            return _report(error, STATUS_CALLBACK_FAILED, f"internal error in the fstore Python binding: {_describe(exc)}")
        except BaseException:
            return STATUS_CALLBACK_FAILED


# Module-level, so it lives as long as any C call can use it.
_compute_fn = COMPUTE_FN(_trampoline)


class _ComputeCall:
    """One get_or_compute: the worker thread that runs the C call and the
    calling thread that runs the compute meet here.

    The worker never relies on the caller to say that it left: a second
    Ctrl-C can interrupt any line of the caller's own cleanup. So while it
    waits for the caller's compute, the worker checks that the caller's
    get_or_compute is still on that thread's stack, and gives up on it
    otherwise. Only the main thread is ever interrupted by a signal; the
    worker's own code always runs to its end."""

    def __init__(self, compute: ComputeFn, key: Key, request: Optional[int], store: Store, token: Optional[CancelToken]):
        self.id = next(_call_ids)
        self.cond = threading.Condition(threading.Lock())
        self.compute = compute
        self.key = key
        self.store = store
        self.token = token
        self.request: Optional[int] = request  # owned here; freed when the C call is over
        self.caller_thread = threading.get_ident()
        self.caller_frame: Any = None  # the caller's get_or_compute frame, while the C call runs
        self.pending = False  # the worker asks the caller to compute
        self.answer: Optional[tuple[object, Optional[BaseException]]] = None  # (capsule, exception)
        self.abandoned = False  # the caller stopped waiting
        self.done = False
        self.result: Optional[ArrowStream] = None
        self.error: Optional[BaseException] = None
        self.compute_error: Optional[BaseException] = None

    # Any thread.
    def cancel(self) -> None:
        with self.cond:
            if not self.done and self.request:
                lib().fstore_request_cancel(self.request)

    def caller_present(self) -> bool:
        """Whether the caller's thread is still inside this get_or_compute."""
        frame = sys._current_frames().get(self.caller_thread)
        target = self.caller_frame
        while frame is not None and target is not None:
            if frame is target:
                return True
            frame = frame.f_back
        return False

    # The calling thread, when no worker could take the call.
    def discard(self) -> None:
        with self.cond:
            self.done = True
            request, self.request = self.request, None
            self.caller_frame = None
        _free_request(request)
        _calls.pop(self.id, None)

    # The worker thread.
    def run(self, store_handle: Optional[int], c_key: FstoreKey) -> None:
        out = ArrowArrayStream()
        err = FstoreError()
        try:
            status = lib().fstore_store_get_or_compute(
                store_handle, byref(c_key), self.request, _compute_fn, self.id, byref(out), byref(err)
            )
            if status == STATUS_OK:
                self.result = ArrowStream(out)
            else:
                self.error = take_error(status, err)
        except BaseException as exc:  # a bug here; report it to the caller
            self.error = exc
        finally:
            with self.cond:
                self.done = True
                request, self.request = self.request, None
                self.caller_frame = None
                self.cond.notify_all()
            _free_request(request)
            _calls.pop(self.id, None)

    # The worker thread, inside the C call.
    def compute_into(self, out: int, error: int) -> int:
        with self.cond:
            self.pending = True
            self.cond.notify_all()
            while self.answer is None and not self.abandoned:
                self.cond.wait(_CALLER_CHECK)
                if self.answer is None and not self.caller_present():
                    self.abandoned = True  # it left without saying so
            answer = self.answer
        if answer is None:
            return _report(error, STATUS_CANCELLED, "the caller stopped waiting (Ctrl-C?) before its compute ran")
        capsule, exc = answer
        if exc is not None:
            if self._caller_gave_up(exc):
                # Not the compute's failure: a waiting call takes it over.
                return _report(error, STATUS_CANCELLED, f"the caller gave up during its compute: {_describe(exc)}")
            return _report(error, STATUS_CALLBACK_FAILED, _describe(exc))
        try:
            move_stream_into(capsule, out)
        except BaseException as failure:
            self.compute_error = failure
            return _report(error, STATUS_CALLBACK_FAILED, _describe(failure))
        return STATUS_OK

    def _caller_gave_up(self, exc: BaseException) -> bool:
        # KeyboardInterrupt, SystemExit: the caller is leaving. A compute that
        # fails once the call's CancelToken is cancelled: the caller cancelled.
        return not isinstance(exc, Exception) or (self.token is not None and self.token.cancelled)

    # The calling thread.
    def serve(self) -> None:
        """Waits for the C call to end, running the compute when asked."""
        while True:
            with self.cond:
                while not (self.pending or self.done):
                    self.cond.wait(_WAIT_SLICE)
                if not self.pending:
                    return
                self.pending = False
            self._compute()

    def _compute(self) -> None:
        answer: tuple[object, Optional[BaseException]] = (None, RuntimeError("the compute did not finish"))
        try:
            value = self.compute(self.key)
            answer = (stream_capsule_of(value, "the value compute returned"), None)
        except BaseException as exc:
            self.compute_error = exc
            answer = (None, exc)
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt, SystemExit: the caller abandons
        finally:
            with self.cond:
                self.answer = answer
                self.cond.notify_all()

    def abandon(self) -> None:
        """The caller stops waiting: cancel the C call's waits, free the worker."""
        with self.cond:
            self.abandoned = True
            self.cond.notify_all()
        self.cancel()

    def wait_done(self, seconds: float) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.done, seconds)

    def outcome(self) -> ArrowStream:
        if self.error is not None:
            cause = self.compute_error
            status = self.error.status if isinstance(self.error, Error) else None
            if cause is not None and status in (Status.CALLBACK_FAILED, Status.CANCELLED):
                raise self.error from cause
            raise self.error
        assert self.result is not None
        return self.result


# --- the store ------------------------------------------------------------


class Store:
    """An open feature cache: ``Store(cache_dir=None, options=None)``.

    `options` maps option names to values, e.g. ``{"lock.granularity":
    "entry", "lock.cross_process": False, "wait.timeout_ms": 30000,
    "verify_checksums": True}``; `cache_dir` defaults to $FSTORE_CACHE_DIR,
    then ~/.feature_cache. Thread-safe: share one store between threads. A
    store opened before fork() cannot be used in the child (InvalidState).
    Use it as a context manager, or call `close()`.
    """

    def __init__(
        self, cache_dir: Optional[str | os.PathLike[str]] = None, options: Optional[Mapping[str, Any]] = None
    ) -> None:
        self._close_lock = threading.Lock()
        self._handle: Optional[int] = None
        self._closed = False
        self._pid = os.getpid()
        with c_options(cache_dir, options) as opts:
            handle = c_void_p()
            err = FstoreError()
            check(lib().fstore_store_open(opts, byref(handle), byref(err)), err)
            self._handle = handle.value

    # Lifetime: the library answers for the handle. Calls pass its value
    # without any bookkeeping here: one racing with close(), or made after
    # it, gets INVALID_STATE ("the store is closed") from the library, which
    # keeps a closed handle valid for exactly that. Only this binding's own
    # get_or_compute calls are tracked (in _calls, for their computes), so
    # that close() can report the manifest failure of a compute it waited for.

    def close(self) -> None:
        """Closes the store: calls still waiting on other threads end with
        `Cancelled`, computes running on them finish and are published, and
        close() waits for those, flushes the manifest and raises if it
        failed. Calls made later raise InvalidState. A second close() does
        nothing. Ctrl-C interrupts the wait, and close() can then be called
        again. Calling it from a compute of this store raises InvalidState:
        it would wait for itself."""
        for call in list(_calls.values()):
            if call.store is self and call.caller_thread == threading.get_ident() and call.caller_present():
                raise InvalidState(
                    Status.INVALID_STATE, "close() was called from a compute of this store, which it would wait for"
                )
        with self._close_lock:
            if self._closed or not self._handle:
                return
            # As the library's close does for every call, but first, so that
            # the flush below covers what the computes publish.
            ours = [call for call in list(_calls.values()) if call.store is self]
            for call in ours:
                call.cancel()
            for call in ours:
                while not call.done:
                    call.wait_done(_WAIT_SLICE)
            self._closed = True
            err = FstoreError()
            status = STATUS_OK
            try:
                if os.getpid() == self._pid:
                    status = lib().fstore_store_flush(self._handle, byref(err))
            finally:
                _close_handle(self._handle)
            check(status, err)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            _close_handle(getattr(self, "_handle", None))
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<fstore.Store {'closed' if self.closed else 'open'}>"

    # Calls.

    def get_or_compute(
        self,
        key: Key,
        compute: ComputeFn,
        columns: Optional[Iterable[str]] = None,
        timeout: Optional[float | datetime.timedelta] = None,
        cancel: Optional[CancelToken] = None,
    ) -> ArrowStream:
        """The data of `key`, computed with ``compute(key)`` first if absent.

        `compute` returns any object exporting ``__arrow_c_stream__`` (a
        pyarrow Table or RecordBatchReader, a polars DataFrame, ...). Exactly
        one caller per entry, across threads and processes sharing the cache,
        runs it; the others wait and receive the same data or the same error.
        If `compute` raises, nothing is stored, this call raises
        `CallbackFailed` from that exception, and the next call retries. If
        instead its caller gives up during the compute (Ctrl-C, or `compute`
        raising once `cancel` is cancelled), this call raises that
        (KeyboardInterrupt, or `Cancelled`) and one of the calls waiting for
        the entry computes it.
        `compute` runs on the calling thread. A hit is read on the calling
        thread too; a call that must wait or compute runs its C call on a
        worker thread, so that the wait stays interruptible.

        `columns` projects (in that order). `timeout` (seconds) bounds the wait
        for another caller's compute (`Timeout`); `cancel` ends it from
        another thread (`Cancelled`); Ctrl-C ends it too (KeyboardInterrupt).
        """
        if not callable(compute):
            raise TypeError(f"compute must be callable, not {type(compute).__name__}")
        if cancel is not None and not isinstance(cancel, CancelToken):
            raise TypeError(f"cancel must be an fstore.CancelToken, not {type(cancel).__name__}")
        c_key = _c_key(key)
        request = _new_request(columns, timeout) if columns is not None or timeout is not None else None
        # A hit is answered here, on the calling thread, without a hand-off.
        # The try is not bounded by a timer, since it never waits for a lock
        # or another caller: it reads the entry (a stat, and a decode when it
        # is not in memory), as get() does and as the worker would; Ctrl-C
        # lands when that read ends. Only a call that must wait or compute
        # takes the interruptible path below. An entry removed after the try
        # is simply computed (or waited for) there.
        try:
            hit = self._try_get(c_key, request)
            if hit is None and request is None:
                request = _new_request(None, None)
        except BaseException:
            _free_request(request)
            raise
        if hit is not None:
            if request is not None:
                _free_request(request)
            return hit
        call = _ComputeCall(compute, key, request, self, cancel)
        call.caller_frame = sys._getframe()
        handle = self._handle
        _calls[call.id] = call
        if cancel is not None:
            cancel._attach(call)
        try:
            try:
                _workers.submit(lambda: call.run(handle, c_key))
            except BaseException:
                call.discard()
                raise
            try:
                call.serve()
            except BaseException:
                call.abandon()
                call.wait_done(_CANCEL_GRACE)
                raise
        finally:
            if cancel is not None:
                cancel._detach(call)
        return call.outcome()

    def _try_get(self, c_key: FstoreKey, request: Optional[int]) -> Optional[ArrowStream]:
        """What get_or_compute answers without waiting or computing
        (fstore_store_try_get): the entry, or None. Anything but a hit takes
        the slow path, which meets and reports any error itself: so the try
        needs no error struct."""
        out = ArrowArrayStream()
        status = lib().fstore_store_try_get(self._handle, byref(c_key), request, byref(out), None)
        return ArrowStream(out) if status == STATUS_OK else None

    def get(self, key: Key, columns: Optional[Iterable[str]] = None) -> Optional[ArrowStream]:
        """The data of `key`, or None if there is no entry. Never computes,
        never waits."""
        c_key = _c_key(key)
        request = _new_request(columns, None) if columns is not None else None
        out = ArrowArrayStream()
        err = FstoreError()
        try:
            status = lib().fstore_store_get(self._handle, byref(c_key), request, byref(out), byref(err))
        finally:
            _free_request(request)
        if status == STATUS_NOT_FOUND:
            lib().fstore_error_release(byref(err))
            return None
        check(status, err)
        return ArrowStream(out)

    def put(self, key: Key, data: Any) -> None:
        """Stores `data` (any object exporting ``__arrow_c_stream__``) as the
        entry of `key`, replacing any."""
        c_key = _c_key(key)
        capsule = stream_capsule_of(data, "data")
        err = FstoreError()
        stream = ArrowArrayStream()
        move_stream_into(capsule, ctypes.addressof(stream))
        # fstore_store_put owns the stream from here, whatever happens.
        status = lib().fstore_store_put(self._handle, byref(c_key), byref(stream), byref(err))
        check(status, err)

    def invalidate(self, key: Key) -> bool:
        """Removes the entry of `key`; returns whether there was one."""
        c_key = _c_key(key)
        err = FstoreError()
        status = lib().fstore_store_invalidate(self._handle, byref(c_key), byref(err))
        if status == STATUS_NOT_FOUND:
            lib().fstore_error_release(byref(err))
            return False
        check(status, err)
        return True

    def contains(self, key: Key) -> bool:
        """Whether a complete entry of `key` exists."""
        c_key = _c_key(key)
        found = c_bool()
        err = FstoreError()
        check(lib().fstore_store_contains(self._handle, byref(c_key), byref(found), byref(err)), err)
        return bool(found.value)

    def __contains__(self, key: Key) -> bool:
        return self.contains(key)

    def stats(self) -> Stats:
        """The store's counters since it was opened."""
        raw = FstoreStats()
        err = FstoreError()
        check(lib().fstore_store_stats(self._handle, byref(raw), ctypes.sizeof(raw), byref(err)), err)
        return Stats(**{field[0]: getattr(raw, field[0]) for field in FstoreStats._fields_})

    def entries(self) -> ArrowStream:
        """The manifest, one row per entry (entry_id, feature_set, symbol,
        start_date, end_date, config, path, rows, bytes, checksum, created_at)."""
        out = ArrowArrayStream()
        err = FstoreError()
        check(lib().fstore_store_list(self._handle, byref(out), byref(err)), err)
        return ArrowStream(out)

    def scan(
        self,
        feature_set: str,
        start_date: datetime.date | int,
        end_date: datetime.date | int,
        symbols: Optional[Iterable[str]] = None,
        config: Any = None,
        columns: Optional[Iterable[str]] = None,
    ) -> Scan:
        """The entries of `feature_set` and `config` whose whole date range lies
        within [start_date, end_date], of `symbols` (None: every symbol; an
        empty list is refused), as one Arrow stream with the key columns in
        front. Never computes: listed entries whose file is gone or fails
        verification are in the result's `missing`."""
        return _scan.run(self._handle, feature_set, start_date, end_date, symbols, config, columns)

    def flush(self) -> None:
        """Waits until the manifest records every entry published so far;
        raises if a manifest update failed since the last flush."""
        err = FstoreError()
        check(lib().fstore_store_flush(self._handle, byref(err)), err)

    def metrics(self) -> str:
        """The store's metrics in the Prometheus text exposition format
        (0.0.4): the featurestore_* series. `fstore.prometheus.Collector`
        registers them with prometheus_client."""
        text = ctypes.c_void_p()
        err = FstoreError()
        check(lib().fstore_store_metrics(self._handle, byref(text), byref(err)), err)
        try:
            return ctypes.string_at(text.value).decode("utf-8") if text.value else ""
        finally:
            lib().fstore_string_free(byref(text))

    @property
    def manifest_backend(self) -> str:
        """The manifest backend in use: "postgres" or "duckdb"."""
        name = lib().fstore_store_manifest_backend(self._handle)
        return name.decode("utf-8") if name else ""

    @property
    def warnings(self) -> list[str]:
        """Warnings from opening the store, one per line: such as a fallback
        from PostgreSQL to the embedded manifest, and why. Each was also
        logged to the "fstore" logger."""
        return _admin.warnings(self._handle)

    def pool_stats(self) -> Optional[PoolStats]:
        """The PostgreSQL connection pool's figures; None when the store
        does not use PostgreSQL."""
        return _admin.pool_stats(self._handle)

    def lock_stats(self) -> Optional[LockStats]:
        """The advisory locks held and waited for in the manifest's database
        (from pg_locks); None when the store does not use PostgreSQL."""
        return _admin.lock_stats(self._handle)

    def summary(self) -> ArrowStream:
        """Entries, rows, bytes and age per feature set and symbol: columns
        feature_set, symbol, entries, rows, bytes, oldest, newest."""
        return _admin.summary(self._handle)

    def maintain(
        self,
        max_age: Optional[float | datetime.timedelta] = None,
        grace: float | datetime.timedelta = datetime.timedelta(hours=1),
        dry_run: bool = False,
    ) -> MaintainReport:
        """Removes entries created more than `max_age` ago (seconds or a
        timedelta; None keeps them all), manifest rows whose file is gone,
        entry files that fail verification, stale temporary and lock files,
        and re-indexes verified files whose row is missing; nothing modified
        within `grace` is touched. `dry_run` counts without changing anything."""
        return _admin.maintain(self._handle, max_age, grace, dry_run)


def _close_handle(handle: Optional[int]) -> None:
    if handle:
        lib().fstore_store_close(byref(c_void_p(handle)))
