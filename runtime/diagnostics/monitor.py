"""Envelope evidence inside the daemon: a ring of recent raw samples per sensor and one worker.

Why a worker: an envelope analysis costs tens of milliseconds, far more than a batch of
inference, so it must not run on an inference thread. Events of a sensor that has diagnostics
therefore go through this module's queue (in order, so a sensor's events never overtake each
other): an event that enters a fault state gets the evidence from the sensor's last
``seconds`` of raw samples before it is published; other events pass straight through. The
worker also runs the periodic analyses (``every_s``) and raises the envelope's own alert when a
strong signature shows while the classifier says healthy (``alert_unseen``).

An analysis waits (at most the ring's duration plus a second) for a ring that is still filling,
as after a start on a machine that is already faulty. Nothing is lost when an analysis fails:
the event is published with ``envelope.error`` and ``corroborated: not_applicable``, the failure
is logged and counted, and a worker that dies is restarted by :meth:`EnvelopeMonitor.supervise`
(called from the daemon's supervisor tick). With the speed read from a topic
(:mod:`runtime.diagnostics.speed`), a missing, stale or zero speed, or one too low for the ring
to resolve, makes the evidence ``{"reason": ...}`` and the event ``corroborated: not_applicable``.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime.diagnostics.config import DiagnosticsConfig
from runtime.diagnostics.envelope import EnvelopeReport, analyse, required_samples
from runtime.diagnostics.metrics import DiagnosticsMetrics
from runtime.diagnostics.speed import SpeedBoard, SpeedListener

log = logging.getLogger(__name__)

EventSink = Callable[[list[tuple[str, dict[str, Any]]]], object]
_FAULT_OF_CLASS = (
    (re.compile(r"^(ir|inner)", re.IGNORECASE), "inner_race"),
    (re.compile(r"^(or|outer)", re.IGNORECASE), "outer_race"),
    (re.compile(r"^(b\d|ball|rolling)", re.IGNORECASE), "ball"),
)


def fault_type_of_class(name: str) -> str | None:
    """The bearing fault type a class name stands for (``IR007`` -> inner_race), or None."""
    return next((fault for pattern, fault in _FAULT_OF_CLASS if pattern.match(name)), None)


class SampleRing:
    """The last ``capacity`` samples of one sensor; written by its source thread, read by the worker."""

    def __init__(self, capacity: int) -> None:
        self._buf = np.zeros(capacity, dtype=np.float32)
        self._pos = 0
        self._filled = 0
        self.total = 0  # samples ever pushed: the ring's clock in signal time
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return int(self._buf.size)

    @property
    def filled(self) -> int:
        return self._filled

    def push(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, dtype=np.float32).ravel()[-self._buf.size :]
        with self._lock:
            end = self._pos + x.size
            if end <= self._buf.size:
                self._buf[self._pos : end] = x
            else:
                split = self._buf.size - self._pos
                self._buf[self._pos :] = x[:split]
                self._buf[: x.size - split] = x[split:]
            self._pos = end % self._buf.size
            self._filled = min(self._filled + x.size, self._buf.size)
            self.total += x.size

    def snapshot(self) -> np.ndarray:
        """The samples held, oldest first (fewer than ``capacity`` until the ring has filled)."""
        with self._lock:
            if self._filled < self._buf.size:
                ordered: np.ndarray = self._buf[: self._filled].copy()
            else:
                ordered = np.concatenate([self._buf[self._pos :], self._buf[: self._pos]])
            return ordered


@dataclass
class SensorDiagnostics:
    """One sensor's diagnostics: its config, sample rate, ring and latest evidence."""

    sensor_id: str
    config: DiagnosticsConfig
    rate: float
    ring: SampleRing
    last: dict[str, Any] | None = None
    last_report: EnvelopeReport | None = None
    last_total: int = 0  # ring.total at the last successful analysis
    alerted: str | None = None
    next_due: float = 0.0


@dataclass
class MonitorStats:
    analyses: int = 0
    reused: int = 0
    errors: int = 0
    no_speed: int = 0
    alerts: int = 0
    cpu_s: float = 0.0  # thread CPU time spent in analyses
    restarts: int = 0
    by_sensor: dict[str, int] = field(default_factory=dict)


