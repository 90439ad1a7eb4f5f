"""The library's log lines (such as a fallback from PostgreSQL to the
embedded manifest) go to the standard `logging` module, logger "fstore".
Which lines the library emits at all is set by FSTORE_LOG (warn by default)."""

from __future__ import annotations

import atexit
import logging

from ._lib import LOG_FN, lib

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
