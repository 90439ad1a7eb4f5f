"""Round trips through a real store: compute, hit, projection, config
canonicalisation, put/get/invalidate/contains, the manifest, Arrow interop."""

from __future__ import annotations

import datetime
import gc
import weakref

import pytest

import fstore
from conftest import END, START, make_table

pa = pytest.importorskip("pyarrow")


def counting(table):
    calls = []

    def compute(key):
        calls.append(key)
        return table

    return compute, calls


def test_miss_computes_once_then_hits(store, key):
    table = make_table(10)
    compute, calls = counting(table)

    first = store.get_or_compute(key, compute)
    assert isinstance(first, fstore.ArrowStream)
    assert pa.table(first).equals(table)
    s = store.stats()
    assert (s.computes, s.misses, s.hits, s.compute_failures) == (1, 1, 0, 0)
    assert s.bytes_written > 0

    second = store.get_or_compute(key, compute)
    assert pa.table(second).equals(table)
    s = store.stats()
    assert (s.computes, s.misses, s.hits) == (1, 1, 1)
    assert s.bytes_read > 0
    assert calls == [key], "the compute ran exactly once, with the caller's key"


def test_compute_receives_the_key(store):
    seen = []
    key = fstore.Key("returns", "AAPL", datetime.date(2024, 1, 2), 19800, config='{"w": 1}')

    def compute(k):
        seen.append((k.feature_set, k.symbol, k.start, k.end_date, k.config))
        return make_table(1)

    store.get_or_compute(key, compute).close()
    assert seen == [("returns", "AAPL", datetime.date(2024, 1, 2), 19800, '{"w": 1}')]


def test_get_returns_none_when_absent_and_the_data_when_present(store, key):
    assert store.get(key) is None
    assert not store.contains(key)
    assert key not in store
    store.get_or_compute(key, lambda k: make_table(3)).close()
    assert store.contains(key)
    assert key in store
    assert pa.table(store.get(key)).equals(make_table(3))


def test_put_replaces_and_invalidate_removes(store, key):
    store.put(key, make_table(4))
    assert pa.table(store.get(key)).equals(make_table(4))
    store.put(key, make_table(2, offset=100))
    assert pa.table(store.get(key)).equals(make_table(2, offset=100))
    assert store.invalidate(key) is True
    assert store.get(key) is None
    assert store.invalidate(key) is False


def test_put_accepts_a_record_batch_reader_and_our_own_streams(store, key):
    table = make_table(50)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=7))
    store.put(key, reader)
    other = fstore.Key(key.feature_set, key.symbol + "-copy", START, END)
    store.put(other, store.get(key))  # an fstore.ArrowStream is itself a stream source
    assert pa.table(store.get(other)).equals(table)


def test_put_refuses_a_non_stream(store, key):
    with pytest.raises(TypeError, match="__arrow_c_stream__"):
        store.put(key, [1, 2, 3])
    assert store.get(key) is None


def test_projection_keeps_the_requested_order(store, key):
    table = make_table(6)
    miss = pa.table(store.get_or_compute(key, lambda k: table, columns=["c", "a"]))
    assert miss.column_names == ["c", "a"]
    assert miss.column("c").equals(table.column("c")) and miss.column("a").equals(table.column("a"))
    hit = pa.table(store.get_or_compute(key, lambda k: table, columns=["b", "c"]))
    assert hit.column_names == ["b", "c"]
    got = pa.table(store.get(key, columns=("a", "b")))
    assert got.column_names == ["a", "b"]
    assert pa.table(store.get(key, columns=[])).column_names == ["a", "b", "c"]


def test_projection_refuses_unknown_columns(store, key):
    store.put(key, make_table(2))
    with pytest.raises(fstore.InvalidArgument, match="unknown column 'zz'"):
        store.get(key, columns=["a", "zz"])
    with pytest.raises(TypeError, match="not a single string"):
        store.get(key, columns="a")


def test_config_dict_and_text_in_another_order_name_one_entry(store):
    as_dict = fstore.Key("features", "CFG", START, END, config={"window": 20, "kind": "sma", "lags": [1, 2]})
    as_text = fstore.Key("features", "CFG", START, END, config='{ "lags":[1,2], "kind":"sma","window":2.0e1 }')
    different = fstore.Key("features", "CFG", START, END, config={"window": 21, "kind": "sma", "lags": [1, 2]})
    compute, calls = counting(make_table(3))
    store.get_or_compute(as_dict, compute).close()
    store.get_or_compute(as_text, compute).close()
    assert len(calls) == 1
    assert store.contains(as_text)
    assert not store.contains(different)
    entries = pa.table(store.entries())
    assert entries.num_rows == 1
    assert entries.column("config")[0].as_py() == '{"kind":"sma","lags":[1,2],"window":20}'


def test_no_config_is_the_empty_object(store):
    compute, calls = counting(make_table(1))
    store.get_or_compute(fstore.Key("f", "S", 1, 2), compute).close()
    store.get_or_compute(fstore.Key("f", "S", 1, 2, config={}), compute).close()
    store.get_or_compute(fstore.Key("f", "S", 1, 2, config=""), compute).close()
    assert len(calls) == 1


