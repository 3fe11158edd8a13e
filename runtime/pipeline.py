"""Per-model and per-sensor wiring: which backend, batcher, windower and state machine serve whom.

A model file is loaded once (:class:`ModelRuntime`: backend + micro-batcher on one inference
thread) however many sensors use it; each sensor gets its own :class:`SensorPipeline`
(windower + fault-state tracker, and its novelty tracker when the model is calibrated). Problems
found here are reported per sensor so the daemon can serve the sensors that are fine.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.artifact import ModelMetadata, sha256_file
from runtime.backends import AnyBackendConfig, create_backend, open_model
from runtime.backends.base import Backend
from runtime.batching import BatchResult, MicroBatcher
from runtime.config import BatchingConfig, DaemonConfig
from runtime.errors import ConfigError, DrsnEdgeError
from runtime.fault_state import FaultStateTracker
from runtime.novelty.baseline import baseline_path
from runtime.novelty.sensor import SensorNovelty
from runtime.novelty.stats import NoveltyScorer, NoveltyStatsError, scorer_of
from runtime.window_group import WindowGroup
from runtime.windowing import SensorWindower, check_rates, signal_spec

log = logging.getLogger(__name__)


@dataclass
class ModelRuntime:
    """One loaded model: its metadata, backend and batcher (which owns the inference thread)."""

    path: Path
    metadata: ModelMetadata
    batcher: MicroBatcher
    #: scores the batch's features against the training data; None: novelty off for this model
    scorer: NoveltyScorer | None = None
    #: the window state of this model's sensors, one group per hop (windowed together per block)
    groups: dict[int, WindowGroup] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """What baselines are tied to: the weights' sha256, or the file's for a model without one."""
        return self.metadata.weights_sha256 or sha256_file(self.path)

    @property
    def identity(self) -> dict[str, Any]:
        """What the state and event payloads say about the model."""
        m = self.metadata
        return {"name": m.model.name, "version": m.model.version, "sha256": m.weights_sha256,
                "precision": m.precision, "backend": self.batcher.backend.name}

    def window_group(self, hop: int) -> WindowGroup:
        """The group of this model's sensors that use ``hop``; it normalises a block's windows in one
        call right after cutting them (while they are in the cache), so batches need no second pass;
        a network sensor's lone chunk (the one-chunk path) leaves its one or two windows raw for the
        batcher, which normalises them with the rest of the batch in one call."""
        group = self.groups.get(hop)
        if group is None:
            spec = signal_spec(self.metadata)
            group = WindowGroup(spec.window, hop, spec.channels, spec.sample_rate,
                                self.metadata.normalization, True, time.monotonic, time.time,
                                rows_raw=True)  # the batcher normalises the one-chunk path's windows
            self.groups[hop] = group
        return group

    def close(self) -> None:
        self.batcher.close()


@dataclass
class SensorPipeline:
    """One sensor: its windower, its state machine, the model it uses.

    ``local_clock``: the fault state's durations run on the local monotonic time a window arrived
    (live sources: a sender's clock may step); False for sources paced ``fast``, whose windows
    carry their own signal time and arrive faster than real time. ``last_window`` (monotonic) is
    when the sensor's last window was classified, for the no-data watchdog.
    """

    sensor_id: str
    rate: float
    model: ModelRuntime
    windower: SensorWindower
    tracker: FaultStateTracker
    errors: list[str] = field(default_factory=list)
    local_clock: bool = True
    last_window: float = field(default_factory=time.monotonic)
    #: None: this sensor scores no novelty (model without features/statistics, or threshold off)
    novelty: SensorNovelty | None = None


#: makes the backend of a model file instead of the config's (the benchmark's null backend)
BackendFactory = Callable[[Path, ModelMetadata], Backend]


def open_model_runtime(path: Path, backend_cfg: AnyBackendConfig, batching: BatchingConfig,
                       on_batch: Callable[[BatchResult], None],
                       make_backend: BackendFactory | None = None) -> ModelRuntime:
    """Read the model's metadata, create its backend and start the batcher (loads the backend there)."""
    meta = open_model(path)
    signal_spec(meta)  # a 2-D image model cannot serve vibration sensors
    backend = (create_backend(path, config=backend_cfg, metadata=meta) if make_backend is None
               else make_backend(path, meta))
    batcher = MicroBatcher(backend, max_batch=batching.max_batch, max_wait_ms=batching.max_wait_ms,
                           normalization=meta.normalization,  # windows come raw: normalised per batch
                           max_queue=batching.max_queue, on_batch=on_batch, name=f"infer-{path.stem}")
    batcher.start(timeout=600)
    scorer = None
    if backend.has_features:  # the backend warned once already when the model has no features output
        try:
            scorer = scorer_of(meta, str(path))
        except NoveltyStatsError as exc:  # classification still serves; the state cannot be unfamiliar
            log.error("novelty is off for %s: %s", path.name, exc)
    log.info("model %s version %s (%s, %d classes, %g Hz, window %d) on %s", meta.model.name,
             meta.model.version, path.name, len(meta.classes), meta.signal.sample_rate if meta.signal else 0,
             meta.signal.window if meta.signal else 0, backend.name)
    return ModelRuntime(path, meta, batcher, scorer)


def build_sensor(
    sensor_id: str, rate: float, model: ModelRuntime, cfg: DaemonConfig, start_seq: int
) -> SensorPipeline:
    """Check the sensor against its model and build its windower and tracker (ConfigError if impossible)."""
    meta = model.metadata
    spec = signal_spec(meta)
    check_rates(sensor_id, rate, spec.sample_rate)
    override = cfg.sensors.get(sensor_id)
    hop = override.hop if override is not None else None
    own_state = override.fault_state if override is not None else None
    fs_cfg = own_state if own_state is not None else cfg.fault_state
    windower = SensorWindower(sensor_id, rate, meta, hop=hop, group=model.window_group(hop or spec.hop))
    tracker = FaultStateTracker(sensor_id, meta.classes, meta.healthy_class, fs_cfg, start_seq=start_seq)
    fast = any(getattr(src, "pacing", None) == "fast" and sensor_id in _sensor_ids(src)
               for src in cfg.sources)
    own_novelty = override.novelty if override is not None else None
    nv_cfg = (own_novelty if own_novelty is not None else cfg.novelty).resolved(
        fs_cfg.history, fs_cfg.min_duration_s, (hop or spec.hop) / spec.sample_rate)
    novelty = None
    learn = override.baseline if override is not None else None
    stored = cfg.state_dir is not None and baseline_path(cfg.state_dir, sensor_id).exists()
    if model.scorer is not None and (nv_cfg.threshold != "off" or learn is not None or stored):
        period = (hop or spec.hop) / spec.sample_rate
        windows = None if learn is None else math.ceil(learn.learn / period)
        try:
            novelty = SensorNovelty(sensor_id, model.scorer, nv_cfg, model_sha256=model.key,
                                    state_dir=cfg.state_dir, learn_windows=windows)
            if windows is not None and novelty.baseline is None:
                novelty.learn(windows)
                log.info("sensor %s: learning its baseline over the next %d windows (%g s); it must run "
                         "healthy", sensor_id, windows, learn.learn if learn else 0)
        except NoveltyStatsError as exc:  # e.g. a threshold name the model was not calibrated with
            raise ConfigError(f"sensor {sensor_id!r}: {exc}") from exc
        except ConfigError as exc:
            raise ConfigError(f"sensor {sensor_id!r}: {exc}") from exc
    elif learn is not None:
        raise ConfigError(f"sensor {sensor_id!r} learns a baseline but its model {model.path.name} has no "
                          "features output or novelty statistics; re-export and calibrate the model")
    return SensorPipeline(sensor_id, rate, model, windower, tracker, local_clock=not fast, novelty=novelty)


def _sensor_ids(src: Any) -> list[str]:
    ids = getattr(src, "sensor_ids", None)
    return list(ids()) if callable(ids) else []


def model_path_for(sensor_id: str, cfg: DaemonConfig) -> Path:
    override = cfg.sensors.get(sensor_id)
    return override.model if override is not None and override.model is not None else cfg.model


def check_plan(cfg: DaemonConfig, sensors: dict[str, float]) -> list[str]:
    """Everything that can be checked without loading a backend; one message per problem.

    A model file that cannot be read is reported once, not once per sensor that uses it.
    """
    problems: list[str] = []
    metas: dict[Path, ModelMetadata | None] = {}
    for sid, rate in sensors.items():
        path = model_path_for(sid, cfg)
        if path not in metas:
            try:
                metas[path] = open_model(path)
            except DrsnEdgeError as exc:
                metas[path] = None
                problems.append(str(exc))
        meta = metas[path]
        if meta is None:
            continue
        try:
            spec = signal_spec(meta)
            check_rates(sid, rate, spec.sample_rate)
            override = cfg.sensors.get(sid)
            hop = override.hop if override is not None and override.hop is not None else spec.hop
            if hop > 4 * spec.window:
                raise ConfigError(f"hop {hop} skips most of the signal (window {spec.window}); "
                                  "use a hop of at most four windows")
        except DrsnEdgeError as exc:
            msg = str(exc)
            problems.append(msg if repr(sid) in msg else f"sensor {sid!r}: {msg}")
    return problems