class EnvelopeMonitor:
    """Owns the rings and the worker; the daemon calls feed / submit / supervise / close."""

    def __init__(
        self,
        sensors: Mapping[str, SensorDiagnostics],
        publish_events: EventSink,
        publish_state: Callable[[str], None],
        publish_alert: Callable[[str, dict[str, Any]], None],
        is_healthy: Callable[[str], bool],
        metrics: DiagnosticsMetrics | None = None,
        speeds: SpeedBoard | None = None,
    ) -> None:
        self.sensors = dict(sensors)
        self.metrics = metrics
        self.speeds = speeds if speeds is not None else SpeedBoard()
        self.listener: SpeedListener | None = None  # started by the wiring when a speed comes from a topic
        self._publish_events, self._publish_state = publish_events, publish_state
        self._publish_alert, self._is_healthy = publish_alert, is_healthy
        self._jobs: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.stats = MonitorStats()

    @classmethod
    def build(
        cls, configs: Mapping[str, DiagnosticsConfig], rates: Mapping[str, float], **sinks: Any
    ) -> EnvelopeMonitor:
        """Rings sized for each configured sensor at its rate (ConfigError if too short to resolve)."""
        sensors = {
            sid: SensorDiagnostics(sid, cfg, rates[sid], SampleRing(cfg.buffer_samples(rates[sid])))
            for sid, cfg in configs.items()
            if sid in rates
        }
        return cls(sensors, **sinks)

    # -- called by the daemon -------------------------------------------------------------------

    def start(self) -> None:
        now = time.monotonic()
        for sd in self.sensors.values():
            sd.next_due = now + sd.config.every_s if sd.config.every_s > 0 else float("inf")
        self._worker = threading.Thread(target=self._run, name="envelope-diagnostics", daemon=True)
        self._worker.start()

    def handles(self, sensor_id: str) -> bool:
        return sensor_id in self.sensors

    def feed(self, sensor_id: str, samples: np.ndarray) -> None:
        """Source thread: keep the sensor's latest raw samples."""
        sd = self.sensors.get(sensor_id)
        if sd is not None:
            sd.ring.push(samples)

    def submit(
        self, sensor_id: str, payload: dict[str, Any], class_name: str | None, entered_fault: bool
    ) -> None:
        """Inference thread: queue one event of a diagnosed sensor (published by the worker, in order)."""
        self._jobs.put(("event", (sensor_id, payload, class_name, entered_fault)))

    def route(
        self, events: list[tuple[str, dict[str, Any]]], changes: Sequence[Any]
    ) -> list[tuple[str, dict[str, Any]]]:
        """Inference thread: take the events of diagnosed sensors (``changes`` are their StateChanges,
        in the same order); return the others for the daemon to publish itself."""
        rest = []
        for (sensor_id, payload), change in zip(events, changes, strict=True):
            if sensor_id in self.sensors and not self._closed:
                self.submit(sensor_id, payload, change.to_state, bool(change.fault))
            else:
                rest.append((sensor_id, payload))
        return rest

    def state_fields(self, sensor_id: str) -> dict[str, Any]:
        """What the sensor's retained state carries: the latest evidence, if any."""
        sd = self.sensors.get(sensor_id)
        return {} if sd is None or sd.last is None else {"envelope": sd.last}

    def supervise(self, now: float | None = None) -> None:
        """Supervisor tick: restart a dead worker, queue the periodic analyses that are due."""
        if self._closed:
            return
        worker = self._worker
        if worker is not None and not worker.is_alive():
            self.stats.restarts += 1
            if self.metrics is not None:
                self.metrics.worker_restarts.inc()
            log.error("envelope diagnostics worker died; restarting it (restart %d)", self.stats.restarts)
            self._worker = threading.Thread(target=self._run, name="envelope-diagnostics", daemon=True)
            self._worker.start()
        t = time.monotonic() if now is None else now
        for sd in self.sensors.values():
            if t >= sd.next_due:
                sd.next_due = t + sd.config.every_s
                self._jobs.put(("periodic", sd.sensor_id))

    def close(self, timeout: float = 10.0) -> None:
        """Publish every queued event, then stop the worker."""
        self._closed = True
        self._jobs.put(None)
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            if worker.is_alive():
                log.error("envelope diagnostics worker did not finish within %.0f s", timeout)
        if self.listener is not None:
            self.listener.stop()

    # -- worker ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            kind, body = job
            try:
                if kind == "event":
                    self._event(*body)
                else:
                    self._periodic(body)
            except Exception:  # one bad job must not end the worker; the event is already out
                self.stats.errors += 1
                log.exception("envelope diagnostics job %s failed", kind)

    def _wait_for_ring(self, sd: SensorDiagnostics) -> None:
        """A fault entered right after start finds the ring still filling: wait for it, at most
        the ring's own duration plus a second, so the evidence covers the length configured."""
        deadline = time.monotonic() + sd.config.seconds + 1.0
        while sd.ring.filled < sd.ring.capacity and time.monotonic() < deadline and not self._closed:
            time.sleep(0.05)

    def _speed(self, sd: SensorDiagnostics) -> tuple[float | None, str | None]:
        """The speed to analyse at, or why there is none usable (missing, stale, zero, too slow)."""
        cfg = sd.config
        topic = cfg.speed_topic
        if topic is None:
            return cfg.fixed_rpm, None
        rpm, why = self.speeds.reading(topic)
        if rpm is None:
            return None, why
        need = required_samples(cfg.resolved_bearing().frequencies(rpm), sd.rate, cfg.tolerance)
        if need > sd.ring.capacity:
            return None, (f"at {rpm:g} rpm the fault frequencies need {need / sd.rate:.2f} s of samples; the "
                          f"ring keeps {cfg.seconds:g} s: raise diagnostics.seconds to analyse this slow")
        return rpm, None

    def _evidence(
        self, sd: SensorDiagnostics, reuse: bool = False
    ) -> tuple[EnvelopeReport | None, dict[str, Any]]:
        cfg = sd.config
        fresh = sd.ring.total - sd.last_total < cfg.reuse_s * sd.rate
        if reuse and sd.last_report is not None and sd.last is not None and fresh:
            self.stats.reused += 1  # a flapping state must not cost an analysis per flap
            return sd.last_report, sd.last
        rpm, why = self._speed(sd)
        if rpm is None:
            self.stats.no_speed += 1
            if self.metrics is not None:
                self.metrics.speed_unavailable.labels(sd.sensor_id).inc()
            log.info("sensor %s: no envelope analysis: %s", sd.sensor_id, why)
            sd.last = {"reason": why, "bearing": cfg.resolved_bearing().name, "ts": time.time()}
            sd.last_report = None  # a later fault entry must not reuse evidence the state no longer shows
            return None, sd.last
        self._wait_for_ring(sd)
        t0 = time.thread_time()
        try:
            report = analyse(sd.ring.snapshot(), sd.rate, cfg.resolved_bearing(), rpm, cfg.settings())
        except Exception as exc:  # a ring that never filled (DataError: too short), a dead sensor
            self.stats.errors += 1
            if self.metrics is not None:
                self.metrics.failures.labels(sd.sensor_id).inc()
            log.warning("sensor %s: envelope analysis failed: %s", sd.sensor_id, exc)
            return None, {"error": str(exc), "ts": time.time()}
        finally:
            spent = time.thread_time() - t0
            self.stats.cpu_s += spent
            self.stats.analyses += 1
            self.stats.by_sensor[sd.sensor_id] = self.stats.by_sensor.get(sd.sensor_id, 0) + 1
            if self.metrics is not None:
                self.metrics.analyses.labels(sd.sensor_id).inc()
                self.metrics.analysis_seconds.observe(spent)
        summary = report.summary()
        summary.update(bearing=cfg.resolved_bearing().name, rpm=round(rpm, 2), ts=time.time())
        sd.last, sd.last_report, sd.last_total = summary, report, sd.ring.total
        return report, summary

    def _event(
        self, sensor_id: str, payload: dict[str, Any], class_name: str | None, entered_fault: bool
    ) -> None:
        sd = self.sensors[sensor_id]
        if entered_fault and sd.config.on_fault:
            try:
                report, summary = self._evidence(sd, reuse=True)
                expected = fault_type_of_class(class_name or "")
                corroborated: bool | str = "not_applicable"
                if report is not None and expected is not None:
                    corroborated = report.verdict == expected
                payload["envelope"] = summary
                payload["corroborated"] = corroborated
                if self.metrics is not None:
                    self.metrics.corroboration(corroborated)
                payload["alert"] = corroborated is not False or not sd.config.require_corroboration
            finally:
                self._publish_events([(sensor_id, payload)])
            self._publish_state(sensor_id)
            return
        payload["corroborated"] = "not_applicable"
        self._publish_events([(sensor_id, payload)])

    def _periodic(self, sensor_id: str) -> None:
        sd = self.sensors[sensor_id]
        report, summary = self._evidence(sd)
        self._publish_state(sensor_id)
        if report is None or not sd.config.alert_unseen:
            return
        if report.verdict == "none":
            sd.alerted = None  # the signature went away: a new one may alert again
            return
        if report.strength == "strong" and report.verdict != sd.alerted and self._is_healthy(sensor_id):
            sd.alerted = report.verdict
            self.stats.alerts += 1
            if self.metrics is not None:
                self.metrics.alerts.labels(sensor_id).inc()
            self._publish_alert(
                sensor_id,
                {
                    "sensor": sensor_id,
                    "kind": "envelope_signature",
                    "fault_type": report.verdict,
                    "classifier_state": "healthy",
                    "envelope": summary,
                    "ts": time.time(),
                },
            )
