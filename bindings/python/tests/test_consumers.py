"""Every result can be read any number of times, by any Arrow consumer: each
``__arrow_c_stream__`` call exports a fresh stream over the same buffers.
Each consumer reads a fresh result and one that was read already."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

import fstore
from conftest import END, START, make_table

pa = pytest.importorskip("pyarrow")

ROWS = 7
EXPECTED_SUM = sum(range(ROWS))


def _duckdb() -> Any:
    return pytest.importorskip("duckdb")


def read_with_duckdb_sql(r: Any) -> int:
    # A replacement scan: DuckDB finds the local variable `r` by name.
    return _duckdb().sql("select sum(a) from r").fetchall()[0][0]


def read_with_duckdb_from_arrow(r: Any) -> int:
    return _duckdb().from_arrow(r).aggregate("sum(a)").fetchall()[0][0]


def read_with_pa_table(r: Any) -> int:
    return sum(pa.table(r).column("a").to_pylist())


def read_with_pa_reader(r: Any) -> int:
    return sum(pa.RecordBatchReader.from_stream(r).read_all().column("a").to_pylist())


def read_with_polars(r: Any) -> int:
    pl = pytest.importorskip("polars")
    return int(pl.DataFrame(r)["a"].sum())


def read_with_polars_from_arrow(r: Any) -> int:
    pl = pytest.importorskip("polars")
    # A stream of record batches comes back as one struct Series.
    return int(pl.from_arrow(r).struct.unnest()["a"].sum())


def read_with_nanoarrow(r: Any) -> int:
    na = pytest.importorskip("nanoarrow")
    stream = na.c_array_stream(r)
    schema = stream.get_schema()
    column = [schema.child(i).name for i in range(schema.n_children)].index("a")
    total = 0
    with stream:
        for array in stream:
            total += sum(na.Array(array.child(column)).to_pylist())
    return total


def read_with_to_pyarrow(r: Any) -> int:
    return sum(r.to_pyarrow().column("a").to_pylist())


def read_with_to_polars(r: Any) -> int:
    pytest.importorskip("polars")
    return int(r.to_polars()["a"].sum())


def read_with_to_pandas(r: Any) -> int:
    pytest.importorskip("pandas")
    return int(r.to_pandas()["a"].sum())


CONSUMERS: dict[str, Callable[[Any], int]] = {
    "duckdb.sql": read_with_duckdb_sql,
    "duckdb.from_arrow": read_with_duckdb_from_arrow,
    "pyarrow.table": read_with_pa_table,
    "pyarrow.RecordBatchReader.from_stream": read_with_pa_reader,
    "polars.DataFrame": read_with_polars,
    "polars.from_arrow": read_with_polars_from_arrow,
    "nanoarrow.c_array_stream": read_with_nanoarrow,
    "to_pyarrow": read_with_to_pyarrow,
    "to_polars": read_with_to_polars,
    "to_pandas": read_with_to_pandas,
}


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[fstore.Store, fstore.Key]]:
    """One store for the module (the tests only read it): opening one per
    case would cost more than the reads."""
    with fstore.Store(tmp_path_factory.mktemp("consumers") / "cache") as store:
        key = fstore.Key("features", "CONSUMERS", START, END, config={"window": 20})
        store.put(key, make_table(ROWS))
        yield store, key


# Every way a store returns a result, as a function of (store, key).
RESULTS: dict[str, Callable[[fstore.Store, fstore.Key], Any]] = {
    "get": lambda s, k: s.get(k),
    "get_or_compute (hit)": lambda s, k: s.get_or_compute(k, lambda _: make_table(ROWS)),
    "scan": lambda s, k: s.scan(k.feature_set, k.start_date, k.end_date, config=k.config),
}


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("source", RESULTS)
def test_a_fresh_result_and_one_already_read(filled, consumer, source):
    store, key = filled
    read = CONSUMERS[consumer]
    r = RESULTS[source](store, key)
    assert read(r) == EXPECTED_SUM, "a fresh result"
    assert read(r) == EXPECTED_SUM, "the same result, read again by the same consumer"
    assert sum(pa.table(r).column("a").to_pylist()) == EXPECTED_SUM, "and by another"


def test_a_computed_result_is_read_many_times(store, key):
    r = store.get_or_compute(key, lambda _: make_table(ROWS))
    for consumer, read in CONSUMERS.items():
        assert read(r) == EXPECTED_SUM, consumer


def test_the_list_and_the_scans_missing_are_read_many_times(filled):
    store, key = filled
    entries = store.entries()
    for _ in range(2):
        assert pa.table(entries).column("symbol").to_pylist() == [key.symbol]
    assert _duckdb().sql("select count(*) from entries").fetchall()[0][0] == 1
    scan = store.scan(key.feature_set, key.start_date, key.end_date, config=key.config)
    assert scan.missing == [] and scan.missing == []
    for _ in range(2):
        assert pa.table(scan.missing_data).num_rows == 0


def test_each_export_shares_the_buffers(filled):
    store, key = filled
    r = store.get(key)
    first, second = pa.table(r), pa.table(r)
    assert first.equals(second)
    address = lambda t: t.column("a").chunk(0).buffers()[1].address  # noqa: E731
    assert address(first) == address(second), "the same values buffer, not a copy"


def test_readers_outlive_the_result(filled):
    store, key = filled
    r = store.get(key)
    reader = pa.RecordBatchReader.from_stream(r)
    table = pa.table(r)
    r.close()
    del r
    assert sum(reader.read_all().column("a").to_pylist()) == EXPECTED_SUM
    assert sum(table.column("a").to_pylist()) == EXPECTED_SUM


def test_a_closed_result_says_so(filled):
    store, key = filled
    r = store.get(key)
    r.close()
    assert r.closed
    with pytest.raises(fstore.InvalidState, match="closed"):
        pa.table(r)


@pytest.mark.parametrize("method,module", [("to_pyarrow", "pyarrow"), ("to_polars", "polars"), ("to_pandas", "pandas")])
def test_a_missing_reader_library_is_named(filled, monkeypatch, method, module):
    import sys

    store, key = filled
    r = store.get(key)
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(ImportError, match=rf"{method}\(\) needs {module} \(pip install {module}\)"):
        getattr(r, method)()
