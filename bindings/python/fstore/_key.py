"""`fstore.Key`: the five parts of a cache key, converted for the C API.

The library validates keys (name lengths, date order, config JSON) and
canonicalises configs; this module only converts Python values, and asks the
library (`fstore_key_canonical`) what entry a key names, so that keys
compare and hash as the library identifies entries.
"""

from __future__ import annotations

import ctypes
import datetime
import json
import operator
from typing import Any

from ._errors import Error, InvalidArgument, Status, check
from ._lib import ENTRY_ID_SIZE, FstoreError, FstoreKey, lib

__all__ = ["Key", "to_days", "encode_text"]

_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_INT32 = (-(2**31), 2**31 - 1)


def to_days(value: datetime.date | int, what: str) -> int:
    """Days since 1970-01-01 (Arrow date32) of a `datetime.date` (or the date
    part of a `datetime.datetime`) or an integer count of days."""
    if isinstance(value, datetime.date):
        return value.toordinal() - _EPOCH_ORDINAL
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a datetime.date or an int (days since 1970-01-01), not bool")
    try:
        days = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{what} must be a datetime.date or an int (days since 1970-01-01), not {type(value).__name__}"
        ) from None
    if not _INT32[0] <= days <= _INT32[1]:
        raise InvalidArgument(Status.INVALID_ARGUMENT, f"{what} {days} is out of range for a 32-bit day count")
    return days


def encode_text(value: str, what: str) -> bytes:
    """UTF-8 bytes of `value` for a NUL-terminated C string."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidArgument(Status.INVALID_ARGUMENT, f"{what} is not valid UTF-8: {e.reason}") from None
    if b"\0" in data:
        raise InvalidArgument(Status.INVALID_ARGUMENT, f"{what} contains a NUL byte")
    return data


def _config_text(config: Any) -> str | None:
    if config is None or isinstance(config, str):
        return config
    if isinstance(config, (bytes, bytearray)):
        raise TypeError("config must be JSON text (str) or a JSON-serialisable value such as a dict, not bytes")
    try:
        return json.dumps(config, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidArgument(Status.INVALID_ARGUMENT, f"config cannot be written as JSON: {e}") from e


def _show(days: int) -> str:
    try:
        return repr(datetime.date.fromordinal(days + _EPOCH_ORDINAL))
    except (ValueError, OverflowError):
        return str(days)


class Key:
    """What a worker asks for: ``Key(feature_set, symbol, start_date, end_date, config=None)``.

    Dates are `datetime.date` or days since 1970-01-01; `end_date` is
    inclusive. `config` is JSON text or a JSON-serialisable value (a dict or
    list, ...); equal configs name the same entry whatever their key order or
    spacing. Keys are immutable and hashable; two keys are equal exactly when
    they name the same entry (``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1.0}``
    do), as the library decides. A key the library refuses (a bad config,
    say) equals only a key of the same parts.
    """

    __slots__ = ("feature_set", "symbol", "start_date", "end_date", "config", "_c", "_identity")

    feature_set: str
    symbol: str
    start_date: int
    end_date: int
    config: str | None

    def __init__(
        self,
        feature_set: str,
        symbol: str,
        start_date: datetime.date | int,
        end_date: datetime.date | int,
        config: Any = None,
    ):
        for name, value in (("feature_set", feature_set), ("symbol", symbol)):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str, not {type(value).__name__}")
        init = object.__setattr__
        init(self, "feature_set", feature_set)
        init(self, "symbol", symbol)
        init(self, "start_date", to_days(start_date, "start_date"))
        init(self, "end_date", to_days(end_date, "end_date"))
        init(self, "config", _config_text(config))
        init(self, "_c", None)
        init(self, "_identity", None)

    @property
    def start(self) -> datetime.date:
        """`start_date` as a `datetime.date`."""
        return datetime.date.fromordinal(self.start_date + _EPOCH_ORDINAL)

    @property
    def end(self) -> datetime.date:
        """`end_date` as a `datetime.date`."""
        return datetime.date.fromordinal(self.end_date + _EPOCH_ORDINAL)

    _c: FstoreKey | None
    # ("entry", entry id, canonical config) for a valid key, else
    # ("parts", its parts, the library's error).
    _identity: tuple[Any, ...] | None

    def _parts(self) -> tuple[str, str, int, int, str | None]:
        return (self.feature_set, self.symbol, self.start_date, self.end_date, self.config)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("fstore.Key is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return self is other or self._identify()[:2] == other._identify()[:2]

    def __hash__(self) -> int:
        return hash(self._identify()[:2])

    @property
    def entry_id(self) -> str:
        """The id (hex) of the entry this key names: equal exactly for keys
        that name one entry. Raises `InvalidArgument` for a key the library
        refuses."""
        return str(self._valid_identity()[1])

    @property
    def canonical_config(self) -> str:
        """The config as the library identifies it (canonical JSON)."""
        return str(self._valid_identity()[2])

    def _valid_identity(self) -> tuple[Any, ...]:
        identity = self._identify()
        if identity[0] != "entry":
            raise identity[2]
        return identity

    def _identify(self) -> tuple[Any, ...]:
        """What names this key's entry, asked of the library once per key."""
        identity = self._identity
        if identity is None:
            try:
                identity = ("entry", *_canonical(self.to_c()))
            except Error as e:
                identity = ("parts", self._parts(), e)
            object.__setattr__(self, "_identity", identity)
        return identity

    def __repr__(self) -> str:
        config = "" if self.config is None else f", config={self.config!r}"
        return f"Key({self.feature_set!r}, {self.symbol!r}, {_show(self.start_date)}, {_show(self.end_date)}{config})"

    def __reduce__(self) -> tuple[type[Key], tuple[str, str, int, int, str | None]]:
        return (Key, self._parts())

    def to_c(self) -> FstoreKey:
        """The `fstore_key` struct (it keeps its encoded strings alive).
        Made once per key: the key is immutable and the library only reads
        the struct, so every call and thread may share it."""
        c = self._c
        if c is None:
            c = FstoreKey(
                feature_set=encode_text(self.feature_set, "feature_set"),
                symbol=encode_text(self.symbol, "symbol"),
                start_date=self.start_date,
                end_date=self.end_date,
                config=None if self.config is None else encode_text(self.config, "config"),
            )
            object.__setattr__(self, "_c", c)
        return c


def _canonical(key: FstoreKey) -> tuple[str, str]:
    """(entry id, canonical config) of `key`, from the library."""
    config = ctypes.c_void_p()
    entry_id = ctypes.create_string_buffer(ENTRY_ID_SIZE)
    err = FstoreError()
    L = lib()
    check(L.fstore_key_canonical(ctypes.byref(key), ctypes.byref(config), entry_id, ctypes.byref(err)), err)
    try:
        text = ctypes.string_at(config.value).decode("utf-8") if config.value else ""
    finally:
        L.fstore_string_free(ctypes.byref(config))
    return entry_id.value.decode("ascii"), text
