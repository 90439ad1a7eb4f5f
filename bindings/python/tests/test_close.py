"""close() waits for the calls in flight, then flushes the manifest and
reports its failure."""

from __future__ import annotations

import threading
import time

import pytest

import fstore
from conftest import make_table

pa = pytest.importorskip("pyarrow")


def running_call(store, key, seconds: float):
    """A thread whose get_or_compute of `key` computes for `seconds`; returns
    once the compute has started."""
    computing = threading.Event()
    outcome: list = []

    def slow(k):
        computing.set()
        time.sleep(seconds)
        return make_table(3)

    def call():
        try:
            outcome.append(pa.table(store.get_or_compute(key, slow)))
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=call)
    thread.start()
    assert computing.wait(10)
    return thread, outcome


def test_close_waits_for_a_running_call_then_flushes(cache_dir, key):
    store = fstore.Store(cache_dir)
    thread, outcome = running_call(store, key, 0.8)
    began = time.monotonic()
    store.close()
    took = time.monotonic() - began
    assert took >= 0.5, f"close() returned after {took:.2f}s, with the call still computing"
    assert store.closed
    # Flushed before close() returned: another store lists the entry now.
    with fstore.Store(cache_dir) as other:
        assert pa.table(other.entries()).column("symbol").to_pylist() == [key.symbol]
    thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], pa.Table) and outcome[0].equals(make_table(3))
    with pytest.raises(fstore.InvalidState, match="closed"):
        store.get(key)


def test_close_raises_the_manifest_failure_of_a_call_it_waited_for(cache_dir, key):
    store = fstore.Store(cache_dir)
    thread, outcome = running_call(store, key, 0.5)
    # The manifest's database becomes unusable while the call computes.
    database = cache_dir / "manifest.duckdb"
    database.rename(cache_dir / "manifest.duckdb.moved")
    database.mkdir()
    with pytest.raises(fstore.Error, match="manifest"):
        store.close()
    thread.join(10)
    # The entry itself was published: its file alone proves it.
    assert len(outcome) == 1 and isinstance(outcome[0], pa.Table)
    assert store.closed


def test_close_from_a_compute_of_the_store_is_refused_not_a_deadlock(store, key):
    seen: list = []

    def closes_its_store(k):
        try:
            store.close()
        except fstore.InvalidState as e:
            seen.append(str(e))
        return make_table(2)

    assert pa.table(store.get_or_compute(key, closes_its_store)).equals(make_table(2))
    assert seen and "from a compute of this store" in seen[0]
    assert not store.closed
    assert store.contains(key)


def test_close_ends_a_waiting_call_and_waits_for_the_computing_one(cache_dir, key):
    store = fstore.Store(cache_dir, options={"wait.timeout_ms": 60_000})
    computer, computed = running_call(store, key, 1.0)
    waited: list = []

    def waiter():
        try:
            waited.append(pa.table(store.get_or_compute(key, lambda k: make_table(9))))
        except BaseException as e:
            waited.append(e)

    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = time.monotonic() + 10
    while store.stats().waits < 1:
        assert time.monotonic() < deadline, "the second call never waited"
        time.sleep(0.01)
    began = time.monotonic()
    store.close()
    took = time.monotonic() - began
    thread.join(10)
    computer.join(10)
    assert len(waited) == 1 and isinstance(waited[0], fstore.Cancelled), waited
    assert len(computed) == 1 and isinstance(computed[0], pa.Table) and computed[0].equals(make_table(3))
    assert 0.3 <= took < 10, f"close() took {took:.2f}s: it waits for the compute (1 s), not for the 60 s wait bound"
    with pytest.raises(fstore.InvalidState, match="closed"):
        store.get_or_compute(key, lambda k: make_table(1))
    with fstore.Store(cache_dir) as other:
        assert pa.table(other.get(key)).equals(make_table(3)), "the running compute was published"


def test_calls_racing_with_close_succeed_or_say_the_store_is_closed(cache_dir, key):
    # No reference counting in the binding: the library answers for the handle.
    store = fstore.Store(cache_dir)
    store.put(key, make_table(4))
    outcomes: list = []
    started = threading.Barrier(5)

    def hammer():
        started.wait()
        for _ in range(2000):
            try:
                for call in (lambda: store.get(key), lambda: store.contains(key), store.stats,
                             lambda: store.get_or_compute(key, lambda k: make_table(4))):
                    call()
            except fstore.InvalidState as e:
                outcomes.append(str(e))
                return
        outcomes.append("never saw the close")

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(0.05)
    store.close()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 4 and all("closed" in o for o in outcomes), outcomes


def test_every_call_on_a_closed_store_raises_invalid_state(cache_dir, key):
    store = fstore.Store(cache_dir)
    store.close()
    calls = {
        "get": lambda: store.get(key),
        "get_or_compute": lambda: store.get_or_compute(key, lambda k: make_table(1)),
        "put": lambda: store.put(key, make_table(1)),
        "invalidate": lambda: store.invalidate(key),
        "contains": lambda: store.contains(key),
        "stats": store.stats,
        "entries": store.entries,
        "scan": lambda: store.scan("features", 0, 30000),
        "flush": store.flush,
    }
    for name, call in calls.items():
        with pytest.raises(fstore.InvalidState, match="the store is closed"):
            call()
    store.close()  # a second close does nothing
