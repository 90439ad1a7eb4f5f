"""The package's version is the library's, and the library is found where
the package says: bundled beside it first, then FSTORE_LIBRARY, then
FSTORE_LIB_DIR. Each case imports the package in a fresh interpreter."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig

import fstore
from conftest import REPO_ROOT

PACKAGE = pathlib.Path(fstore.__file__).resolve().parent


def crate_version() -> str:
    text = (REPO_ROOT / "Cargo.toml").read_text(encoding="utf-8")
    package = re.search(r"^\[package\]\s*$(.*?)(?=^\[)", text, re.M | re.S)
    assert package, "Cargo.toml has a [package] table"
    version = re.search(r'^version\s*=\s*"([^"]+)"', package.group(1), re.M)
    assert version, "Cargo.toml's [package] has a version"
    return version.group(1)


def test_the_package_library_and_crate_versions_are_one() -> None:
    assert fstore.__version__ == crate_version()
    assert fstore.library_version() == fstore.__version__


def run_python(code: str, pythonpath: pathlib.Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("FSTORE_LIBRARY", "FSTORE_LIB_DIR", "PYTHONPATH")}
    clean.update(env, PYTHONPATH=str(pythonpath))
    # From pythonpath itself: `-c` puts the working directory first on sys.path.
    return subprocess.run(
        [sys.executable, "-c", code], env=clean, cwd=pythonpath, capture_output=True, text=True, timeout=60
    )


def test_a_library_of_another_version_fails_the_import_naming_both() -> None:
    # The real library, and a package that claims another version.
    code = (
        "import sys, types\n"
        "sys.modules['fstore._version'] = types.SimpleNamespace(__version__='9.8.7')\n"
        "import fstore\n"
    )
    run = run_python(code, PACKAGE.parent, FSTORE_LIBRARY=fstore.library_path())
    assert run.returncode != 0
    assert "fstore._lib.LibraryNotFound" in run.stderr, run.stderr
    assert f"is libfstore {fstore.__version__}, but this fstore package is 9.8.7" in run.stderr, run.stderr


def test_the_bundled_library_comes_first(tmp_path: pathlib.Path) -> None:
    copy = tmp_path / "fstore"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "_libfstore*"))
    bundled = copy / f"_libfstore{sysconfig.get_config_var('EXT_SUFFIX')}"
    shutil.copyfile(fstore.library_path(), bundled)
    code = "import fstore; print(fstore.library_path())"
    run = run_python(code, tmp_path, FSTORE_LIBRARY=str(tmp_path / "nowhere.so"), FSTORE_LIB_DIR=str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(bundled)


def test_without_a_bundled_library_fstore_library_comes_before_fstore_lib_dir(tmp_path: pathlib.Path) -> None:
    copy = tmp_path / "fstore"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "_libfstore*"))
    code = "import fstore; print(fstore.library_path())"
    library = fstore.library_path()
    run = run_python(code, tmp_path, FSTORE_LIBRARY=library, FSTORE_LIB_DIR=str(tmp_path / "empty"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == library
    run = run_python(code, tmp_path, FSTORE_LIBRARY=str(tmp_path / "nowhere.so"))
    assert run.returncode != 0
    assert "FSTORE_LIBRARY=" in run.stderr and "is not a file" in run.stderr, run.stderr
