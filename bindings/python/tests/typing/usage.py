"""Checked by mypy --strict (run_tests.sh), never run: how user code is
typed against the package's hints and the compute Protocol."""

from __future__ import annotations

import datetime

import fstore


class Table:
    """A stand-in for any Arrow producer (a pyarrow Table, a polars DataFrame)."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        raise NotImplementedError


def compute(key: fstore.Key) -> Table:
    return Table()


def typed_calls(store: fstore.Store) -> int:
    key = fstore.Key("returns", "AAPL", datetime.date(2024, 1, 1), datetime.date(2024, 6, 30), config={"w": 20})
    as_protocol: fstore.ComputeFn = compute
    result: fstore.ArrowStream = store.get_or_compute(key, as_protocol, columns=["ret"], timeout=30.0)
    maybe: fstore.ArrowStream | None = store.get(key)
    scan: fstore.Scan = store.scan("returns", 19000, 19100, symbols=["AAPL"])
    missing: list[fstore.MissingEntry] = scan.missing
    stats: fstore.Stats = store.stats()
    return result.num_rows + (maybe.num_rows if maybe else 0) + len(missing) + stats.hits + fstore.lock_key("AAPL")
