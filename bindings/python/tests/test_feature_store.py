"""fstore.FeatureStore in process: keys from pandas and polars frames, what
compute_func receives, equal frames on a miss and a hit, clear refusals."""

from __future__ import annotations

import datetime
import functools
import json
import os
import subprocess
import sys

import pytest

import fstore

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

KEY_OF = fstore.FeatureStore.key_for_arguments
DAYS = ["2024-03-01", "2024-03-04", "2024-03-05"]


def compute_features(data, config):
    return pd.DataFrame({"x": [1.5, 2.5, 3.5]}, index=pd.DatetimeIndex(pd.to_datetime(DAYS), name="date"))


def prices_pandas():
    return pd.DataFrame({"date": pd.to_datetime(DAYS), "close": [1.0, 2.0, 3.0]})


@pytest.fixture
def fs(tmp_path):
    # No memory cache: every hit decodes the entry file.
    with fstore.FeatureStore(tmp_path / "cache", options={"manifest": "duckdb", "memory_cache_mb": 0}) as store:
        yield store


def test_an_embedded_store_says_so(fs):
    assert fs.use_pg_manifest is False
    assert fs.warnings == []
    assert fs.lock_stats() is None and fs.pool_stats() is None


def test_compute_func_gets_the_callers_objects_and_a_hit_equals_the_miss(fs):
    prices, config, seen = prices_pandas(), {"window": 20, "feature_set": "ma"}, []

    def compute(data, cfg):
        seen.append((data, cfg))
        return compute_features(data, cfg)

    miss = fs.get_or_compute("AAPL", prices, config, compute)
    hit = fs.get_or_compute("AAPL", prices, config, compute)
    assert len(seen) == 1 and seen[0][0] is prices and seen[0][1] is config
    assert isinstance(miss, pd.DataFrame)
    expected = compute_features(prices, config)
    pd.testing.assert_frame_equal(miss, expected)
    pd.testing.assert_frame_equal(hit, expected)  # the DatetimeIndex round-trips
    assert fs.stats().hits == 1 and fs.stats().computes == 1


@pytest.mark.parametrize("index", [pd.RangeIndex(3), pd.Index(["a", "b", "c"], name="label")])
def test_other_indexes_round_trip(fs, index):
    result = pd.DataFrame({"v": [1, 2, 3]}, index=index)
    got_miss = fs.get_or_compute("IDX", prices_pandas(), {"i": str(index.name), "feature_set": "idx"}, lambda d, c: result)
    got_hit = fs.get_or_compute("IDX", prices_pandas(), {"i": str(index.name), "feature_set": "idx"}, lambda d, c: result)
    pd.testing.assert_frame_equal(got_miss, result)
    pd.testing.assert_frame_equal(got_hit, result)


def test_polars_input_and_output(fs):
    pl = pytest.importorskip("polars")
    prices = pl.DataFrame({"date": [datetime.date(2024, 3, 1), datetime.date(2024, 3, 5)], "close": [1.0, 2.0]})

    def polars_features(data, config):
        assert isinstance(data, pl.DataFrame)
        return data.with_columns((pl.col("close") * config["k"]).alias("scaled"))

    key = fs.key_for("MSFT", prices, {"k": 2}, polars_features)
    assert (key.start, key.end) == (datetime.date(2024, 3, 1), datetime.date(2024, 3, 5))
    assert key.feature_set == f"{__name__}.test_polars_input_and_output.<locals>.polars_features"
    miss = fs.get_or_compute("MSFT", prices, {"k": 2}, polars_features)
    hit = fs.get_or_compute("MSFT", prices, {"k": 2}, polars_features)
    pd.testing.assert_frame_equal(miss, hit)
    assert miss["scaled"].tolist() == [2.0, 4.0]


def test_date_sources_and_utc_dates():
    days = pd.to_datetime(["2024-01-02 23:30", "2024-01-05 12:00"])
    by_index = pd.DataFrame({"v": [1, 2]}, index=days)  # an unnamed DatetimeIndex
    assert KEY_OF("S", by_index, {}, compute_features).end == datetime.date(2024, 1, 5)
    named = pd.DataFrame({"v": [1, 2]}, index=pd.Index([datetime.date(2024, 1, 2), datetime.date(2024, 1, 9)], name="date"))
    assert KEY_OF("S", named, {}, compute_features).end == datetime.date(2024, 1, 9)
    multi = pd.DataFrame({"v": [1, 2]}, index=pd.MultiIndex.from_arrays([["A", "B"], days], names=["sym", "date"]))
    assert KEY_OF("S", multi, {}, compute_features).start == datetime.date(2024, 1, 2)
    tokyo = pd.DataFrame({"date": days.tz_localize("Asia/Tokyo")})  # 2024-01-02 23:30+09 is 14:30 UTC
    key = KEY_OF("S", tokyo, {}, compute_features)
    assert (key.start, key.end) == (datetime.date(2024, 1, 2), datetime.date(2024, 1, 5))
    new_york = pd.DataFrame({"date": days.tz_localize("America/New_York")})  # 23:30-05 is 04:30 UTC next day
    assert KEY_OF("S", new_york, {}, compute_features).start == datetime.date(2024, 1, 3)
    table = pa.table({"date": pa.array([19000, 18990], pa.date32())})
    assert (KEY_OF("S", table, {}, compute_features).start_date, KEY_OF("S", table, {}, compute_features).end_date) == (18990, 19000)


