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


def typed_operations(store: fstore.Store) -> int:
    pool: fstore.PoolStats | None = store.pool_stats()
    locks: fstore.LockStats | None = store.lock_stats()
    report: fstore.MaintainReport = store.maintain(max_age=datetime.timedelta(days=30), grace=60.0, dry_run=True)
    migrated: fstore.MigrationReport = fstore.migrate_manifest({"postgres.dsn": "host=db"}, cache_dir="/cache")
    warnings: list[str] = store.warnings
    summary: fstore.ArrowStream = store.summary()
    return (pool.size if pool else 0) + (locks.held if locks else 0) + report.expired_entries + migrated.inserted + len(warnings) + summary.num_rows


def typed_feature_store() -> bool:
    with fstore.FeatureStore() as fs:
        key: fstore.Key = fs.key_for("AAPL", Table(), {"window": 20}, lambda data, config: Table())
        return fs.use_pg_manifest and key.entry_id != ""
