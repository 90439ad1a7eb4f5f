"""The library's log lines reach Python's logging module."""

from __future__ import annotations

import logging

import fstore

PG_VARIABLES = ("PG_MANIFEST_DSN", "PG_HOST", "PG_PORT", "PG_DATABASE", "PG_USER", "PG_PASSWORD")


def test_a_fallback_from_postgresql_is_a_warning_of_the_fstore_logger(cache_dir, caplog, monkeypatch):
    for name in PG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    unreachable = {"postgres.host": "127.0.0.1", "postgres.port": "1", "postgres.connect_timeout_ms": "300"}
    with caplog.at_level(logging.WARNING, logger="fstore"):
        with fstore.Store(cache_dir, options=unreachable) as store:
            assert store.manifest_backend == "duckdb"
    lines = [r for r in caplog.records if r.name == "fstore"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.WARNING
    assert "127.0.0.1" in lines[0].getMessage() and "DuckDB" in lines[0].getMessage()
    assert not lines[0].getMessage().startswith("libfstore:")
