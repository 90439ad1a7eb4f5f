"""Shared fixtures: a fresh cache directory and store per test, small tables."""

from __future__ import annotations

import datetime
import itertools
import os
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE.parent))  # the package, when it is not installed

import fstore  # noqa: E402

START = datetime.date(2024, 1, 2)
END = datetime.date(2024, 3, 29)
_names = itertools.count()


def lock_key_vectors_path() -> pathlib.Path:
    return pathlib.Path(os.environ.get("FSTORE_LOCK_KEY_VECTORS") or REPO_ROOT / "tests" / "vectors" / "lock_keys.json")


@pytest.fixture
def cache_dir(tmp_path) -> pathlib.Path:
    return tmp_path / "cache"


@pytest.fixture
def store(cache_dir):
    with fstore.Store(cache_dir) as s:
        yield s


@pytest.fixture
def key(request) -> fstore.Key:
    """A key no other test uses."""
    return fstore.Key("features", f"SYM{next(_names)}", START, END, config={"window": 20})


def make_table(rows: int = 5, offset: int = 0):
    pa = pytest.importorskip("pyarrow")
    return pa.table(
        {
            "a": pa.array(range(offset, offset + rows), pa.int64()),
            "b": pa.array([f"row {i}" for i in range(offset, offset + rows)]),
            "c": pa.array([i / 2 for i in range(offset, offset + rows)], pa.float64()),
        }
    )
