"""A program written for the original feature store, unchanged apart from
its import; configured only by the environment. Run by
test_feature_store_original.py: argv[1] is pandas or polars, argv[2] the
symbol, argv[3] a directory where it records its computes and meets the
other processes started with it (argv[4] of them)."""

import json
import os
import sys
import time

from fstore import FeatureStore

frames, symbol, meeting, processes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def compute_features(data, config):
    with open(os.path.join(meeting, f"computed.{os.getpid()}"), "w"):
        pass
    time.sleep(0.5)  # long enough for the others to wait for this compute
    if frames == "pandas":
        return data.assign(ma=data["close"].rolling(2, min_periods=1).mean())
    import polars as pl

    close = pl.col("close")
    return data.with_columns(((close + close.shift(1).fill_null(close)) / 2).alias("ma"))


if frames == "pandas":
    import pandas as pd

    prices = pd.DataFrame(
        {"close": [10.0, 11.0, 12.0]}, index=pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"], name="date")
    )
else:
    import datetime

    import polars as pl

    prices = pl.DataFrame({"date": [datetime.date(2024, 1, d) for d in (2, 3, 4)], "close": [10.0, 11.0, 12.0]})

fs = FeatureStore()
# Every process asks at about the same moment.
open(os.path.join(meeting, f"ready.{os.getpid()}"), "w").close()
deadline = time.monotonic() + 30
while len([n for n in os.listdir(meeting) if n.startswith("ready.")]) < processes and time.monotonic() < deadline:
    time.sleep(0.01)
df = fs.get_or_compute(symbol, prices, {"window": 20}, compute_features)
print(json.dumps({
    "use_pg_manifest": fs.use_pg_manifest,
    "warnings": fs.warnings,
    "lock_stats": None if fs.lock_stats() is None else fs.lock_stats().held,
    "frame": df.reset_index().astype(str).to_dict("list"),
    "type": type(df).__module__.split(".")[0],
}))
fs.close()
