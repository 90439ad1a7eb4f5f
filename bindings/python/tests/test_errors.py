"""Every bad input maps to the right exception, with a message naming the problem."""

from __future__ import annotations

import os

import pytest

import fstore
from conftest import END, START, make_table

pa = pytest.importorskip("pyarrow")


def never(key):
    raise AssertionError("compute must not run for a refused key")


@pytest.mark.parametrize(
    "key, words",
    [
        (lambda: fstore.Key("fs", "", START, END), "symbol is empty"),
        (lambda: fstore.Key("fs", "S" * 1025, START, END), "symbol is 1025 bytes long; the limit is 1024"),
        (lambda: fstore.Key("", "AAPL", START, END), "feature_set is empty"),
        (lambda: fstore.Key("fs", "AAPL", 20, 10), "end_date 10 is before start_date 20"),
        (lambda: fstore.Key("fs", "AAPL", START, END, config='{"window": }'), "invalid config JSON"),
        (lambda: fstore.Key("fs", "AAPL", START, END, config='{"a": 1, "a": 2}'), 'duplicate member name "a"'),
        (lambda: fstore.Key("fs", "A\0PL", START, END), "symbol contains a NUL byte"),
    ],
    ids=["empty-symbol", "long-symbol", "empty-feature-set", "end-before-start", "bad-json", "duplicate-member", "nul"],
)
def test_bad_keys_are_invalid_arguments_everywhere(store, key, words):
    key = key()
    calls = [
        lambda: store.get_or_compute(key, never),
        lambda: store.get(key),
        lambda: store.put(key, make_table(1)),
        lambda: store.contains(key),
        lambda: store.invalidate(key),
    ]
    for call in calls:
        with pytest.raises(fstore.InvalidArgument) as info:
            call()
        assert words in str(info.value)
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, fstore.Error)
        assert info.value.status == fstore.Status.INVALID_ARGUMENT
        assert info.value.status_name == "invalid argument"
    assert store.stats().computes == 0


def test_config_that_is_not_json_serialisable():
    with pytest.raises(fstore.InvalidArgument, match="config cannot be written as JSON"):
        fstore.Key("fs", "AAPL", START, END, config={"when": object()})
    with pytest.raises(fstore.InvalidArgument, match="config cannot be written as JSON"):
        fstore.Key("fs", "AAPL", START, END, config={"x": float("nan")})


@pytest.mark.parametrize(
    "options, words",
    [
        ({"cache_dri": "/x"}, "unknown option 'cache_dri'"),
        ({"lock.granularity": "row"}, "option lock.granularity: bad value 'row', expected symbol or entry"),
        ({"lock.cross_process": "maybe"}, "option lock.cross_process: bad value 'maybe'"),
        ({"wait.timeout_ms": -5}, "option wait.timeout_ms: bad value '-5'"),
    ],
    ids=["unknown", "granularity", "cross-process", "timeout"],
)
def test_bad_options_are_invalid_arguments(tmp_path, options, words):
    with pytest.raises(fstore.InvalidArgument) as info:
        fstore.Store(tmp_path / "cache", options=options)
    assert words in str(info.value)


def test_option_values_are_converted(tmp_path):
    with fstore.Store(
        tmp_path / "cache",
        options={"lock.cross_process": False, "wait.timeout_ms": 1500, "lock.granularity": "entry", "verify_checksums": True},
    ) as store:
        assert store.manifest_backend == "duckdb"
    with pytest.raises(TypeError, match="wait.timeout_ms"):
        fstore.Store(tmp_path / "cache", options={"wait.timeout_ms": 1.5})


def test_callback_raising_is_callback_failed_with_the_cause_and_stores_nothing(store, key):
    def boom(k):
        raise ValueError(f"no prices for {k.symbol}")

    with pytest.raises(fstore.CallbackFailed) as info:
        store.get_or_compute(key, boom)
    error = info.value
    assert isinstance(error.__cause__, ValueError)
    assert f"ValueError: no prices for {key.symbol}" in str(error)
    assert key.symbol in str(error)
    assert error.status == fstore.Status.CALLBACK_FAILED
    assert not store.contains(key)
    assert store.get(key) is None
    s = store.stats()
    assert (s.computes, s.compute_failures) == (1, 1)

    # Nothing was stored, so the next call computes again.
    assert pa.table(store.get_or_compute(key, lambda k: make_table(2))).equals(make_table(2))
    assert store.stats().computes == 2
    assert store.contains(key)


