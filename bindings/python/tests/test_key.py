"""Keys compare and hash as the library identifies entries
(fstore_key_canonical): two keys that name one entry are equal and hash
alike; keys that name different entries are not equal."""

from __future__ import annotations

import datetime
import pickle

import pytest

import fstore
from conftest import END, START, make_table

pa = pytest.importorskip("pyarrow")


def key(config: object, symbol: str = "AAPL", start: datetime.date = START) -> fstore.Key:
    return fstore.Key("returns", symbol, start, END, config=config)


def test_keys_naming_one_entry_are_equal_and_hash_alike(store):
    a, b = key({"a": 1, "b": 2}), key({"b": 2, "a": 1.0})
    assert a.config != b.config, "different texts"
    assert a == b and hash(a) == hash(b)
    assert a.entry_id == b.entry_id and len(a.entry_id) == 64
    assert a.canonical_config == b.canonical_config == '{"a":1,"b":2}'
    assert key('  {"b":2,   "a":10e-1}') == a
    assert len({a, b, key('{"a":1,"b":2}')}) == 1
    # And the library agrees: the entry stored under one is read under the other.
    store.put(a, make_table(3))
    assert pa.table(store.get(b)).equals(make_table(3))


def test_keys_naming_different_entries_differ():
    base = key({"t": 1700000000000000000})
    beyond_double = key({"t": 1700000000000000001})  # the same double, another number
    assert float(1700000000000000000) == float(1700000000000000001)
    others = [beyond_double, key({"t": 1700000000000000000}, symbol="MSFT"),
              key({"t": 1700000000000000000}, start=datetime.date(2024, 1, 3)), key(None)]
    for other in others:
        assert base != other, other
        assert base.entry_id != other.entry_id
    assert len({base, *others}) == 1 + len(others)
    assert key(None) == key("{}") == key(""), "no config is the empty object"


def test_the_identity_is_asked_once_and_lazily(monkeypatch):
    import fstore._key as key_module

    calls = []
    real = key_module._canonical

    def counting(c_key):
        calls.append(c_key)
        return real(c_key)

    monkeypatch.setattr(key_module, "_canonical", counting)
    k = key({"w": 20})
    assert calls == [], "not at construction"
    for _ in range(3):
        hash(k)
        assert k == key({"w": 20})
    assert len(calls) == 4, "once for k, and once for each new key it was compared with"
    assert sum(1 for c in calls if c is k.to_c()) == 1


def test_a_key_the_library_refuses_compares_by_its_parts():
    bad, same, valid = key("{not json"), key("{not json"), key({})
    assert bad == same and hash(bad) == hash(same)
    assert bad != valid
    with pytest.raises(fstore.InvalidArgument, match="config"):
        bad.entry_id
    assert fstore.Key("returns", "A\0B", START, END) != fstore.Key("returns", "A", START, END)


def test_a_pickled_key_is_equal():
    k = key({"a": 1, "b": [1, 2]})
    assert pickle.loads(pickle.dumps(k)) == k
