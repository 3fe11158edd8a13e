"""The daemon's Prometheus metrics, on a private registry.

A private :class:`~prometheus_client.CollectorRegistry` keeps two daemons (or a test and a
daemon) in one process from colliding, and keeps importing this module free of side effects.
The same numbers serve two readers: Prometheus scrapes them over HTTP (:meth:`Metrics.start`),
and :meth:`Metrics.snapshot` condenses them into a small dict for the periodic MQTT metrics
message, for sites that only have a broker.

Per-sensor series are labelled ``sensor``; :meth:`Metrics.sensor` caches the labelled children
so the hot path does not look labels up for every window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

NAMESPACE = "drsn_edge"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: novelty scores (Mahalanobis distance over the pooled features; familiar windows sit at a few units)
NOVELTY_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100, 300)
QUANTILES = (0.5, 0.95, 0.99)
#: how long batch observations may wait before they reach the histograms (Metrics.observe_batch)
BATCH_FLUSH_S = 0.25
#: the metrics labelled by sensor (the snapshot always reports them with a per-sensor breakdown)
PER_SENSOR = frozenset({"windows", "dropped_samples", "gaps", "bad_payloads", "events", "sensor_stale",
                        "timestamps_rejected", "windows_dropped"})


@dataclass(frozen=True)
class SensorMetrics:
    """The labelled children of one sensor, resolved once."""

    windows: Any
    dropped_samples: Any
    gaps: Any
    bad_payloads: Any
    events: Any


class Metrics:
    """All metrics of one daemon."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r, ns = self.registry, NAMESPACE
        self.windows = Counter("windows", "Windows classified.", ["sensor"], namespace=ns, registry=r)
        self.inference_latency = Histogram(
            "inference_latency_seconds", "Duration of one backend call (a whole batch).",
            namespace=ns, registry=r, buckets=LATENCY_BUCKETS,
        )
        self.e2e_latency = Histogram(
            "end_to_end_latency_seconds", "From receipt of a window's last sample to its classification.",
            namespace=ns, registry=r, buckets=LATENCY_BUCKETS,
        )
        self.batch_size = Histogram(
            "batch_size", "Windows per backend call.", namespace=ns, registry=r, buckets=BATCH_BUCKETS
        )
        self.novelty_score = Histogram(
            "novelty_score", "Novelty score of each scored window (higher: less like the training data).",
            namespace=ns, registry=r, buckets=NOVELTY_BUCKETS,
        )
        self.queue_depth = Gauge("queue_depth", "Windows waiting for inference.", namespace=ns, registry=r)
        self.windows_dropped = Counter(
            "windows_dropped", "Windows dropped because the inference queue was full (each the oldest "
            "window of the sensor with the most queued), by that sensor.", ["sensor"],
            namespace=ns, registry=r,
        )
        self.inference_errors = Counter(
            "inference_errors", "Backend calls that raised.", namespace=ns, registry=r
        )
        self.dropped_samples = Counter(
            "dropped_samples", "Samples lost to gaps, bad chunks and restarts.", ["sensor"],
            namespace=ns, registry=r,
        )
        self.gaps = Counter(
            "gaps", "Sequence-number jumps in a sensor's stream.", ["sensor"], namespace=ns, registry=r
        )
        self.bad_payloads = Counter(
            "bad_payloads", "Malformed or non-finite sample messages.", ["sensor"], namespace=ns, registry=r
        )
        self.events = Counter("events", "Fault state changes.", ["sensor"], namespace=ns, registry=r)
        self.outbox_depth = Gauge(
            "outbox_depth", "Events waiting in the outbox for a PUBACK.", namespace=ns, registry=r
        )
        self.broker_connected = Gauge(
            "broker_connected", "1 while connected to the MQTT broker.", namespace=ns, registry=r
        )
        self.events_lost = Counter(
            "events_lost", "Events lost: held in memory while the outbox could not be written, beyond "
            "mqtt.outbox.memory_max_messages, or still held at a stop.", namespace=ns, registry=r,
        )
        self.outbox_dropped = Counter(
            "outbox_dropped", "Messages dropped unsent by the outbox: reason=full (max_messages), "
            "expired (max_age_s), write_error (a non-event message the disk refused).", ["reason"],
            namespace=ns, registry=r,
        )
        self.callback_errors = Counter(
            "callback_errors", "Exceptions caught in MQTT callbacks and hooks (the connection kept serving).",
            namespace=ns, registry=r,
        )
        self.degraded = Gauge(
            "degraded", "1 while events are held in memory because the outbox cannot be written.",
            namespace=ns, registry=r,
        )
        self.outbox_corrupt = Counter(
            "outbox_corrupt", "Corrupt outbox files moved aside at start (their events were not delivered).",
            namespace=ns, registry=r,
        )
        self.stalled_connections = Counter(
            "mqtt_stalled_connections", "Broker connections dropped for making no progress (no PUBACK "
            "within mqtt.ack_timeout_s).", namespace=ns, registry=r,
        )
        self.sensor_stale = Gauge(
            "sensor_stale", "1 while a sensor is in the no_data state (no windows for "
            "fault_state.no_data_after_s).", ["sensor"], namespace=ns, registry=r,
        )
        self.timestamps_rejected = Counter(
            "timestamps_rejected", "Frames whose sender t0 was further from the local clock than "
            "max_clock_skew_s (their samples were kept, stamped with the arrival time).", ["sensor"],
            namespace=ns, registry=r,
        )
        self.source_restarts = Counter(
            "source_restarts", "Source threads that failed and were restarted.", namespace=ns, registry=r
        )
        self.frames_dropped = Counter(
            "frames_dropped", "Raw-sample payloads dropped unread because a flooding sender filled a "
            "source's intake queue (the busiest sender loses its oldest).", namespace=ns, registry=r,
        )
        for reason in ("full", "expired", "write_error"):  # present from the start, at 0
            self.outbox_dropped.labels(reason)
        self._sensors: dict[str, SensorMetrics] = {}
        self._lock = threading.Lock()
        #: batches observed but not yet in the histograms: sizes, call times, latency arrays
        self._batch_lock = threading.Lock()
        self._sizes: list[int] = []
        self._calls: list[float] = []
        self._latencies: list[np.ndarray] = []
        self._batches_due = 0.0
        #: novelty scores of batches not yet in their histogram (observe_novelty, flush_novelty)
        self._novelty: list[np.ndarray] = []
        self._server: Any = None

    def sensor(self, sensor_id: str) -> SensorMetrics:
        """The per-sensor children, created on first use."""
        found = self._sensors.get(sensor_id)
        if found is not None:
            return found
        with self._lock:
            found = self._sensors.get(sensor_id)
            if found is None:
                found = SensorMetrics(
                    self.windows.labels(sensor_id), self.dropped_samples.labels(sensor_id),
                    self.gaps.labels(sensor_id), self.bad_payloads.labels(sensor_id),
                    self.events.labels(sensor_id),
                )
                self._sensors[sensor_id] = found
            return found

    def observe_batch(self, size: int, infer_s: float, latencies_s: np.ndarray) -> None:
        """Record one backend call and the end-to-end latency of each of its windows.

        Buffered and carried into the three histograms at most every :data:`BATCH_FLUSH_S` (and by
        :meth:`flush_batches`, :meth:`snapshot`): three histogram updates per batch cost the
        inference thread more than a sensor's fault state, and a scrape a quarter of a second
        behind shows the same distribution.
        """
        now = time.monotonic()
        with self._batch_lock:
            self._sizes.append(size)
            self._calls.append(infer_s)
            self._latencies.append(latencies_s)
            due = now >= self._batches_due
        if due:
            self.flush_batches()

    def flush_batches(self) -> None:
        """Carry the buffered batch observations into their histograms (same buckets and sums)."""
        with self._batch_lock:
            sizes, calls, lats = self._sizes, self._calls, self._latencies
            self._sizes, self._calls, self._latencies = [], [], []
            self._batches_due = time.monotonic() + BATCH_FLUSH_S
        if sizes:
            observe_many(self.batch_size, np.asarray(sizes, dtype=np.float64))
            observe_many(self.inference_latency, np.asarray(calls, dtype=np.float64))
            flat = [np.asarray(v, dtype=np.float64).ravel() for v in lats]
            observe_many(self.e2e_latency, np.concatenate(flat))

    def observe_novelty(self, scores: np.ndarray) -> None:
        """Buffer one batch's novelty scores for the score histogram, carried in by
        :meth:`flush_novelty` (the result router calls it with its periodic count flush, and
        :meth:`snapshot` does): one histogram update per batch cost the inference thread more
        than the score itself, and a scrape a quarter of a second behind shows the same distribution."""
        with self._batch_lock:
            self._novelty.append(scores)

    def flush_novelty(self) -> bool:
        """Carry the buffered novelty scores into their histogram (same buckets and sum); False
        when there were none."""
        with self._batch_lock:
            pending, self._novelty = self._novelty, []
        if not pending:
            return False
        observe_many(self.novelty_score, np.concatenate(pending))
        return True

    def track_queue_depth(self, read: Callable[[], float]) -> None:
        """Read the queue depth at scrape/snapshot time instead of setting it on every change."""
        self.queue_depth.set_function(read)

    def start(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve /metrics over HTTP on ``port`` from a daemon thread (0 picks a free port)."""
        if self._server is not None:
            return
        result = start_http_server(port, addr=addr, registry=self.registry)
        self._server = result[0] if isinstance(result, tuple) else None
        log.info("Prometheus metrics on http://%s:%d/metrics", addr, self.port or port)

    @property
    def port(self) -> int | None:
        """The port the HTTP exporter listens on, when started."""
        return None if self._server is None else int(self._server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready summary: counters and gauges as numbers (per-sensor ones as dicts with a
        ``total``), histograms as count/sum/mean and bucket-interpolated quantiles."""
        self.flush_batches()
        self.flush_novelty()
        out: dict[str, Any] = {}
        for family in self.registry.collect():
            name = family.name.removeprefix(NAMESPACE + "_")
            if family.type == "histogram":
                out[name] = _histogram_summary(family.samples)
            elif family.type in ("counter", "gauge"):
                out[name] = _value_summary(family.samples, family.type, name in PER_SENSOR)
        return out


def observe_many(histogram: Histogram, values: np.ndarray) -> None:
    """Observe every value of ``values`` with one update per bucket that receives any.

    The same buckets and sum as calling ``observe`` once per value, without the Python call per
    value on the inference thread (a batch of 32 windows is one bucket count, not 32 observations).
    It reads the histogram's bucket bounds and values, so with a prometheus_client that keeps them
    elsewhere it falls back to one ``observe`` per value.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for x in v.tolist():
            histogram.observe(x)
        return
    # the first bucket whose upper bound is >= the value, as observe() picks it (NaN: none)
    counts = np.bincount(np.searchsorted(np.asarray(bounds), v, side="left"), minlength=len(bounds) + 1)
    total.inc(float(v.sum()))
    for i in np.flatnonzero(counts[: len(bounds)]).tolist():
        buckets[i].inc(int(counts[i]))


def _value_summary(samples: list[Any], kind: str, per_sensor: bool) -> float | dict[str, Any]:
    values = [s for s in samples if kind != "counter" or s.name.endswith("_total")]
    labelled = [s for s in values if s.labels]
    if not per_sensor and labelled:  # e.g. outbox_dropped{reason}: {"total", "by_reason": {...}}
        label = next(iter(labelled[0].labels))
        by = {s.labels.get(label, ""): float(s.value) for s in labelled}
        return {"total": float(sum(by.values())), f"by_{label}": by}
    if not per_sensor:
        return float(values[0].value) if values else 0.0
    by_sensor = {s.labels.get("sensor", ""): float(s.value) for s in values}
    return {"total": float(sum(by_sensor.values())), "by_sensor": by_sensor}


def _histogram_summary(samples: list[Any]) -> dict[str, float | None]:
    buckets = [(float(s.labels["le"]), float(s.value)) for s in samples if s.name.endswith("_bucket")]
    count = next((float(s.value) for s in samples if s.name.endswith("_count")), 0.0)
    total = next((float(s.value) for s in samples if s.name.endswith("_sum")), 0.0)
    mean = total / count if count else None
    summary: dict[str, float | None] = {"count": count, "sum": total, "mean": mean}
    for q in QUANTILES:
        summary[f"p{round(q * 100)}"] = bucket_quantile(buckets, count, q)
    return summary


def bucket_quantile(buckets: list[tuple[float, float]], count: float, q: float) -> float | None:
    """Estimate a quantile from cumulative buckets by linear interpolation (as PromQL does)."""
    if count <= 0:
        return None
    rank = q * count
    lower_bound, lower_count = 0.0, 0.0
    for upper, cum in sorted(buckets):
        if cum >= rank:
            if upper == float("inf"):
                return lower_bound  # above the highest finite bucket: report its bound
            span = cum - lower_count
            return lower_bound + (upper - lower_bound) * ((rank - lower_count) / span if span else 1.0)
        lower_bound, lower_count = upper, cum
    return lower_bound
