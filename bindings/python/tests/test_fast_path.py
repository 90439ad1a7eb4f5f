"""A hit through get_or_compute is answered on the calling thread, with no
hand-off to a worker thread; only a call that must wait or compute takes the
interruptible path. Whatever path answers, the call means the same."""

from __future__ import annotations

import pathlib
import threading

import pytest

import fstore
from fstore import _store
from conftest import make_table

pa = pytest.importorskip("pyarrow")


@pytest.fixture
def hand_offs(monkeypatch):
    """The threads that ran a job handed to the binding's workers."""
    threads: list[int] = []
    submit = _store._workers.submit

    def counting_submit(job):
        def recorded():
            threads.append(threading.get_ident())
            job()

        submit(recorded)

    monkeypatch.setattr(_store._workers, "submit", counting_submit)
    return threads


def test_a_hit_is_answered_without_a_hand_off(store, key, hand_offs):
    table = make_table(8)
    # A miss computes through the interruptible path: one hand-off.
    assert pa.table(store.get_or_compute(key, lambda k: table)).equals(table)
    assert len(hand_offs) == 1 and hand_offs[0] != threading.get_ident()

    for _ in range(20):
        assert pa.table(store.get_or_compute(key, lambda k: pytest.fail("a hit computed"))).equals(table)
    got = pa.table(store.get_or_compute(key, lambda k: table, columns=["c", "a"], timeout=5))
    assert got.column_names == ["c", "a"]
    assert len(hand_offs) == 1, "a hit was handed to a worker thread"
    s = store.stats()
    assert (s.misses, s.hits, s.computes) == (1, 21, 1), "each call is counted once"


def test_a_removed_entry_is_computed_again_through_the_slow_path(store, key, hand_offs):
    store.put(key, make_table(3))
    store.get_or_compute(key, lambda k: pytest.fail("a hit computed")).close()
    assert store.invalidate(key)
    assert pa.table(store.get_or_compute(key, lambda k: make_table(4))).num_rows == 4
    assert len(hand_offs) == 1
    assert store.stats().computes == 1


def test_a_corrupt_entry_is_computed_again_not_reported(store, key, cache_dir):
    store.put(key, make_table(50))
    (entry,) = pathlib.Path(cache_dir).rglob("*.parquet")
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    # get reports the corrupt file; get_or_compute's first look counts it as missing.
    with pytest.raises(fstore.Corrupt):
        store.get(key)
    assert pa.table(store.get_or_compute(key, lambda k: make_table(5))).num_rows == 5
    assert store.stats().computes == 1


def test_a_hit_checks_its_arguments_as_a_miss_does(store, key):
    store.put(key, make_table(2))
    with pytest.raises(fstore.InvalidArgument, match="timeout"):
        store.get_or_compute(key, lambda k: make_table(2), timeout=-1)
    with pytest.raises(fstore.InvalidArgument, match="unknown column 'zz'"):
        store.get_or_compute(key, lambda k: make_table(2), columns=["a", "zz"])
    with pytest.raises(TypeError, match="compute must be callable"):
        store.get_or_compute(key, None)


def test_a_hit_on_a_closed_store_is_refused(cache_dir, key):
    store = fstore.Store(cache_dir)
    store.put(key, make_table(2))
    store.close()
    with pytest.raises(fstore.InvalidState, match="closed"):
        store.get_or_compute(key, lambda k: make_table(2))
