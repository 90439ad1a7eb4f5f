"""`Store.scan`: many entries at once. The library selects, reads and
verifies; this module converts the arguments and the results."""

from __future__ import annotations

from ctypes import POINTER, byref, c_char_p, cast
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Optional

from ._arrow import ArrowStream
from ._errors import check
from ._key import Key, _config_text, encode_text, to_days
from ._lib import ArrowArrayStream, FstoreError, FstoreScanRequest, lib

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow

__all__ = ["MissingEntry", "Scan"]


@dataclass(frozen=True)
class MissingEntry:
    """An entry the manifest lists that the scan could not read, and why."""

    key: Key
    reason: str


class Scan:
    """The result of `Store.scan`.

    `data` holds the rows, with the key columns ``fstore_symbol``,
    ``fstore_start_date`` and ``fstore_end_date`` in front; the object itself
    implements the Arrow PyCapsule interface, so ``pyarrow.table(scan)`` or
    ``pyarrow.RecordBatchReader.from_stream(scan)`` read it. `missing` lists
    the entries whose file is gone or fails verification (never computed);
    `missing_data` holds them as Arrow data (feature_set, symbol, start_date,
    end_date, config, reason). Both read any number of times.
    """

    __slots__ = ("data", "missing_data", "_missing")

    def __init__(self, data: ArrowStream, missing: ArrowStream) -> None:
        self.data = data
        self.missing_data = missing
        self._missing: Optional[list[MissingEntry]] = None

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self.data.__arrow_c_stream__(requested_schema)

    def to_pyarrow(self) -> "pyarrow.Table":
        """`data` as a `pyarrow.Table` (needs pyarrow)."""
        return self.data.to_pyarrow()

    def to_polars(self) -> "polars.DataFrame":
        """`data` as a `polars.DataFrame` (needs polars)."""
        return self.data.to_polars()

    def to_pandas(self) -> "pandas.DataFrame":
        """`data` as a `pandas.DataFrame` (needs pandas and pyarrow)."""
        return self.data.to_pandas()

    @property
    def missing(self) -> list[MissingEntry]:
        """The missing entries (read with pyarrow on first use)."""
        if self._missing is None:
            try:
                import pyarrow
            except ImportError as e:
                raise ImportError("Scan.missing needs pyarrow (pip install pyarrow)") from e
            table = pyarrow.RecordBatchReader.from_stream(self.missing_data).read_all()
            self._missing = [
                MissingEntry(
                    Key(row["feature_set"], row["symbol"], row["start_date"], row["end_date"], row["config"]),
                    row["reason"],
                )
                for row in table.to_pylist()
            ]
        return self._missing

    def close(self) -> None:
        self.data.close()
        self.missing_data.close()

    def __repr__(self) -> str:
        return f"<fstore.Scan data={self.data!r}>"


def _strings(values: Optional[Iterable[str]], what: str) -> tuple[Any, int]:
    """A C array of the encoded values (non-NULL even when empty, so that the
    library can tell an empty list from none), and its length."""
    if values is None:
        return None, 0
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of str, not a single string")
    encoded = [encode_text(v, f"{what}[{i}]") for i, v in enumerate(values)]
    array = (c_char_p * max(len(encoded), 1))(*encoded)
    return cast(array, POINTER(c_char_p)), len(encoded)


def run(handle: Optional[int], feature_set: str, start_date: Any, end_date: Any, symbols: Optional[Iterable[str]],
        config: Any, columns: Optional[Iterable[str]]) -> Scan:
    symbol_array, symbol_count = _strings(symbols, "symbols")
    column_array, column_count = _strings(columns, "columns")
    config_text = _config_text(config)
    request = FstoreScanRequest(
        feature_set=encode_text(feature_set, "feature_set"),
        symbols=symbol_array,
        symbol_count=symbol_count,
        start_date=to_days(start_date, "start_date"),
        end_date=to_days(end_date, "end_date"),
        config=None if config_text is None else encode_text(config_text, "config"),
        columns=column_array,
        column_count=column_count,
    )
    out, missing, err = ArrowArrayStream(), ArrowArrayStream(), FstoreError()
    check(lib().fstore_store_scan(handle, byref(request), byref(out), byref(missing), byref(err)), err)
    return Scan(ArrowStream(out), ArrowStream(missing))
