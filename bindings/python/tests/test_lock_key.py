"""fstore.lock_key reproduces every reference vector (computed by libfstore)."""

import json

import pytest

import fstore
from conftest import lock_key_vectors_path

VECTORS = json.loads(lock_key_vectors_path().read_text(encoding="utf-8"))["lock_keys"]


def test_there_are_reference_vectors():
    assert len(VECTORS) >= 4


@pytest.mark.parametrize("vector", VECTORS, ids=[v["symbol"][:16] for v in VECTORS])
def test_lock_key_matches_vector(vector):
    assert fstore.lock_key(vector["symbol"]) == vector["key"]


def test_lock_key_is_a_signed_64_bit_int():
    keys = [fstore.lock_key(v["symbol"]) for v in VECTORS]
    assert all(isinstance(k, int) and -(2**63) <= k < 2**63 for k in keys)
    assert any(k < 0 for k in keys)


@pytest.mark.parametrize(
    "symbol, words",
    [("", "symbol is empty"), ("x" * 1025, "symbol is 1025 bytes long"), ("A\0B", "symbol contains a NUL byte")],
    ids=["empty", "too-long", "nul"],
)
def test_lock_key_refuses_bad_symbols(symbol, words):
    with pytest.raises(fstore.InvalidArgument, match=words) as info:
        fstore.lock_key(symbol)
    assert isinstance(info.value, ValueError)
    assert info.value.status == fstore.Status.INVALID_ARGUMENT


def test_lock_key_accepts_1024_bytes_of_utf8():
    symbol = "é" * 512  # 1,024 bytes
    assert isinstance(fstore.lock_key(symbol), int)
    with pytest.raises(fstore.InvalidArgument, match="1026 bytes"):
        fstore.lock_key(symbol + "é")
