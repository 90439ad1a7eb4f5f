"""The package's type hints hold under mypy --strict (configured in
pyproject.toml), a user's typed code checks against them, and the compute
Protocol refuses a callable that returns no Arrow data."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

PACKAGE_ROOT = pathlib.Path(__file__).resolve().parents[1]
TYPING = PACKAGE_ROOT / "tests" / "typing"


def mypy(*paths: pathlib.Path) -> subprocess.CompletedProcess[str]:
    cache = pathlib.Path(os.environ.get("FSTORE_MYPY_CACHE", pathlib.Path.home() / ".cache" / "fstore" / "mypy"))
    command = [sys.executable, "-m", "mypy", "--cache-dir", str(cache), *map(str, paths)]
    return subprocess.run(command, cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=300)


def test_the_package_and_typed_user_code_pass_mypy_strict() -> None:
    run = mypy(PACKAGE_ROOT / "fstore", TYPING / "usage.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Success: no issues found" in run.stdout


def test_a_compute_returning_no_arrow_data_is_a_type_error() -> None:
    run = mypy(TYPING / "bad_compute.py")
    assert run.returncode == 1, run.stdout + run.stderr
    assert 'Argument 2 to "get_or_compute" of "Store" has incompatible type' in run.stdout, run.stdout
    assert "ComputeFn" in run.stdout, run.stdout


def test_the_package_ships_its_type_marker() -> None:
    assert (PACKAGE_ROOT / "fstore" / "py.typed").is_file()
