"""One compute per entry across threads and processes; timeouts and
cancellation of waits."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

import fstore
import workers
from conftest import make_table

pa = pytest.importorskip("pyarrow")


def test_eight_threads_on_one_missing_key_compute_once(store, key):
    computes = []
    barrier = threading.Barrier(8)
    results: list = [None] * 8
    errors: list = []

    def compute(k):
        computes.append(threading.get_ident())
        time.sleep(0.3)
        return make_table(1000)

    def worker(i):
        try:
            barrier.wait(timeout=10)
            results[i] = pa.table(store.get_or_compute(key, compute))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(computes) == 1
    assert all(r is not None and r.equals(make_table(1000)) for r in results)
    s = store.stats()
    assert s.computes == 1
    assert s.hits + s.misses == 8


def test_a_failed_compute_reaches_every_waiter_and_the_next_call_retries(store, key):
    started = threading.Event()
    outcomes: list = []

    def failing(k):
        started.set()
        time.sleep(0.3)
        raise RuntimeError("upstream is down")

    def follower():
        started.wait(10)
        try:
            store.get_or_compute(key, lambda k: make_table(1))
            outcomes.append("ok")
        except fstore.CallbackFailed as e:
            outcomes.append(str(e))

    followers = [threading.Thread(target=follower) for _ in range(3)]
    for t in followers:
        t.start()
    with pytest.raises(fstore.CallbackFailed, match="RuntimeError: upstream is down") as info:
        store.get_or_compute(key, failing)
    assert isinstance(info.value.__cause__, RuntimeError)
    for t in followers:
        t.join(10)
    assert len(outcomes) == 3
    # A follower that joined the failed flight shares its error; one that came
    # after it ended retried and computed.
    for outcome in outcomes:
        assert outcome == "ok" or "RuntimeError: upstream is down" in outcome
    assert store.stats().compute_failures == 1


def slow_leader(store, key, release: threading.Event, started: threading.Event):
    def compute(k):
        started.set()
        release.wait(10)
        return make_table(2)

    done: list = []
    thread = threading.Thread(target=lambda: done.append(pa.table(store.get_or_compute(key, compute))))
    thread.start()
    assert started.wait(10)
    return thread, done


def test_timeout_ends_a_wait(store, key):
    release, started = threading.Event(), threading.Event()
    thread, done = slow_leader(store, key, release, started)
    began = time.monotonic()
    with pytest.raises(fstore.Timeout) as info:
        store.get_or_compute(key, lambda k: make_table(9), timeout=0.2)
    waited = time.monotonic() - began
    assert isinstance(info.value, TimeoutError)
    assert "gave up after 200 ms" in str(info.value)
    assert 0.15 <= waited < 3
    release.set()
    thread.join(10)
    assert done and done[0].equals(make_table(2))
    s = store.stats()
    assert (s.timeouts, s.computes) == (1, 1)


def test_cancel_from_another_thread_ends_a_wait(store, key):
    release, started = threading.Event(), threading.Event()
    thread, done = slow_leader(store, key, release, started)
    token = fstore.CancelToken()
    timer = threading.Timer(0.2, token.cancel)
    timer.start()
    began = time.monotonic()
    with pytest.raises(fstore.Cancelled, match="cancelled while waiting"):
        store.get_or_compute(key, lambda k: make_table(9), cancel=token)
    assert 0.15 <= time.monotonic() - began < 3
    assert token.cancelled
    # A cancelled token stays cancelled: a later wait ends at once.
    began = time.monotonic()
    with pytest.raises(fstore.Cancelled):
        store.get_or_compute(key, lambda k: make_table(9), cancel=token)
    assert time.monotonic() - began < 1
    release.set()
    thread.join(10)
    assert done and done[0].equals(make_table(2))
    assert store.stats().cancellations == 2
    # Nothing to wait for: a cancelled token does not stop a hit.
    assert pa.table(store.get_or_compute(key, lambda k: make_table(9), cancel=token)).equals(make_table(2))


def run_competitors(cache_dir, tmp_path, options, count=4):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(count)
    results = ctx.Queue()
    log = tmp_path / "computes.log"
    procs = [
        ctx.Process(target=workers.compete, args=(str(cache_dir), options, barrier, str(log), results))
        for _ in range(count)
    ]
    for p in procs:
        p.start()
    seen = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    lines = log.read_text().splitlines()
    return lines, seen


def test_processes_on_one_missing_key_compute_once(cache_dir, tmp_path):
    lines, seen = run_competitors(cache_dir, tmp_path, {})
    assert len(lines) == 1, lines
    assert len(seen) == 4
    first = seen[0][1]
    assert all(data == first for _, data in seen)
    assert first["x"] == list(range(100))


def test_without_the_cross_process_lock_processes_compute_more_than_once(cache_dir, tmp_path):
    lines, seen = run_competitors(cache_dir, tmp_path, {"lock.cross_process": False})
    assert len(lines) > 1, lines
    assert len(seen) == 4
