"""Code written for the original interface runs unchanged apart from the
import: a program in the original style (original_style.py), configured only
by environment variables, on the embedded manifest in ~/.feature_cache, on
PostgreSQL (PG_MANIFEST_DSN), and falling back from an unreachable PG_HOST;
two processes at once compute once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid

import pytest

from conftest import HERE

pytest.importorskip("pyarrow")
pytest.importorskip("pandas")
SCRIPT = HERE / "original_style.py"
CONFIG = ("PG_MANIFEST_DSN", "PG_HOST", "PG_PORT", "PG_DATABASE", "PG_USER", "PG_PASSWORD", "FSTORE_CACHE_DIR")


def environment(home, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG}
    env.update(settings, HOME=str(home))
    return env


def run_programs(tmp_path, frames: str, count: int, **settings: str) -> tuple[list[dict], int, list[str]]:
    """Starts `count` programs at once; returns their outputs, the number of
    computes among them, and their stderr."""
    if frames == "polars":
        pytest.importorskip("polars")
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    symbol = f"AAPL{uuid.uuid4().hex[:8]}"  # its own entry on a shared server
    env = environment(tmp_path / "home", **settings)
    (tmp_path / "home").mkdir(exist_ok=True)
    command = [sys.executable, str(SCRIPT), frames, symbol, str(meeting), str(count)]
    programs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(count)]
    outputs, errors = [], []
    for program in programs:
        out, err = program.communicate(timeout=120)
        assert program.returncode == 0, err
        outputs.append(json.loads(out))
        errors.append(err)
    computes = len([n for n in os.listdir(meeting) if n.startswith("computed.")])
    return outputs, computes, errors


@pytest.mark.parametrize("frames", ["pandas", "polars"])
def test_the_embedded_manifest_in_the_home_directory(tmp_path, frames):
    outputs, computes, _ = run_programs(tmp_path, frames, 2)
    assert computes == 1
    assert outputs[0]["frame"] == outputs[1]["frame"]
    assert all(o["use_pg_manifest"] is False and o["warnings"] == [] and o["lock_stats"] is None for o in outputs)
    assert outputs[0]["type"] == "pandas"
    assert outputs[0]["frame"]["ma"] == ["10.0", "10.5", "11.5"]
    cache = tmp_path / "home" / ".feature_cache"
    assert list((cache / "data").rglob("*.parquet")), "the entry is in ~/.feature_cache"


@pytest.mark.parametrize("frames", ["pandas", "polars"])
def test_postgresql_from_pg_manifest_dsn(tmp_path, frames):
    dsn = os.environ.get("FSTORE_TEST_PG_DSN")
    if not dsn:
        pytest.skip("set FSTORE_TEST_PG_DSN to a PostgreSQL server (tests/run_all.sh starts one)")
    outputs, computes, _ = run_programs(tmp_path, frames, 2, PG_MANIFEST_DSN=dsn)
    assert computes == 1
    assert outputs[0]["frame"] == outputs[1]["frame"]
    assert all(o["use_pg_manifest"] is True and o["warnings"] == [] for o in outputs)
    assert all(isinstance(o["lock_stats"], int) for o in outputs)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_pg_host_falls_back_with_a_warning(tmp_path):
    outputs, computes, errors = run_programs(tmp_path, "pandas", 1, PG_HOST="127.0.0.1", PG_PORT=str(closed_port()))
    assert computes == 1
    assert outputs[0]["use_pg_manifest"] is False
    (warning,) = outputs[0]["warnings"]
    assert "127.0.0.1" in warning and "embedded DuckDB manifest" in warning
    # Python's logging prints an unhandled warning of the "fstore" logger on stderr.
    assert warning in errors[0]
