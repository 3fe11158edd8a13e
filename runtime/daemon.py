"""The monitoring daemon's lifecycle: start, serve, reload, stop — losing nothing on the way.

Threads: each source has its own (chunks -> windows -> batcher queue); each model has one
inference thread (batch -> probabilities -> fault state -> events, routed by
:class:`~runtime.results_router.ResultRouter`, payloads built in :mod:`runtime.results`); the
MQTT publisher has a worker; the main thread only supervises (signals, reload, periodic
metrics). Events are handed to the publisher, which commits them to the SQLite outbox before
anything is sent.

Order of shutdown (SIGTERM/SIGINT): stop sources, drain the batchers (every window already cut
is classified), hand the last events to the outbox, publish ``stopped`` and disconnect cleanly.

Samples reach the batchers through :class:`~runtime.chunk_router.ChunkRouter` (source threads;
``fast`` sources are pushed back at a full queue, live ones never blocked).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from runtime.chunk_router import ChunkRouter
from runtime.config import DaemonConfig
from runtime.diagnostics.monitor import EnvelopeMonitor
from runtime.diagnostics.wiring import build_monitor
from runtime.errors import ConfigError, DrsnEdgeError
from runtime.fault_state import StateChange
from runtime.metrics import Metrics
from runtime.mqtt.outbox import Outbox
from runtime.mqtt.publisher import MqttPublisher
from runtime.mqtt.throttle import LogThrottle, clip
from runtime.novelty.route import relearn
from runtime.pipeline import (
    BackendFactory,
    ModelRuntime,
    SensorPipeline,
    build_sensor,
    model_path_for,
    open_model_runtime,
)
from runtime.preflight import ensure_outbox_dir
from runtime.publish_hooks import PublishHook
from runtime.results_metrics import CountCarrier, metrics_payload
from runtime.results_router import ResultRouter
from runtime.sdnotify import Notifier
from runtime.sensor_watch import count_restarts, stale_changes, update_stale_gauges
from runtime.sources import Source, create_source

log = logging.getLogger(__name__)
_command_log = LogThrottle(log)  # commands come from the network: one line per kind every 10 s

_TICK_S = 0.2
#: exit status when the daemon gives up because it can no longer deliver (systemd restarts it)
EXIT_NO_PROGRESS = 3


class Daemon:
    """Runs one :class:`DaemonConfig`; use :meth:`run` (blocking) or :meth:`start`/:meth:`stop`."""

    def __init__(self, config: DaemonConfig, *, metrics: Metrics | None = None,
                 publish_hooks: Iterable[PublishHook] = (),
                 make_backend: BackendFactory | None = None) -> None:
        self.config = config
        self._make_backend = make_backend  # None: the config's backend (the benchmark passes a stand-in)
        self.metrics = metrics or Metrics()
        #: observers of what is published (e.g. the benchmark's PUBACK timer); see runtime.publish_hooks
        self.publish_hooks: list[PublishHook] = list(publish_hooks)
        self.sources: list[Source[Any]] = [create_source(s) for s in config.sources]
        self.sensors: dict[str, SensorPipeline] = {}
        self.models: dict[Path, ModelRuntime] = {}
        self.outbox: Outbox | None = None
        self.publisher: MqttPublisher | None = None
        self.disabled: dict[str, str] = {}
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._state_lock = threading.Lock()
        self._next_metrics = 0.0
        self._supervisor: threading.Thread | None = None
        self.exit_code = 0
        #: systemd notifications (READY, WATCHDOG while healthy, STOPPING); no-op outside systemd
        self.notifier = Notifier()
        self._counts = CountCarrier(self.metrics)  # publisher and batcher totals -> Prometheus
        #: batches -> fault states -> events, states, predictions (runtime.results_router)
        self.results = ResultRouter(config, self.metrics, self.sensors, self._state_lock,
                                    lambda: self.publisher, self.publish_hooks)
        #: chunks -> windows -> batcher queues, bad input counted (runtime.chunk_router)
        self.intake = ChunkRouter(self.metrics, self.sensors, self.disabled, self._stop)
        self._restart_counts: dict[int, int] = {}  # source restarts already carried into Prometheus
        self.diagnostics: EnvelopeMonitor | None = None  # envelope evidence (runtime.diagnostics)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Open the outbox and the broker link, load models, check sensors, start sources."""
        cfg = self.config
        out_cfg = cfg.mqtt.outbox
        ensure_outbox_dir(out_cfg.path)  # a ConfigError naming the fix, not a raw OSError
        self.outbox = Outbox.from_config(out_cfg)
        if self.outbox.moved_aside is not None:
            self.metrics.outbox_corrupt.inc()
        self.publisher = MqttPublisher(cfg.mqtt, self.outbox, on_command=self._on_command,
                                       on_acked=self.results.on_acked,
                                       on_committed=self.results.on_committed)
        self.publisher.start()
        self._build_sensors()
        if not self.sensors:
            raise ConfigError("no sensor can be served: " + "; ".join(self.disabled.values()))
        self.diagnostics = build_monitor({sid: o.diagnostics for sid, o in cfg.sensors.items()}, self.sensors,
                                         self.publisher, lambda sid: self.results.publish_state(
                                             self.sensors[sid]), metrics=self.metrics)
        self.results.diagnostics = self.intake.diagnostics = self.diagnostics
        for sp in self.sensors.values():
            self.results.publish_state(sp)
        self.metrics.track_queue_depth(
            lambda: float(sum(m.batcher.queue_depth for m in self.models.values())))
        if cfg.metrics.prometheus_port is not None:
            self.metrics.start(cfg.metrics.prometheus_port, cfg.metrics.prometheus_addr)
        for src in self.sources:
            src.start(self.intake.handler(src), self.intake.on_source_error, self.intake.block_handler(src))
        # reloads, periodic metrics and the end of finite sources are handled on a thread of their
        # own, so that start()/stop() (tests, benchmarks, embedding) behave exactly like run()
        self._supervisor = threading.Thread(target=self._supervise, name="daemon-supervisor", daemon=True)
        self._supervisor.start()
        log.info("daemon serving %d sensor(s) on %d model(s); %d disabled",
                 len(self.sensors), len(self.models), len(self.disabled))
        self.notifier.ready()

    def run(self, install_signals: bool = True) -> int:
        """Start, then wait until SIGTERM/SIGINT (or the sources end); return an exit code."""
        if install_signals:
            self._install_signal_handlers()
        try:
            self.start()
            while not self._stop.wait(_TICK_S):  # short waits: signal handlers run on this thread
                self._ping_watchdog()
        finally:
            self.stop()
        return self.exit_code

    def _supervise(self) -> None:
        while not self._stop.wait(_TICK_S):
            try:
                self._tick()
            except Exception:  # supervision must outlive one bad tick (a failed reload, a metrics error)
                log.exception("daemon supervision step failed; continuing")

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    def stop(self) -> None:
        """Graceful shutdown; idempotent."""
        self._stop.set()
        self.notifier.stopping()
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join()  # a reload in progress finishes before the models are closed
        for src in self.sources:
            src.stop()
        closing = list(self.models.values())
        for m in closing:
            m.close()  # drains queued windows through on_batch
        self.models.clear()
        self.results.flush_counts()  # the last windows' counts (the inference threads add them in bursts)
        self._count_batcher_losses(closing)
        if self.diagnostics is not None:
            self.diagnostics.close()  # the last events, with their evidence, reach the publisher
        if self.publisher is not None:
            for sp in self.sensors.values():  # the retained states carry the final window counts
                self.results.publish_state(sp)
            self.publisher.publish_metrics(metrics_payload(self.metrics, self.publisher, self.disabled))
            self.publisher.close(timeout=5.0)
            self._counts.publisher(self.publisher.stats())
            self.publisher = None
        if self.outbox is not None:
            self.outbox.close()
            self.outbox = None
        self.metrics.stop()
        log.info("daemon stopped")

    # -- building ---------------------------------------------------------------------------

    def _build_sensors(self) -> None:
        assert self.publisher is not None
        for src in self.sources:
            for sid, rate in src.sensors.items():
                override = self.config.sensors.get(sid)
                if override is not None and not override.enabled:
                    self.disabled[sid] = f"sensor {sid!r} is disabled in the config"
                    continue
                try:
                    model = self._model(model_path_for(sid, self.config))
                    start_seq = self.publisher.last_seq(sid)
                    self.sensors[sid] = build_sensor(sid, rate, model, self.config, start_seq)
                except DrsnEdgeError as exc:
                    self.disabled[sid] = str(exc)
                    log.error("sensor %s is not served: %s", sid, exc)

    def _model(self, path: Path) -> ModelRuntime:
        found = self.models.get(path)
        if found is None:
            found = open_model_runtime(path, self.config.backend, self.config.batching, self.results.on_batch,
                                       self._make_backend)
            self.models[path] = found
        return found

    # -- commands, supervision -------------------------------------------------------

    def _on_command(self, command: dict[str, Any]) -> None:
        action = command.get("action")
        if action == "reload":
            log.info("reload requested over MQTT")
            self._reload.set()
        elif action == "relearn":
            relearn(command.get("sensor"), self.sensors, self._state_lock)
        else:
            _command_log.warning("unknown", "ignoring unknown MQTT command %s; known actions: reload, "
                                 "relearn", clip(action, 70))

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            log.info("received %s; shutting down", signal.Signals(signum).name)
            self._stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: self._reload.set())

    def _tick(self) -> None:
        if self._reload.is_set():
            self._reload.clear()
            self.reload()
        self.results.flush_counts()  # window counters at most a tick behind, also once windows stop
        if not self._watch_inputs():
            return
        if self.diagnostics is not None:
            self.diagnostics.supervise()
        pub = self.publisher
        if pub is not None:
            st = pub.stats()
            self.metrics.outbox_depth.set(st.outbox_depth)
            self.metrics.broker_connected.set(1.0 if st.connected else 0.0)
            self._counts.publisher(st)
            if self._publisher_gave_up(pub):
                return
            interval = self.config.mqtt.metrics_interval_s
            now = time.monotonic()
            if interval > 0 and now >= self._next_metrics:
                self._next_metrics = now + interval
                pub.publish_metrics(metrics_payload(self.metrics, pub, self.disabled))
        self._count_batcher_losses()
        if self.config.exit_when_sources_finish and all(s.finished.is_set() for s in self.sources):
            log.info("all sources finished; stopping")
            self._stop.set()

    def _watch_inputs(self) -> bool:
        """No-data watchdog, source restarts, inference threads; False when the daemon must exit."""
        with self._state_lock:
            changes = stale_changes(self.sensors, time.monotonic(), time.time())
        if changes:
            self.results.publish_changes(changes)
        update_stale_gauges(self.metrics, self.sensors)
        count_restarts(self.metrics, self.sources, self._restart_counts)
        dead = [m.path.name for m in self.models.values() if not m.batcher.running]
        if dead and not self._stop.is_set():
            log.critical("the inference thread of %s has ended; exiting with status %d so that the service "
                         "manager restarts the daemon", ", ".join(dead), EXIT_NO_PROGRESS)
            self.exit_code = EXIT_NO_PROGRESS
            self._stop.set()
            return False
        return True

    def _ping_watchdog(self) -> None:
        """Main thread: ``WATCHDOG=1`` while events can still be delivered.

        Not from the supervision thread: a reload that builds a TensorRT engine blocks it for
        minutes, and serving goes on meanwhile.
        """
        pub = self.publisher
        if pub is not None and pub.alive and pub.failure is None:
            self.notifier.ping()

    def _publisher_gave_up(self, pub: MqttPublisher) -> bool:
        """Stop with a non-zero status when the publisher cannot deliver any more (systemd restarts)."""
        why = pub.failure if pub.alive else "the MQTT worker thread has ended"
        if why is None:
            return False
        if not self._stop.is_set():
            log.critical("cannot deliver events any more (%s); stopping with exit status %d",
                         why, EXIT_NO_PROGRESS)
            self.exit_code = EXIT_NO_PROGRESS
            self._stop.set()
        return True

    def _count_batcher_losses(self, models: Iterable[ModelRuntime] | None = None) -> None:
        """Carry the batchers' dropped-window and failed-call counts into the metrics."""
        self._counts.batchers(m.batcher for m in (list(self.models.values()) if models is None else models))

    # -- reload -----------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-open every model file whose weights changed; a bad new file keeps the old model serving."""
        from runtime.backends import open_model

        for path, old in list(self.models.items()):
            try:
                meta = open_model(path)
            except DrsnEdgeError as exc:
                log.error("reload: %s is unusable (%s); keeping the loaded model", path, exc)
                continue
            if meta == old.metadata:  # weights, precision, version, classes...: any change reloads
                log.info("reload: %s unchanged", path.name)
                continue
            self._swap_model(path, old)

    def _swap_model(self, path: Path, old: ModelRuntime) -> None:
        try:
            new = open_model_runtime(path, self.config.backend, self.config.batching, self.results.on_batch,
                                     self._make_backend)
        except DrsnEdgeError as exc:
            log.error("reload: cannot load %s (%s); keeping the loaded model", path, exc)
            return
        users = [sid for sid, sp in self.sensors.items() if sp.model is old]
        rebuilt: dict[str, SensorPipeline] = {}
        resets: list[tuple[SensorPipeline, StateChange]] = []
        with self._state_lock:  # no batch may advance an old tracker's seq between copy and swap
            try:
                for sid in users:  # every sensor must accept the new model before any is touched
                    build_sensor(sid, self.sensors[sid].rate, new, self.config, 0)
            except DrsnEdgeError as exc:
                log.error("reload: a sensor cannot use the new model (%s); keeping the old one", exc)
            else:
                now = time.time()
                for sid in users:
                    sp = self.sensors[sid]
                    # the new model has not judged yet: leave the state with an event, so the
                    # event stream stays a chain (each event's "from" is the previous "to")
                    change = sp.tracker.reset(now, "model reloaded")
                    if change is not None:
                        resets.append((sp, change))
                    rebuilt[sid] = build_sensor(sid, sp.rate, new, self.config, sp.tracker.seq)
                self.sensors.update(rebuilt)
                self.models[path] = new
        if resets:
            self.results.publish_changes(resets)
        if not rebuilt:
            new.close()
            return
        old.close()
        self._count_batcher_losses([old])
        for sp in rebuilt.values():
            self.results.publish_state(sp)
        log.info("reload: %s now serves %s version %s", path.name, new.metadata.model.name,
                 new.metadata.model.version)


def run_daemon(config: DaemonConfig, *, on_started: Callable[[Daemon], None] | None = None) -> int:
    """Entry point used by `drsn-edge run`."""
    daemon = Daemon(config)
    if on_started is not None:
        on_started(daemon)
    return daemon.run()
