"""Durations given as seconds (int or float) or `datetime.timedelta`, in the
milliseconds the C API takes."""

from __future__ import annotations

import datetime
import math
from typing import Any

from ._errors import InvalidArgument, Status

# What "forever" becomes: far beyond any wait, and no overflow in the library.
FOREVER_MS = 2**62


def to_ms(value: Any, what: str, hint: str = "") -> int:
    """`value` (seconds, or a timedelta) in whole milliseconds, rounded up;
    infinity is `FOREVER_MS`. `hint` completes the message for a negative value."""
    seconds = value.total_seconds() if isinstance(value, datetime.timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{what} must be a number of seconds or a datetime.timedelta, not {type(value).__name__}")
    if math.isnan(seconds) or seconds < 0:
        raise InvalidArgument(Status.INVALID_ARGUMENT, f"{what} must be >= 0 seconds{hint}, not {value!r}")
    if math.isinf(seconds):
        return FOREVER_MS
    return min(math.ceil(seconds * 1000), FOREVER_MS)
