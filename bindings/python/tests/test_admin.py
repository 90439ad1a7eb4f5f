"""Operating a store from Python, against real stores: warnings, pool and
lock figures, summary, maintenance, migrations, the library's log level.
Every field of each C struct reaches its dataclass."""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import pathlib
import threading

import pytest

import fstore
import importlib

_lib = importlib.import_module("fstore._lib")
from conftest import END, START, make_table

pa = pytest.importorskip("pyarrow")

PG_VARIABLES = ("PG_MANIFEST_DSN", "PG_HOST", "PG_PORT", "PG_DATABASE", "PG_USER", "PG_PASSWORD")
UNREACHABLE = {"postgres.host": "127.0.0.1", "postgres.port": "1", "postgres.connect_timeout_ms": "300"}


def pg_options(name: str) -> dict[str, str]:
    dsn = os.environ.get("FSTORE_TEST_PG_DSN")
    if not dsn:
        pytest.skip("set FSTORE_TEST_PG_DSN to a PostgreSQL server (tests/run_all.sh starts one)")
    return {"manifest": "postgres", "postgres.dsn": dsn, "postgres.schema": f"t_py_{name}_{os.getpid()}"}


@pytest.mark.parametrize(
    "report, struct",
    [
        (fstore.PoolStats, _lib.FstorePoolStats),
        (fstore.LockStats, _lib.FstoreLockStats),
        (fstore.MaintainReport, _lib.FstoreMaintainReport),
        (fstore.MigrationReport, _lib.FstoreMigrationReport),
    ],
)
def test_every_field_of_the_c_struct_is_in_its_dataclass(report, struct):
    assert [f.name for f in dataclasses.fields(report)] == [name for name, _ in struct._fields_]
    assert report.__dataclass_params__.frozen


def test_a_fallback_to_the_embedded_manifest_is_a_warning_and_a_log_line(cache_dir, caplog, monkeypatch):
    for name in PG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.WARNING, logger="fstore"):
        with fstore.Store(cache_dir, options=UNREACHABLE) as store:
            assert store.manifest_backend == "duckdb"
            warnings = store.warnings
    assert len(warnings) == 1, warnings
    assert "127.0.0.1" in warnings[0] and "embedded DuckDB manifest" in warnings[0]
    logged = [r.getMessage() for r in caplog.records if r.name == "fstore"]
    assert logged == warnings


def test_a_store_opened_as_asked_has_no_warnings(store):
    assert store.warnings == []


def test_an_embedded_store_has_no_pool_or_lock_figures(store):
    assert store.pool_stats() is None
    assert store.lock_stats() is None


def test_postgresql_pool_and_lock_figures(tmp_path):
    seen = []
    with fstore.Store(tmp_path / "cache", options=pg_options("stats")) as store:
        pool = store.pool_stats()
        assert isinstance(pool, fstore.PoolStats)
        assert pool.size >= 1 and pool.size == pool.idle + pool.in_use, pool

        def compute(key):
            # The worker holds the symbol's advisory lock while this runs.
            seen.append(store.lock_stats())
            return make_table(2)

        store.get_or_compute(fstore.Key("f", "LOCKED", START, END), compute).close()
        after = store.lock_stats()
    assert isinstance(seen[0], fstore.LockStats) and seen[0].held >= 1, seen
    assert after is not None and after.waiting == 0


def test_summary_counts_entries_rows_and_bytes_per_feature_set_and_symbol(store):
    for symbol, start in (("AAA", START), ("AAA", END), ("BBB", START)):
        store.put(fstore.Key("sum", symbol, start, END), make_table(3))
    result = store.summary()
    assert isinstance(result, fstore.ArrowStream)
    table = result.to_pyarrow()
    assert table.column_names == ["feature_set", "symbol", "entries", "rows", "bytes", "oldest", "newest"]
    rows = {(r["feature_set"], r["symbol"]): r for r in table.to_pylist()}
    assert set(rows) == {("sum", "AAA"), ("sum", "BBB")}
    assert (rows["sum", "AAA"]["entries"], rows["sum", "AAA"]["rows"]) == (2, 6)
    assert (rows["sum", "BBB"]["entries"], rows["sum", "BBB"]["rows"]) == (1, 3)
    listed = pa.table(store.entries()).to_pylist()
    assert rows["sum", "AAA"]["bytes"] == sum(r["bytes"] for r in listed if r["symbol"] == "AAA")
    assert rows["sum", "AAA"]["oldest"] <= rows["sum", "AAA"]["newest"]