def test_callback_returning_a_non_stream_is_callback_failed(store, key):
    with pytest.raises(fstore.CallbackFailed) as info:
        store.get_or_compute(key, lambda k: {"a": [1, 2]})
    assert isinstance(info.value.__cause__, TypeError)
    assert "builtins.dict, which does not export __arrow_c_stream__" in str(info.value)
    assert not store.contains(key)

    with pytest.raises(fstore.CallbackFailed, match="NoneType"):
        store.get_or_compute(key, lambda k: None)
    assert store.stats().compute_failures == 2


def test_callback_stream_failing_midway_is_invalid_data(store, key):
    schema = pa.schema([("a", pa.int64())])

    def batches():
        yield pa.record_batch([pa.array([1, 2])], schema=schema)
        raise RuntimeError("the database went away")

    with pytest.raises(fstore.InvalidData, match="the database went away"):
        store.get_or_compute(key, lambda k: pa.RecordBatchReader.from_batches(schema, batches()))
    assert not store.contains(key)
    assert store.stats().compute_failures == 1


def test_wrong_argument_types_are_type_errors(store, key):
    with pytest.raises(TypeError, match="fstore.Key"):
        store.get(("fs", "AAPL", 1, 2))
    with pytest.raises(TypeError, match="callable"):
        store.get_or_compute(key, make_table(1))
    with pytest.raises(TypeError, match="symbol must be a str"):
        fstore.Key("fs", b"AAPL", 1, 2)
    with pytest.raises(TypeError, match="timeout"):
        store.get_or_compute(key, lambda k: make_table(1), timeout="soon")
    with pytest.raises(fstore.InvalidArgument, match="timeout must be >= 0"):
        store.get_or_compute(key, lambda k: make_table(1), timeout=-1)
    assert store.stats().computes == 0


def test_errors_carry_status_and_pickle():
    import pickle

    error = fstore.Timeout(fstore.Status.TIMEOUT, "gave up after 5 ms")
    assert isinstance(error, TimeoutError) and isinstance(error, OSError)
    assert str(error) == "gave up after 5 ms"
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is fstore.Timeout and copy.status == fstore.Status.TIMEOUT and str(copy) == str(error)
    assert isinstance(fstore.NotFound(2, "x"), KeyError) and str(fstore.NotFound(2, "x")) == "x"
    assert isinstance(fstore.IoError(7, "disk"), OSError)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_store_in_a_forked_child_is_invalid_state(store, key):
    store.put(key, make_table(1))
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        code = 1
        try:
            store.contains(key)
        except fstore.InvalidState as e:
            code = 0 if "after fork()" in str(e) else 2
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert store.contains(key)  # the parent's store is unaffected


def test_a_postgresql_refusal_carries_its_sqlstate(tmp_path):
    import os
    import pickle

    dsn = os.environ.get("FSTORE_TEST_PG_DSN")
    if not dsn:
        pytest.skip("set FSTORE_TEST_PG_DSN to a PostgreSQL server (tests/run_all.sh starts one)")
    options = {"manifest": "postgres", "postgres.dsn": f"{dsn} dbname=fstore_no_such_database", "wait.timeout_ms": 2000}
    with pytest.raises(fstore.Unavailable, match="fstore_no_such_database") as caught:
        fstore.Store(tmp_path / "cache", options=options)
    assert caught.value.sqlstate == "3D000"
    assert pickle.loads(pickle.dumps(caught.value)).sqlstate == "3D000"


def test_an_error_without_postgresql_behind_it_has_no_sqlstate(store):
    with pytest.raises(fstore.InvalidArgument) as caught:
        store.get(fstore.Key("f", "", 0, 1))
    assert caught.value.sqlstate == ""