def test_the_feature_set_names():
    prices = prices_pandas()
    assert KEY_OF("S", prices, {}, compute_features).feature_set == f"{__name__}.compute_features"
    config = {"feature_set": "named", "w": 1}
    key = KEY_OF("S", prices, config, compute_features)
    assert (key.feature_set, key.canonical_config) == ("named", '{"w":1}')
    assert config == {"feature_set": "named", "w": 1}, "the caller's dict is left alone"
    for anonymous, what in ((lambda d, c: d, "lambda"), (functools.partial(compute_features), "functools.partial")):
        with pytest.raises(fstore.InvalidArgument, match=what) as caught:
            KEY_OF("S", prices, {}, anonymous)
        assert isinstance(caught.value, ValueError)
        assert KEY_OF("S", prices, {"feature_set": "fs"}, anonymous).feature_set == "fs"
    with pytest.raises(fstore.InvalidArgument, match="non-empty str"):
        KEY_OF("S", prices, {"feature_set": 3}, compute_features)


@pytest.mark.parametrize(
    "data, message",
    [
        (pd.DataFrame({"date": pd.to_datetime([])}), "the data is empty"),
        (pd.DataFrame({"close": [1.0]}), "no date column"),
        (pd.DataFrame({"date": ["2024-01-02"]}), "not dates or timestamps"),
        (pd.DataFrame({"date": [1, 2]}), "int64 values, not dates"),
        (pd.DataFrame({"date": pd.to_datetime(["2024-01-02", None])}), "1 null value"),
        (
            pd.DataFrame({"date": [pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-03", tz="Asia/Tokyo")]}),
            "mixes time zones",
        ),
        (pd.DataFrame({"date": [pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-03")]}), "mixes time zones"),
        (pa.table({"close": [1.0]}), "no date column 'date'"),
    ],
)
def test_bad_data_is_a_clear_value_error(fs, data, message):
    with pytest.raises(ValueError, match=message):
        fs.get_or_compute("S", data, {}, compute_features)
    assert fs.stats().computes == 0


def test_bad_arguments_are_type_errors(fs):
    with pytest.raises(TypeError, match="config must be a dict"):
        fs.get_or_compute("S", prices_pandas(), [1], compute_features)
    with pytest.raises(TypeError, match="can be read only once"):
        fs.get_or_compute("S", pa.RecordBatchReader.from_batches(pa.schema([]), []), {}, compute_features)
    with pytest.raises(TypeError, match="must be a pandas or polars DataFrame"):
        fs.get_or_compute("S", [1, 2], {}, compute_features)


def test_a_failing_compute_stores_nothing(fs):
    def broken(data, config):
        raise RuntimeError("no data today")

    with pytest.raises(fstore.CallbackFailed, match="no data today") as caught:
        fs.get_or_compute("S", prices_pandas(), {}, broken)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert fs.store.entries().num_rows == 0


def test_without_pandas_the_result_is_a_pyarrow_table(tmp_path):
    code = (
        "import sys\n"
        "class NoPandas:\n"  # as if pandas were not installed
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pandas': raise ImportError('no pandas here')\n"
        "sys.meta_path.insert(0, NoPandas())\n"
        "import datetime, json, pyarrow as pa, fstore\n"
        "def features(data, config):\n"
        "    return pa.table({'v': [1, 2]})\n"
        "data = pa.table({'date': pa.array([datetime.date(2024, 1, 2)], pa.date32())})\n"
        f"with fstore.FeatureStore({str(tmp_path / 'c')!r}) as fs:\n"
        "    out = [fs.get_or_compute('S', data, {}, features) for _ in range(2)]\n"
        "print(json.dumps([type(t).__module__ + '.' + type(t).__name__ for t in out] + [out[0].equals(out[1])]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG_")}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == ["pyarrow.lib.Table", "pyarrow.lib.Table", True]
