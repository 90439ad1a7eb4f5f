"""The library's log lines (such as a fallback from PostgreSQL to the
embedded manifest) go to the standard `logging` module, logger "fstore".
Which lines the library emits at all is set by FSTORE_LOG (warn by default)."""

from __future__ import annotations

import atexit
import logging
from ctypes import byref

from ._errors import check
from ._lib import LOG_FN, FstoreError, lib

logger = logging.getLogger("fstore")

# fstore_log_level: 1 error, 2 warn, 3 info, 4 debug, 5 trace.
_LEVELS = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG, 5: logging.DEBUG}


def _forward(userdata: object, level: int, message: bytes) -> None:
    try:
        logger.log(_LEVELS.get(level, logging.WARNING), "%s", message.decode("utf-8", "replace"))
    except Exception:  # a log line must never raise into the library
        pass


# Kept for the life of the process: the library holds a pointer to it.
_callback = LOG_FN(_forward)


def _stop() -> None:
    # Before the interpreter goes away, lines go back to stderr.
    lib().fstore_log_set_callback(LOG_FN(), None)


def install() -> None:
    lib().fstore_log_set_callback(_callback, None)
    atexit.register(_stop)


# fstore_log_level values by the names FSTORE_LOG takes.
LEVELS = {"off": 0, "error": 1, "warn": 2, "info": 3, "debug": 4, "trace": 5}


def set_level(level: str) -> None:
    """Which of the library's lines are emitted at all: "off", "error",
    "warn", "info", "debug" or "trace" (as FSTORE_LOG; default "warn"). The
    "fstore" logger's own level then filters what it receives."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    err = FstoreError()
    check(lib().fstore_log_set_level(LEVELS[level], byref(err)), err)
