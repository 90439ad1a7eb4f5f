"""The metrics, read with a real Prometheus parser (prometheus_client) after
a known sequence of calls from two processes."""

from __future__ import annotations

import multiprocessing

import pytest

import fstore
import workers

parser = pytest.importorskip("prometheus_client.parser", reason="run_tests.sh installs prometheus-client")


def parse(text: str):
    """{(sample name, labels): value} and {family name: type}."""
    samples, types = {}, {}
    for family in parser.text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types


def test_two_processes_count_their_computes_waits_and_hits(cache_dir):
    ctx = multiprocessing.get_context("spawn")
    started, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=workers.metrics_worker, args=(str(cache_dir), role, started, results))
             for role in ("leader", "follower")]
    for p in procs:
        p.start()
    texts = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    symbol, feature_set = (("symbol", "METR"),), (("feature_set", "metrics"),)
    for role, computes, waits in (("leader", 1, 0), ("follower", 0, 1)):
        samples, types = parse(texts[role])
        value = lambda name, labels=(): samples[(name, labels)]  # noqa: E731
        assert types["featurestore_hits"] == "counter"
        assert types["featurestore_hit_ratio"] == "gauge"
        assert types["featurestore_get_seconds"] == "histogram"
        assert value("featurestore_hits_total", symbol) == 1, role
        assert value("featurestore_misses_total", symbol) == 1, role
        assert value("featurestore_waits_total", symbol) == waits, role
        assert value("featurestore_hit_ratio") == 0.5, role
        assert value("featurestore_computes_total", feature_set) == computes, role
        assert value("featurestore_compute_failures_total", feature_set) == 0, role
        assert value("featurestore_get_seconds_count", feature_set) == 2, role
        assert value("featurestore_compute_seconds_count", feature_set) == computes, role
        assert value("featurestore_lock_wait_seconds_count") == 1, role
        assert value("featurestore_timeouts_total") == 0, role
        assert all(v == 0 for (name, _), v in samples.items() if name == "featurestore_errors_total"), role
        assert value("featurestore_info", (("backend", "duckdb"), ("version", fstore.__version__))) == 1
        # The read that waited for the other process took most of its compute.
        slowest = value("featurestore_get_seconds_sum", feature_set)
        assert (slowest >= 0.7) if role == "follower" else (slowest >= 1.0), (role, slowest)


def test_the_collector_registers_with_prometheus_client(store, key):
    registry_module = pytest.importorskip("prometheus_client")
    from fstore.prometheus import Collector

    store.get_or_compute(key, lambda k: workers.table())
    registry = registry_module.CollectorRegistry()
    registry.register(Collector(store))
    text = registry_module.generate_latest(registry).decode()
    assert f'featurestore_misses_total{{symbol="{key.symbol}"}} 1.0' in text
    assert registry.get_sample_value("featurestore_computes_total", {"feature_set": key.feature_set}) == 1
    store.close()
    assert list(Collector(store).collect()) == []
