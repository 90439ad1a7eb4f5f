"""`fstore.FeatureStore`: the interface of the original feature store, for
code that adopts libfstore by changing its import.

    from fstore import FeatureStore

    fs = FeatureStore()  # PG_MANIFEST_DSN / PG_HOST..., else ~/.feature_cache
    features = fs.get_or_compute("AAPL", prices, {"window": 20}, compute_features)

The key of a call is derived from its arguments as docs/python-feature-store.md
describes; the store underneath is an `fstore.Store`, which does the work.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Mapping, Optional

from ._admin import LockStats, PoolStats
from ._feature_key import derive_key
from ._key import Key
from ._store import Stats, Store

__all__ = ["FeatureStore"]


class FeatureStore:
    """``FeatureStore(cache_dir=None, *, dsn=None, options=None, date_column="date")``.

    With no arguments it is configured as the original was, from the
    environment: PostgreSQL from $PG_MANIFEST_DSN, or $PG_HOST, $PG_PORT,
    $PG_DATABASE, $PG_USER, $PG_PASSWORD; the cache directory
    $FSTORE_CACHE_DIR, else ~/.feature_cache. When PostgreSQL is not
    configured, or cannot be reached, it uses the embedded manifest in the
    cache directory (the fallback is a warning: `warnings`, and the "fstore"
    logger). `dsn` and `options` (`Store`'s options) set things explicitly.
    """

    def __init__(
        self,
        cache_dir: Optional[str | os.PathLike[str]] = None,
        *,
        dsn: Optional[str] = None,
        options: Optional[Mapping[str, Any]] = None,
        date_column: str = "date",
    ) -> None:
        settings = dict(options or {})
        if dsn is not None:
            if "postgres.dsn" in settings:
                raise TypeError("dsn is given both as an argument and in options")
            settings["postgres.dsn"] = dsn
        self.date_column = date_column
        self._store = Store(cache_dir, settings)

    @property
    def store(self) -> Store:
        """The `fstore.Store` underneath, for everything else it offers."""
        return self._store

    @property
    def use_pg_manifest(self) -> bool:
        """Whether the manifest (and the locking) is PostgreSQL's, rather
        than the embedded DuckDB manifest in the cache directory."""
        return self._store.manifest_backend == "postgres"

    @property
    def warnings(self) -> list[str]:
        """Warnings from opening the store, such as a fallback from PostgreSQL."""
        return self._store.warnings

    def key_for(self, symbol: str, data: Any, config: Mapping[str, Any], compute_func: Callable[..., Any]) -> Key:
        """The key `get_or_compute` uses for these arguments."""
        return derive_key(symbol, data, config, compute_func, self.date_column)

    @staticmethod
    def key_for_arguments(
        symbol: str,
        data: Any,
        config: Mapping[str, Any],
        compute_func: Callable[..., Any],
        date_column: str = "date",
    ) -> Key:
        """`key_for` without a store: the key these arguments name."""
        return derive_key(symbol, data, config, compute_func, date_column)

    def get_or_compute(
        self, symbol: str, data: Any, config: Mapping[str, Any], compute_func: Callable[[Any, Any], Any]
    ) -> Any:
        """The features of `symbol` over the dates of `data`, computed with
        ``compute_func(data, config)`` on a miss, by exactly one caller in
        the fleet while the others wait.

        `data` is a pandas or polars DataFrame, a pyarrow Table or anything
        exporting ``__arrow_c_stream__``; `compute_func` returns any of
        those, and receives `data` and `config` as given. Returns a pandas
        DataFrame when pandas is installed (its index as computed), else a
        pyarrow Table. A failing `compute_func` stores nothing and raises
        `fstore.CallbackFailed` from its exception.
        """
        key = self.key_for(symbol, data, config, compute_func)

        def compute(_key: Key) -> Any:
            return _arrow_of(compute_func(data, config))

        result = self._store.get_or_compute(key, compute)
        try:
            table = result.to_pyarrow()
        finally:
            result.close()
        pandas = _pandas()
        return table.to_pandas() if pandas is not None else table

    def stats(self) -> Stats:
        """Hits, misses, computes, waits... since the store was opened."""
        return self._store.stats()

    def lock_stats(self) -> Optional[LockStats]:
        """Advisory locks held and waiting in PostgreSQL; None on the embedded manifest."""
        return self._store.lock_stats()

    def pool_stats(self) -> Optional[PoolStats]:
        """The PostgreSQL connection pool's figures; None on the embedded manifest."""
        return self._store.pool_stats()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        backend = "PostgreSQL" if not self._store.closed and self.use_pg_manifest else "embedded"
        return f"<fstore.FeatureStore {'closed' if self._store.closed else backend}>"


def _pandas() -> Any:
    """pandas if it can be imported, else None."""
    try:
        import pandas
    except ImportError:
        return None
    return pandas


def _arrow_of(value: Any) -> Any:
    """What compute_func returned, as Arrow data the store accepts. A pandas
    DataFrame keeps its index and dtypes in the schema's pandas metadata, so
    that it reads back as it was."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        import pyarrow as pa

        return pa.Table.from_pandas(value)
    return value