def test_maintain_counts_in_a_dry_run_and_removes_otherwise(store, cache_dir):
    kept, expired = fstore.Key("m", "KEEP", START, END), fstore.Key("m", "GONE", START, END)
    store.put(kept, make_table(2))
    store.put(expired, make_table(2))
    store.flush()
    # A row whose file is gone.
    gone = [r for r in pa.table(store.entries()).to_pylist() if r["symbol"] == "GONE"][0]
    (cache_dir / gone["path"]).unlink()
    dry = store.maintain(grace=0, dry_run=True)
    assert isinstance(dry, fstore.MaintainReport)
    assert (dry.rows_without_file, dry.expired_entries) == (1, 0), dry
    report = store.maintain(grace=0)
    assert report.rows_without_file == 1, report
    assert store.maintain(grace=0).rows_without_file == 0
    # Every entry is older than no time at all; a day's grace keeps them.
    assert store.maintain(max_age=0, grace=86400).expired_entries == 0
    expiry = store.maintain(max_age=0, grace=0)
    assert expiry.expired_entries == 1 and expiry.bytes_freed > 0, expiry
    assert not store.contains(kept)


def test_maintain_refuses_a_negative_duration(store):
    with pytest.raises(fstore.InvalidArgument, match="grace must be >= 0"):
        store.maintain(grace=-1)
    with pytest.raises(TypeError, match="max_age must be a number of seconds"):
        store.maintain(max_age="1h")


def test_maintain_on_postgresql(tmp_path):
    with fstore.Store(tmp_path / "cache", options=pg_options("maintain")) as store:
        store.put(fstore.Key("m", "PG", START, END), make_table(2))
        store.flush()
        assert store.maintain(max_age=0, grace=0).expired_entries == 1


def test_migrate_schema_lets_workers_run_without_auto_migrate(tmp_path):
    options = {**pg_options("schema"), "postgres.auto_migrate": False}
    with pytest.raises(fstore.Error):
        fstore.Store(tmp_path / "a", options=options)
    assert fstore.migrate_schema(options) is None
    with fstore.Store(tmp_path / "b", options=options) as store:
        store.put(fstore.Key("s", "S", START, END), make_table(1))
        assert store.manifest_backend == "postgres"


def test_migrate_manifest_copies_the_embedded_manifest_once(tmp_path):
    cache = tmp_path / "cache"
    with fstore.Store(cache, options={"manifest": "duckdb"}) as store:
        for symbol in ("A", "B"):
            store.put(fstore.Key("mig", symbol, START, END), make_table(2))
    options = pg_options("manifest")
    first = fstore.migrate_manifest(options, cache_dir=cache)
    assert first == fstore.MigrationReport(rows_read=2, inserted=2, already_present=0)
    again = fstore.migrate_manifest(options, cache_dir=cache)
    assert again == fstore.MigrationReport(rows_read=2, inserted=0, already_present=2)


def test_a_migration_refuses_bad_options(tmp_path):
    with pytest.raises(fstore.InvalidArgument, match="no.such"):
        fstore.migrate_schema({"no.such": "option"})


def test_the_log_level_silences_the_library(cache_dir, caplog, monkeypatch):
    for name in PG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    fstore.set_log_level("off")
    try:
        with caplog.at_level(logging.DEBUG, logger="fstore"):
            with fstore.Store(cache_dir, options=UNREACHABLE) as store:
                assert len(store.warnings) == 1
    finally:
        fstore.set_log_level("warn")
    assert [r for r in caplog.records if r.name == "fstore"] == []
    with pytest.raises(ValueError, match="one of off, error"):
        fstore.set_log_level("loud")
