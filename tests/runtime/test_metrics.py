"""Metrics: private registries, the snapshot for MQTT, quantile estimates and the HTTP exporter."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest

from runtime.metrics import Metrics, bucket_quantile


def test_two_instances_do_not_collide() -> None:
    a, b = Metrics(), Metrics()  # the global registry would raise on duplicate names
    a.sensor("s1").windows.inc(3)
    assert b.snapshot()["windows"] == {"total": 0.0, "by_sensor": {}}
    assert a.snapshot()["windows"] == {"total": 3.0, "by_sensor": {"s1": 3.0}}


def test_snapshot_summarises_counters_gauges_and_histograms() -> None:
    m = Metrics()
    for sid, n in (("s1", 4), ("s2", 6)):
        m.sensor(sid).windows.inc(n)
    m.sensor("s2").gaps.inc()
    m.sensor("s1").dropped_samples.inc(128)
    m.broker_connected.set(1)
    depth = [7]
    m.track_queue_depth(lambda: depth[0])
    m.observe_batch(4, 0.003, np.array([0.01, 0.02, 0.03, 0.04]))
    m.observe_batch(2, 0.002, np.array([0.02, 0.03]))
    snap = m.snapshot()
    assert snap["windows"]["total"] == 10.0 and snap["windows"]["by_sensor"]["s2"] == 6.0
    assert snap["gaps"]["by_sensor"]["s2"] == 1.0 and snap["gaps"]["total"] == 1.0
    assert snap["dropped_samples"]["total"] == 128.0
    assert snap["broker_connected"] == 1.0 and snap["queue_depth"] == 7.0
    assert snap["batch_size"]["count"] == 2 and snap["batch_size"]["mean"] == pytest.approx(3.0)
    e2e = snap["end_to_end_latency_seconds"]
    assert e2e["count"] == 6 and e2e["mean"] == pytest.approx(0.025)
    assert 0.01 <= e2e["p50"] <= 0.05 and e2e["p50"] <= e2e["p95"] <= e2e["p99"] <= 0.05
    assert snap["inference_latency_seconds"]["count"] == 2
    assert snap["outbox_depth"] == 0.0 and snap["events"]["total"] == 0.0


def test_bucket_quantile_interpolates_within_a_bucket() -> None:
    # 100 observations spread evenly over (0, 1], buckets at 0.5 and 1.0
    buckets = [(0.5, 50.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert bucket_quantile(buckets, 100.0, 0.5) == pytest.approx(0.5)
    assert bucket_quantile(buckets, 100.0, 0.25) == pytest.approx(0.25)
    assert bucket_quantile(buckets, 100.0, 0.9) == pytest.approx(0.9)
    assert bucket_quantile(buckets, 0.0, 0.5) is None
    overflow = [(0.5, 0.0), (1.0, 0.0), (float("inf"), 10.0)]
    assert bucket_quantile(overflow, 10.0, 0.5) == 1.0


def test_http_exporter_serves_the_private_registry() -> None:
    m = Metrics()
    m.sensor("pump").events.inc()
    m.start(0, addr="127.0.0.1")
    try:
        assert m.port
        body = urllib.request.urlopen(f"http://127.0.0.1:{m.port}/metrics", timeout=5).read().decode()
    finally:
        m.stop()
    assert 'drsn_edge_events_total{sensor="pump"} 1.0' in body
    assert m.port is None


def test_observe_many_fills_the_buckets_and_sum_as_one_observe_per_value() -> None:
    from prometheus_client import CollectorRegistry, Histogram

    from runtime.metrics import LATENCY_BUCKETS, observe_many

    values = np.array([0.0, 0.0005, 0.0007, 0.001, 0.004, 0.3, 7.0, 1e6, -1.0, np.nan])
    one, many = CollectorRegistry(), CollectorRegistry()
    h_one = Histogram("lat", "x", registry=one, buckets=LATENCY_BUCKETS)
    h_many = Histogram("lat", "x", registry=many, buckets=LATENCY_BUCKETS)
    for v in values[:-1]:  # NaN: neither counts it in a bucket; its sum is NaN either way
        h_one.observe(float(v))
    observe_many(h_many, values[:-1])
    observe_many(h_many, np.array([]))

    def samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
        family = next(iter(registry.collect()))
        return [(s.name, s.labels, s.value) for s in family.samples if s.name != "lat_created"]

    assert samples(one) == samples(many)
    observe_many(h_many, values[-1:])
    buckets = [v for name, _, v in samples(many) if name == "lat_bucket"]
    assert buckets[-1] == len(values) - 1  # the +Inf bucket (cumulative) did not count the NaN


def test_batch_observations_reach_the_histograms_in_bursts_with_the_same_counts_and_sums() -> None:
    import time

    from runtime.metrics import BATCH_FLUSH_S

    m = Metrics()

    def count(name: str) -> float:
        value = m.registry.get_sample_value(f"drsn_edge_{name}_count")
        return 0.0 if value is None else value

    m.observe_batch(3, 0.004, np.array([0.01, 0.02, 0.03]))  # the first carries at once (nothing due yet)
    assert count("end_to_end_latency_seconds") == 3
    m.observe_batch(2, 0.003, np.array([0.5, 0.6]))
    m.observe_batch(1, 0.002, np.array([2.0]))
    assert count("end_to_end_latency_seconds") == 3  # buffered: no histogram update per batch
    time.sleep(BATCH_FLUSH_S + 0.05)
    m.observe_batch(2, 0.001, np.array([0.05, 0.05]))  # due: this call carries everything waiting
    assert count("end_to_end_latency_seconds") == 8 and count("batch_size") == 4
    m.observe_batch(4, 0.001, np.array([1.0, 1.0, 1.0, 1.0]))
    snap = m.snapshot()  # a snapshot (the metrics message, a stop) carries what waits
    assert snap["end_to_end_latency_seconds"]["count"] == 12
    assert snap["end_to_end_latency_seconds"]["sum"] == pytest.approx(0.06 + 1.1 + 2.0 + 0.1 + 4.0)
    assert snap["batch_size"]["sum"] == 12 and snap["inference_latency_seconds"]["count"] == 5
