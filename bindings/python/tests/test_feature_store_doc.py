"""docs/python-feature-store.md's worked example: its code is run and every
value the document states is checked, so the document cannot go stale."""

from __future__ import annotations

import datetime
import re

import pytest

import fstore
from conftest import REPO_ROOT

pytest.importorskip("pandas")
DOC = REPO_ROOT / "docs" / "python-feature-store.md"


def example() -> tuple[dict, dict[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Worked example", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    stated = re.search(r"```text\n(.*?)```", section, re.S)
    assert code and stated, "the worked example has its code and its key"
    # Run as the module the document says it is in.
    scope: dict = {"__name__": "pipeline.features"}
    exec(compile(code.group(1), str(DOC), "exec"), scope)
    values = dict(line.split(": ", 1) for line in stated.group(1).strip().splitlines())
    return scope, values


def test_the_documented_key_is_the_one_derived():
    scope, stated = example()
    key = fstore.FeatureStore.key_for_arguments("AAPL", scope["prices"], scope["config"], scope["compute_features"])
    assert stated == {
        "feature_set": key.feature_set,
        "symbol": key.symbol,
        "start_date": key.start.isoformat(),
        "end_date": key.end.isoformat(),
        "canonical_config": key.canonical_config,
        "entry_id": key.entry_id,
    }


def test_the_documented_feature_set_override_names_the_documented_key():
    scope, stated = example()
    config = {"feature_set": "momentum", **scope["config"]}
    key = fstore.FeatureStore.key_for_arguments("AAPL", scope["prices"], config, scope["compute_features"])
    plain = fstore.Key(
        "momentum", "AAPL", datetime.date(2024, 1, 2), datetime.date(2024, 1, 6),
        config={"window": 20, "threshold": 1.5, "fields": ["close"]},
    )
    assert key == plain and key.entry_id == plain.entry_id
    assert key.canonical_config == stated["canonical_config"]
    text = DOC.read_text(encoding="utf-8")
    assert f"config is the same, `{stated['canonical_config']}`" in text


def test_the_example_computes_and_reads_back_equal_frames(tmp_path):
    import pandas as pd

    scope, stated = example()
    with fstore.FeatureStore(tmp_path / "cache", options={"manifest": "duckdb"}) as fs:
        miss = fs.get_or_compute("AAPL", scope["prices"], scope["config"], scope["compute_features"])
        hit = fs.get_or_compute("AAPL", scope["prices"], scope["config"], scope["compute_features"])
        listed = fs.store.entries().to_pyarrow().to_pylist()
    pd.testing.assert_frame_equal(miss, scope["compute_features"](scope["prices"], scope["config"]))
    pd.testing.assert_frame_equal(hit, miss)
    assert [row["entry_id"] for row in listed] == [stated["entry_id"]]
