"""`fstore_options` built from Python values, for `Store` and the migrations."""

from __future__ import annotations

import contextlib
import os
from ctypes import byref, c_void_p
from typing import Any, Iterator, Mapping, Optional

from ._errors import check
from ._key import encode_text
from ._lib import FstoreError, lib

__all__ = ["c_options"]


def _option_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, os.PathLike):
        return os.fsdecode(os.fspath(value))
    if isinstance(value, (str, int)):
        return str(value)
    raise TypeError(f"option {name!r}: expected a str, int, bool or path, not {type(value).__name__}")


@contextlib.contextmanager
def c_options(
    cache_dir: Optional[str | os.PathLike[str]], options: Optional[Mapping[str, Any]]
) -> Iterator[int]:
    """A new `fstore_options` holding `cache_dir` (if given) and `options`,
    each set through the library (which checks names and values); freed on exit."""
    settings: list[tuple[str, Any]] = []
    if cache_dir is not None:
        settings.append(("cache_dir", cache_dir))
    if options:
        if cache_dir is not None and "cache_dir" in options:
            raise TypeError("cache_dir is given both as an argument and in options")
        settings.extend(options.items())
    L = lib()
    opts = L.fstore_options_new()
    if not opts:
        raise MemoryError("fstore_options_new failed")
    err = FstoreError()
    try:
        for name, value in settings:
            if not isinstance(name, str):
                raise TypeError(f"option names must be str, not {type(name).__name__}")
            text = encode_text(_option_text(name, value), f"option {name!r}")
            check(L.fstore_options_set(opts, encode_text(name, "option name"), text, byref(err)), err)
        yield int(opts)
    finally:
        L.fstore_options_free(byref(c_void_p(opts)))
