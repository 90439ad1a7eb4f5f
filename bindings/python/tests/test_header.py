"""The binding's copies of the C API's constants and struct layouts match
include/fstore.h, as the system C compiler reads it: a small C program
prints every struct's size and field offsets and every status code, and
each is compared with what ctypes declares. New status codes in the header
must reach the binding too."""

from __future__ import annotations

import ctypes
import os
import pathlib
import re
import shutil
import subprocess

import pytest

import importlib

from conftest import REPO_ROOT
from fstore import Status

_lib = importlib.import_module("fstore._lib")  # the module (the package's `_lib` attribute is its loader)

HEADER = REPO_ROOT / "include" / "fstore.h"

# The C type of each struct the binding declares.
STRUCTS: dict[str, type[ctypes.Structure]] = {
    "struct fstore_error": _lib.FstoreError,
    "struct fstore_key": _lib.FstoreKey,
    "struct fstore_scan_request": _lib.FstoreScanRequest,
    "struct fstore_stats": _lib.FstoreStats,
    "struct ArrowArrayStream": _lib.ArrowArrayStream,
}


def header_statuses() -> dict[str, int]:
    text = HEADER.read_text(encoding="utf-8")
    return {name: int(value) for name, value in re.findall(r"^#define FSTORE_STATUS_(\w+) (\d+)$", text, re.M)}


def c_program() -> str:
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "fstore.h"', "int main(void) {"]
    for c_type, struct in STRUCTS.items():
        lines.append(f'  printf("{c_type} size %zu\\n", sizeof({c_type}));')
        for field in struct._fields_:
            lines.append(f'  printf("{c_type} {field[0]} %zu\\n", offsetof({c_type}, {field[0]}));')
    for name in header_statuses():
        lines.append(f'  printf("status {name} %d\\n", (int)FSTORE_STATUS_{name});')
    lines.append('  printf("entry_id_size %d\\n", (int)FSTORE_ENTRY_ID_SIZE);')
    lines += ["  return 0;", "}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}) to read include/fstore.h with: install gcc, or set CC")
    work = tmp_path_factory.mktemp("header")
    (work / "layout.c").write_text(c_program())
    build = subprocess.run(
        [compiler, "-std=c99", "-Wall", "-Werror", "-I", str(HEADER.parent), "-o", str(work / "layout"), str(work / "layout.c")],
        capture_output=True, text=True, timeout=120,
    )
    assert build.returncode == 0, build.stderr  # a field the header lacks fails here, by name
    run = subprocess.run([str(work / "layout")], capture_output=True, text=True, timeout=30, check=True)
    return {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in run.stdout.splitlines()}


@pytest.mark.parametrize("c_type", STRUCTS)
def test_struct_layouts_match_the_header(measured: dict[str, int], c_type: str) -> None:
    struct = STRUCTS[c_type]
    assert ctypes.sizeof(struct) == measured[f"{c_type} size"], f"sizeof({c_type})"
    for field in struct._fields_:
        name = field[0]
        assert getattr(struct, name).offset == measured[f"{c_type} {name}"], f"offsetof({c_type}, {name})"


def test_status_codes_match_the_header(measured: dict[str, int]) -> None:
    in_header = {name: measured[f"status {name}"] for name in header_statuses()}
    assert in_header, "the header defines FSTORE_STATUS_* constants"
    assert {s.name: int(s) for s in Status} == in_header
    # ... and each failing status has an exception class of its own.
    errors = importlib.import_module("fstore._errors")
    assert set(errors._CLASSES) == set(Status) - {Status.OK}
    assert (_lib.STATUS_OK, _lib.STATUS_NOT_FOUND, _lib.STATUS_CANCELLED, _lib.STATUS_CALLBACK_FAILED) == (
        in_header["OK"], in_header["NOT_FOUND"], in_header["CANCELLED"], in_header["CALLBACK_FAILED"])


def test_the_entry_id_size_matches_the_header(measured: dict[str, int]) -> None:
    assert _lib.ENTRY_ID_SIZE == measured["entry_id_size"]
