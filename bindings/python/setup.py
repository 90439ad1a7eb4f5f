"""Builds libfstore with cargo (always --release) and bundles it inside the
package, beside the Python modules, as `fstore/_libfstore*.so`.

cargo builds into $CARGO_TARGET_DIR when it is set, else into the clone's
own `target/` directory: either way one that outlives pip's temporary build
environment, so the bundled DuckDB (a long C++ build) compiles once, not on
every install.
"""

from __future__ import annotations

import pathlib
import re

from setuptools import setup
from setuptools_rust import Binding, RustExtension, Strip

HERE = pathlib.Path(__file__).resolve().parent
CRATE_MANIFEST = HERE.parent.parent / "Cargo.toml"


def crate_version() -> str:
    """The `version` of Cargo.toml's [package] table."""
    text = CRATE_MANIFEST.read_text(encoding="utf-8")
    package = re.search(r"^\[package\]\s*$(.*?)(?=^\[)", text, re.M | re.S)
    version = package and re.search(r'^version\s*=\s*"([^"]+)"', package.group(1), re.M)
    if not version:
        raise SystemExit(f"no [package] version in {CRATE_MANIFEST}")
    return version.group(1)


def crate_types() -> str:
    """Cargo.toml's [lib] crate-type list, e.g. "cdylib,staticlib,rlib".
    Asking cargo for exactly those (rather than setuptools-rust's default,
    the cdylib alone) makes this the same build as `cargo build --release`,
    so each finds the other's output fresh instead of rebuilding it."""
    text = CRATE_MANIFEST.read_text(encoding="utf-8")
    lib = re.search(r"^\[lib\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    types = lib and re.search(r"^crate-type\s*=\s*\[([^\]]*)\]", lib.group(1), re.M)
    names = re.findall(r'"([^"]+)"', types.group(1)) if types else []
    if "cdylib" not in names:
        raise SystemExit(f"{CRATE_MANIFEST}'s [lib] crate-type lacks cdylib, the library this package loads")
    return ",".join(names)


def package_version() -> str:
    """`fstore.__version__`, which must be the library's version: the package
    refuses at import a library of another version."""
    text = (HERE / "fstore" / "_version.py").read_text(encoding="utf-8")
    version = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    if not version:
        raise SystemExit("no __version__ in fstore/_version.py")
    return version.group(1)


if not CRATE_MANIFEST.is_file():
    raise SystemExit(
        f"{CRATE_MANIFEST} not found: install from a clone of the repository "
        "(pip install ./bindings/python), which holds the Rust library this package bundles"
    )
if crate_version() != package_version():
    raise SystemExit(
        f"fstore/_version.py says {package_version()} but {CRATE_MANIFEST} says {crate_version()}: "
        "change both together"
    )

setup(
    version=package_version(),
    rust_extensions=[
        RustExtension(
            "fstore._libfstore",
            path=str(CRATE_MANIFEST),
            binding=Binding.NoBinding,
            args=["--crate-type", crate_types()],
            debug=False,  # --release, the profile every build of this repository uses
            py_limited_api=False,
            # The bundled copy only (`strip -S`; cargo's output keeps its line
            # tables): a third of the size, and a wheel that zips that much faster.
            strip=Strip.Debug,
        )
    ],
    zip_safe=False,
)
