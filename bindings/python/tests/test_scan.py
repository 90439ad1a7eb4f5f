"""Store.scan: one Arrow stream of many entries with the key columns in
front; missing entries reported, hostile arguments refused."""

from __future__ import annotations

import datetime
import os

import pytest

import fstore
from conftest import END, START, make_table

pa = pytest.importorskip("pyarrow")


def put_two(store):
    aapl = fstore.Key("scan", "AAPL", START, END, config={"window": 20})
    msft = fstore.Key("scan", "MSFT", START, END, config={"window": 20})
    store.put(msft, make_table(3, offset=10))
    store.put(aapl, make_table(2))
    return aapl, msft


def test_scan_returns_rows_with_key_columns(store):
    put_two(store)
    # An entry overlapping the window only, and one of another config: left out.
    store.put(fstore.Key("scan", "AAPL", START - datetime.timedelta(days=1), END, config={"window": 20}), make_table(1))
    store.put(fstore.Key("scan", "AAPL", START, END, config={"window": 21}), make_table(1))
    result = store.scan("scan", START, END, config='{ "window": 20.0 }')
    table = pa.table(result)
    assert table.column_names == ["fstore_symbol", "fstore_start_date", "fstore_end_date", "a", "b", "c"]
    assert table.column("fstore_symbol").to_pylist() == ["AAPL"] * 2 + ["MSFT"] * 3
    assert table.column("fstore_start_date").to_pylist() == [START] * 5
    assert table.column("fstore_end_date").to_pylist() == [END] * 5
    assert table.column("a").to_pylist() == [0, 1, 10, 11, 12]
    assert result.missing == []

    projected = pa.RecordBatchReader.from_stream(
        store.scan("scan", START, END, symbols=["MSFT"], config={"window": 20}, columns=["c", "a"])
    ).read_all()
    assert projected.column_names == ["fstore_symbol", "fstore_start_date", "fstore_end_date", "c", "a"]
    assert projected.column("a").to_pylist() == [10, 11, 12]

    empty = pa.table(store.scan("scan", END + datetime.timedelta(days=10), END + datetime.timedelta(days=20)))
    assert empty.num_rows == 0 and empty.column_names == ["fstore_symbol", "fstore_start_date", "fstore_end_date"]


def test_a_deleted_file_is_reported_not_dropped(store, cache_dir):
    aapl, msft = put_two(store)
    store.flush()
    entries = pa.table(store.entries()).to_pylist()
    os.remove(cache_dir / next(e["path"] for e in entries if e["symbol"] == "MSFT"))
    result = store.scan("scan", START, END, config={"window": 20})
    assert pa.table(result).column("fstore_symbol").to_pylist() == ["AAPL"] * 2
    canonical = fstore.Key("scan", "MSFT", START, END, config='{"window":20}')
    assert result.missing == [fstore.MissingEntry(canonical, "its file is missing")]
    assert store.stats().computes == 0


@pytest.mark.parametrize(
    "kwargs, status, needle",
    [
        (dict(symbols=[]), fstore.InvalidArgument, "the symbol list is empty"),
        (dict(columns=["nope"]), fstore.InvalidArgument, "unknown column 'nope'"),
        (dict(end_date=START - datetime.timedelta(days=1)), fstore.InvalidArgument, "the window is inverted"),
        (dict(config="{"), fstore.InvalidArgument, "invalid config JSON"),
    ],
)
def test_hostile_scans_raise_the_library_status(store, kwargs, status, needle):
    put_two(store)
    args = dict(feature_set="scan", start_date=START, end_date=END, config={"window": 20}) | kwargs
    with pytest.raises(status, match=needle):
        store.scan(**args)
    with pytest.raises(TypeError, match="not a single string"):
        store.scan("scan", START, END, symbols="AAPL")
