"""Checked by mypy, which must refuse it: a compute returning something that
is not Arrow data breaks the `fstore.ComputeFn` Protocol."""

from __future__ import annotations

import fstore


def compute(key: fstore.Key) -> int:
    return 0


def call(store: fstore.Store, key: fstore.Key) -> fstore.ArrowStream:
    return store.get_or_compute(key, compute)