def test_dates_are_days_since_the_epoch():
    key = fstore.Key("f", "S", datetime.date(1970, 1, 2), datetime.datetime(2024, 1, 2, 15, 30))
    assert key.start_date == 1
    assert key.end_date == 19724
    assert key.end == datetime.date(2024, 1, 2)
    assert key == fstore.Key("f", "S", 1, 19724)
    assert hash(key) == hash(fstore.Key("f", "S", 1, 19724))
    with pytest.raises(AttributeError):
        key.symbol = "T"
    with pytest.raises(TypeError, match="start_date"):
        fstore.Key("f", "S", "2024-01-02", 5)
    with pytest.raises(fstore.InvalidArgument, match="out of range"):
        fstore.Key("f", "S", 0, 2**31)


def test_entries_lists_the_manifest(store):
    keys = [fstore.Key("fs", sym, START, END) for sym in ("B", "A", "C")]
    for k in keys:
        store.put(k, make_table(2))
    entries = pa.table(store.entries())
    assert entries.num_rows == 3
    assert entries.column("symbol").to_pylist() == ["A", "B", "C"]
    for name in ("entry_id", "feature_set", "start_date", "end_date", "config", "rows", "bytes", "checksum"):
        assert name in entries.column_names
    assert entries.column("rows").to_pylist() == [2, 2, 2]


def test_manifest_backend_and_versions(store):
    assert store.manifest_backend == "duckdb"
    assert fstore.library_version()
    assert fstore.status_name(fstore.Status.TIMEOUT) == "timeout"


def test_a_result_is_read_many_times_until_closed(store, key):
    store.put(key, make_table(3))
    result = store.get(key)
    assert not result.closed
    assert (result.num_rows, result.num_batches) == (3, 1)
    assert result.to_pyarrow().equals(make_table(3))
    assert pa.table(result).equals(make_table(3)), "read again"
    result.close()
    assert result.closed
    with pytest.raises(fstore.InvalidState, match="closed"):
        pa.table(result)
    with store.get(key) as unclosed:
        pass
    assert unclosed.closed


def test_record_batch_reader_from_stream(store, key):
    table = make_table(1000)
    store.put(key, table)
    reader = pa.RecordBatchReader.from_stream(store.get(key))
    assert reader.schema == table.schema
    assert reader.read_all().equals(table)


def test_polars_reads_results_and_computes(store, key):
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    result = pl.DataFrame(store.get_or_compute(key, lambda k: frame))
    assert result.equals(frame)
    assert pl.DataFrame(store.get(key)).equals(frame)


def test_large_entry_round_trip(store, key):
    table = make_table(200_000)
    store.put(key, table)
    assert pa.table(store.get(key)).equals(table)


def test_an_unread_capsule_and_its_result_release_the_buffers():
    # The data's buffers are pyarrow's own here (allocated from its pool):
    # they must stay while the result or a stream exported from it holds
    # them, and go when the last of those goes, read or not.
    from fstore._arrow import ArrowStream, move_stream_into, stream_capsule_of
    from fstore._lib import ArrowArrayStream
    import ctypes

    def held_after(drop_result_first: bool) -> tuple[int, int, int]:
        gc.collect()
        base = pa.total_allocated_bytes()
        table = pa.table({"a": pa.array(range(100_000), pa.int64())})
        struct = ArrowArrayStream()
        move_stream_into(stream_capsule_of(table, "table"), ctypes.addressof(struct))
        del table
        result = ArrowStream(struct)
        capsule = result.__arrow_c_stream__()
        unread = pa.total_allocated_bytes() - base
        if drop_result_first:
            del result
            gc.collect()
            by_capsule = pa.total_allocated_bytes() - base
            del capsule
        else:
            del capsule
            gc.collect()
            by_capsule = pa.total_allocated_bytes() - base
            del result
        gc.collect()
        return unread, by_capsule, pa.total_allocated_bytes() - base

    for drop_result_first in (True, False):
        unread, by_one, none = held_after(drop_result_first)
        assert unread >= 800_000 and by_one == unread, (drop_result_first, unread, by_one)
        assert none == 0, f"{none} bytes still held (drop_result_first={drop_result_first})"


def test_closed_store_refuses_calls(cache_dir, key):
    store = fstore.Store(cache_dir)
    store.close()
    store.close()  # idempotent
    assert store.closed
    with pytest.raises(fstore.InvalidState, match="closed"):
        store.get(key)
    with pytest.raises(fstore.InvalidState, match="closed"):
        store.get_or_compute(key, lambda k: make_table(1))


def test_a_reopened_store_sees_entries(cache_dir, key):
    with fstore.Store(cache_dir) as first:
        first.put(key, make_table(3))
    with fstore.Store(cache_dir, options={"verify_checksums": True}) as second:
        assert pa.table(second.get(key)).equals(make_table(3))
        assert pa.table(second.entries()).num_rows == 1
