"""The benchmark's sensors: simulated recordings replayed through the daemon's real config path.

Simulating 64 bearings live costs more CPU than classifying them (the simulator makes about
100k samples per CPU-second), which would measure the simulator, not the daemon. So a few
recordings (one per bearing condition) are simulated once, saved as ``.npy`` with a rate
sidecar, and every sensor replays one of them in a loop. Replay only slices arrays, which is as
cheap as samples arriving from a network source, and goes through the same windowing,
batching, inference, fault state and publishing as any live source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from runtime.signals.simulator import CONDITIONS, BearingSimulator

Pacing = Literal["fast", "realtime"]


@dataclass(frozen=True)
class Workload:
    """What the daemon is asked to serve."""

    model: Path
    sensors: int
    sample_rate: float
    chunk: int
    batch: int
    max_wait_ms: float
    threads: int
    prediction_qos: Literal[0, 1] | None  # None: no per-window results (events and states only)
    outbox_sync: Literal["normal", "full"]
    #: per-window results as one message per window, or one per inference batch (mqtt.predictions)
    predictions: Literal["window", "batch"] = "window"
    #: null: a constant stand-in for the model (runtime.bench.null_backend), the daemon's own cost
    backend: Literal["onnxruntime", "null"] = "onnxruntime"
    #: novelty scoring on every sensor with the daemon's default settings (needs a calibrated model);
    #: False sets ``novelty.threshold: off``
    novelty: bool = False


def make_recordings(folder: Path, sample_rate: float, seconds: float, seed: int = 0) -> list[Path]:
    """One looping recording per bearing condition, as .npy plus a ``{"sample_rate": ...}`` sidecar."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    n = round(seconds * sample_rate)
    for i, condition in enumerate(CONDITIONS):
        sim = BearingSimulator(condition=condition, severity=1.0, sample_rate=sample_rate, seed=seed + i)
        path = folder / f"{condition}.npy"
        np.save(path, np.asarray(sim.generate(n), dtype=np.float32))
        (folder / f"{condition}.json").write_text(json.dumps({"sample_rate": sample_rate}))
        paths.append(path)
    return paths


def sensor_id(i: int) -> str:
    return f"s{i:03d}"


def daemon_config(work: Workload, recordings: list[Path], pacing: Pacing, host: str, port: int,
                  outbox: Path, network: bool = False) -> dict[str, Any]:
    """The daemon config (as the dict a YAML file would hold) for one benchmark phase.

    ``network``: the sensors arrive as UDP frames on a free local port (see
    :mod:`runtime.bench.feeder`) instead of being replayed inside the daemon.
    """
    source: dict[str, Any]
    ids = [sensor_id(i) for i in range(work.sensors)]
    if network:
        source = {"type": "udp", "host": "127.0.0.1", "port": 0, "payload": "binary",
                  "sensors": [{"id": sid, "sample_rate": work.sample_rate} for sid in ids]}
    else:
        files = [{"id": sid, "path": str(recordings[i % len(recordings)])} for i, sid in enumerate(ids)]
        source = {"type": "replay", "files": files, "chunk": work.chunk, "pacing": pacing, "loop": True}
    return {
        "model": str(work.model),
        "backend": {"type": "onnxruntime", "providers": ["CPUExecutionProvider"],
                    "intra_op_threads": work.threads, "inter_op_threads": 1},
        "sources": [source],
        # fast: the source is pushed back at a full queue, so a short queue keeps inference fed and
        # lets the phase end without draining thousands of windows; realtime: the daemon's default
        "batching": {"max_batch": work.batch, "max_wait_ms": work.max_wait_ms,
                     "max_queue": 8 * work.batch if pacing == "fast" else 4096},
        "mqtt": {
            "host": host, "port": port, "device_id": "bench", "client_id": f"drsn-bench-{pacing}",
            "publish_predictions": work.prediction_qos is not None, "predictions": work.predictions,
            "metrics_interval_s": 0,
            "outbox": {"path": str(outbox), "synchronous": work.outbox_sync},
        },
        "prediction_qos": work.prediction_qos or 0,
        "logging": {"level": "WARNING"},
        **({} if work.novelty else {"novelty": {"threshold": "off"}}),  # on: the daemon's own default
    }
