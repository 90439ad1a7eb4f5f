"""The cache key of a `FeatureStore.get_or_compute` call, derived from its
arguments (docs/python-feature-store.md says how, with a worked example).

Only the parts are found here: the feature set's name, the date range of the
data, the config without its "feature_set". Validating them and naming the
entry (canonical config, entry id) is the library's job, through `Key`.
"""

from __future__ import annotations

import datetime
import functools
import sys
from typing import Any, Callable, Mapping

from ._errors import InvalidArgument, Status
from ._key import Key

__all__ = ["derive_key", "feature_set_name", "date_range", "FEATURE_SET"]

# The config member that names the feature set instead of the function.
FEATURE_SET = "feature_set"

_EPOCH = datetime.date(1970, 1, 1)
# Arrow timestamp units per day.
_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument(Status.INVALID_ARGUMENT, message)


def derive_key(
    symbol: str, data: Any, config: Mapping[str, Any], compute_func: Callable[..., Any], date_column: str = "date"
) -> Key:
    """The key `FeatureStore.get_or_compute(symbol, data, config, compute_func)` uses."""
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict, not {type(config).__name__}")
    start, end = date_range(data, date_column)
    key_config = {name: value for name, value in config.items() if name != FEATURE_SET}
    return Key(feature_set_name(config, compute_func), symbol, start, end, config=key_config)


def feature_set_name(config: Mapping[str, Any], compute_func: Callable[..., Any]) -> str:
    """``config["feature_set"]`` if present, else ``module.qualname`` of
    `compute_func`. A lambda, a `functools.partial` or a callable object has
    no name that tells it from others like it, so it needs the config's."""
    if FEATURE_SET in config:
        name = config[FEATURE_SET]
        if not isinstance(name, str) or not name:
            raise _invalid(f'config["{FEATURE_SET}"] must be a non-empty str, not {name!r}')
        return name
    if not callable(compute_func):
        raise TypeError(f"compute_func must be callable, not {type(compute_func).__name__}")
    hint = f'; name the feature set with config["{FEATURE_SET}"]'
    if isinstance(compute_func, functools.partial):
        raise _invalid(f"compute_func is a functools.partial, whose name says nothing of its bound arguments{hint}")
    module = getattr(compute_func, "__module__", None)
    qualname = getattr(compute_func, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise _invalid(f"compute_func ({type(compute_func).__name__} object) has no module and qualified name{hint}")
    if "<lambda>" in qualname:
        raise _invalid(f"compute_func is a lambda ({module}.{qualname}), which every lambda of its scope shares{hint}")
    return f"{module}.{qualname}"


def date_range(data: Any, date_column: str = "date") -> tuple[datetime.date, datetime.date]:
    """The first and last UTC calendar dates of the data's date column (for
    pandas: that column, else a DatetimeIndex or an index level of that name)."""
    pa = _pyarrow()
    if _is_pandas_frame(data):
        values, where = _pandas_dates(data, date_column)
    else:
        values, where = _arrow_dates(pa, data, date_column)
    if len(values) == 0:
        raise _invalid(f"the data is empty: {where} gives no start and end date")
    if values.null_count:
        raise _invalid(f"{where} holds {values.null_count} null value(s): every row needs a date")
    start, end = _utc_days(pa, values, where)
    return _EPOCH + datetime.timedelta(days=start), _EPOCH + datetime.timedelta(days=end)


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError as e:
        raise ImportError("fstore.FeatureStore needs pyarrow (pip install pyarrow)") from e
    return pyarrow


def _is_pandas_frame(data: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(data, pandas.DataFrame)


def _pandas_dates(frame: Any, column: str) -> tuple[Any, str]:
    import pandas as pd
    import pyarrow as pa

    if column in frame.columns:
        values, where = frame[column], f"column {column!r}"
    elif isinstance(frame.index, pd.DatetimeIndex) or frame.index.name == column:
        values, where = frame.index, "the index"
    elif isinstance(frame.index, pd.MultiIndex) and column in frame.index.names:
        values, where = frame.index.get_level_values(column), f"index level {column!r}"
    else:
        raise _invalid(
            f"the pandas DataFrame has no date column: no column {column!r}, no DatetimeIndex "
            f"and no index (level) named {column!r}"
        )
    if values.dtype == object:
        _one_time_zone(values, where)
    try:
        return pa.chunked_array([pa.Array.from_pandas(values)]), where
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise _invalid(f"{where} does not hold dates or timestamps ({e})") from e


def _one_time_zone(values: Any, where: str) -> None:
    """Refuses Python datetimes of several time zones, or naive and aware
    ones together: their dates would depend on which one is meant."""
    zones = set()
    for value in values:
        if isinstance(value, datetime.datetime):
            zones.add(None if value.tzinfo is None else str(value.tzinfo))
        elif isinstance(value, datetime.date):
            zones.add(None)
    if len(zones) > 1:
        shown = ", ".join(sorted("naive" if z is None else z for z in zones))
        raise _invalid(
            f"{where} mixes time zones ({shown}): convert it to one first, e.g. pandas.to_datetime(values, utc=True)"
        )


def _arrow_dates(pa: Any, data: Any, column: str) -> tuple[Any, str]:
    if isinstance(data, pa.RecordBatchReader):
        raise TypeError(
            "data is a RecordBatchReader, which can be read only once: pass a Table or a DataFrame, "
            "which both the key and compute_func can read"
        )
    if not isinstance(data, pa.Table) and not hasattr(type(data), "__arrow_c_stream__"):
        raise TypeError(
            f"data must be a pandas or polars DataFrame, a pyarrow Table or any object exporting "
            f"__arrow_c_stream__, not {type(data).__module__}.{type(data).__qualname__}"
        )
    table = data if isinstance(data, pa.Table) else pa.table(data)
    if column not in table.column_names:
        raise _invalid(f"the data has no date column {column!r} (its columns: {', '.join(table.column_names)})")
    return table.column(column), f"column {column!r}"


def _utc_days(pa: Any, values: Any, where: str) -> tuple[int, int]:
    """(min, max) of `values` as days since 1970-01-01 in UTC: dates as they
    are, timestamps with a time zone at their UTC instant, naive timestamps
    at their own calendar date."""
    import pyarrow.compute as pc

    kind = values.type
    if pa.types.is_date32(kind):
        per_day, ints = 1, values.cast(pa.int32())
    elif pa.types.is_date64(kind):
        per_day, ints = _PER_DAY["ms"], values.cast(pa.int64())
    elif pa.types.is_timestamp(kind):
        per_day, ints = _PER_DAY[kind.unit], values.cast(pa.int64())
    else:
        raise _invalid(
            f"{where} holds {kind} values, not dates or timestamps (convert it, e.g. with pandas.to_datetime "
            "or polars' str.to_date)"
        )
    bounds = pc.min_max(ints)
    return int(bounds["min"].as_py()) // per_day, int(bounds["max"].as_py()) // per_day
