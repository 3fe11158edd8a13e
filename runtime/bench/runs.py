"""The benchmark's phases: the bare backend in a loop, and the whole daemon fast or in real time.

Both sides use the same model, the same ONNX Runtime options and the same batch size, so the
ratio of their throughputs is the daemon's overhead and nothing else. The daemon runs in this
process with its real config path; a :class:`RecordingMetrics` (the daemon's own metrics class,
which the daemon accepts by injection) keeps the exact per-batch figures that Prometheus only
keeps as histogram buckets.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runtime.artifact import ModelMetadata
from runtime.backends import OnnxRuntimeConfig, create_backend, open_model
from runtime.bench.ack_timer import ResultAckTimer
from runtime.bench.null_backend import NullBackend, null_backend
from runtime.config import validate_config_dict
from runtime.daemon import Daemon
from runtime.metrics import Metrics
from runtime.progress import progress_bar
from runtime.publish_hooks import WindowRef
from runtime.signals.readers import read_signal
from runtime.windowing import SensorWindower, signal_spec

_TICK_S = 0.1


@dataclass
class PhaseResult:
    """What one phase measured; latencies are in seconds."""

    name: str
    seconds: float
    windows: int
    windows_per_s: float
    batch_sizes: list[int] = field(default_factory=list)
    infer_s: list[float] = field(default_factory=list)
    classify_latency_s: list[float] = field(default_factory=list)
    ack_latency_s: list[float] = field(default_factory=list)
    cpu_s: float = 0.0  # CPU time of this whole process (all threads) while measuring
    extra: dict[str, Any] = field(default_factory=dict)


def merge_phases(name: str, parts: list[PhaseResult]) -> PhaseResult:
    """Several measured stretches of the same configuration as one phase (sums and all samples)."""
    seconds, windows = sum(p.seconds for p in parts), sum(p.windows for p in parts)
    return PhaseResult(name, seconds, windows, windows / seconds if seconds > 0 else 0.0,
                       [x for p in parts for x in p.batch_sizes], [x for p in parts for x in p.infer_s],
                       [x for p in parts for x in p.classify_latency_s],
                       [x for p in parts for x in p.ack_latency_s], sum(p.cpu_s for p in parts),
                       dict(parts[-1].extra) | {"parts": len(parts)}
                       | {key: sum(p.extra.get(key, 0) for p in parts)
                          for key in ("novelty_cpu_s", "model_cpu_s", "model_windows")})


class RecordingMetrics(Metrics):
    """The daemon's metrics, plus the exact batch sizes, call times and latencies while recording."""

    def __init__(self) -> None:
        super().__init__()
        self.recording = False
        self.batch_sizes: list[int] = []
        self.infer_s: list[float] = []
        self.latency_s: list[float] = []

    def observe_batch(self, size: int, infer_s: float, latencies_s: np.ndarray) -> None:
        super().observe_batch(size, infer_s, latencies_s)
        if self.recording:
            self.batch_sizes.append(size)
            self.infer_s.append(infer_s)
            self.latency_s.extend(np.asarray(latencies_s, dtype=np.float64).tolist())


class AckRecorder:
    """Collects the PUBACK latency of every QoS 1 prediction acknowledged while recording."""

    def __init__(self) -> None:
        self.recording = False
        self.latency_s: list[float] = []

    def __call__(self, windows: Sequence[WindowRef], acked_at: float) -> None:
        """One acknowledged outbox row: the latency of each of its windows (one extend is atomic)."""
        if self.recording:
            self.latency_s.extend([acked_at - t_mono for _, _, t_mono in windows])


def sample_windows(meta: ModelMetadata, recordings: list[Path], count: int) -> np.ndarray:
    """``count`` normalised model inputs cut from the recordings exactly as the daemon cuts them."""
    out: list[np.ndarray] = []
    model_rate = signal_spec(meta).sample_rate
    for i, path in enumerate(recordings):
        samples, rate = read_signal(path)
        windower = SensorWindower(f"bare{i}", rate or model_rate, meta)
        out.extend(w.data for w in windower.push(samples))
    if not out:
        raise ValueError("the recordings are shorter than one model window; simulate longer recordings")
    return np.stack([out[i % len(out)] for i in range(count)])


def run_bare(model: Path, batch: int, threads: int, seconds: float, windows: np.ndarray,
             label: str = "bare backend", null: bool = False) -> PhaseResult:
    """Call the backend directly on one fixed batch in a loop for ``seconds`` (``null``: the stand-in)."""
    meta = open_model(model)
    backend = NullBackend(model, meta) if null else create_backend(model, config=OnnxRuntimeConfig(
        providers=["CPUExecutionProvider"], intra_op_threads=threads, inter_op_threads=1), metadata=meta)
    backend.load()
    try:
        x = np.ascontiguousarray(windows[:batch], dtype=np.float32)
        for _ in range(3):  # warm-up: first calls allocate and pick kernels
            backend.infer(x)
        calls: list[float] = []
        model0, windows0 = backend.call_cpu_s, backend.call_windows
        cpu0 = time.process_time()
        with progress_bar(round(seconds, 1), label, unit="s", leave=False, disable=None) as bar:
            start = last = time.perf_counter()
            while (now := time.perf_counter()) - start < seconds:
                backend.infer(x)
                done = time.perf_counter()
                calls.append(done - now)
                if done - last >= _TICK_S:
                    bar.update(round(done - last, 1))
                    bar.set_postfix_str(f"{len(calls) * batch / (done - start):.0f} windows/s")
                    last = done
            elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        spent = {"model_cpu_s": backend.call_cpu_s - model0, "model_windows": backend.call_windows - windows0}
    finally:
        backend.close()
    n = len(calls) * batch
    return PhaseResult(label, elapsed, n, n / elapsed, [batch] * len(calls), calls, cpu_s=cpu, extra=spent)


Feeder = Callable[[Daemon], AbstractContextManager[None]]


def run_daemon_phase(config: dict[str, Any], label: str, warmup_s: float, seconds: float,
                     feeder: Feeder | None = None, null: bool = False) -> PhaseResult:
    """Start the daemon in this process, record for ``seconds`` after ``warmup_s``, stop it.

    ``feeder(daemon)``, when given, is entered once the daemon runs (it can read the ports its
    sources bound) and left when recording ends: it delivers samples from outside the daemon.
    ``null``: the model is replaced by :class:`~runtime.bench.null_backend.NullBackend`.
    """
    metrics = RecordingMetrics()
    acks = AckRecorder()
    cfg = validate_config_dict(config)
    timer = ResultAckTimer(capacity=cfg.mqtt.outbox.max_messages, on_results_acked=acks)
    daemon = Daemon(cfg, metrics=metrics, publish_hooks=[timer], make_backend=null_backend if null else None)
    try:
        with contextlib.ExitStack() as feeding:
            daemon.start()
            if feeder is not None:
                feeding.enter_context(feeder(daemon))
            time.sleep(warmup_s)
            result = _record(daemon, metrics, acks, label, seconds)
    finally:
        daemon.stop()
    result.extra["windows_dropped_total"] = int(metrics.snapshot()["windows_dropped"]["total"])
    # a stopped daemon's objects reference each other and wait for the cyclic collector: collected
    # now, so the next phase's RSS is not inflated by this one (about 30 MiB per daemon otherwise)
    del daemon
    gc.collect()
    return result


def _record(daemon: Daemon, metrics: RecordingMetrics, acks: AckRecorder, label: str,
            seconds: float) -> PhaseResult:

    def inferred() -> int:
        return sum(m.batcher.stats.inferred for m in list(daemon.models.values()))

    def model() -> tuple[float, int]:  # the backends' own thread CPU inside their calls, and windows
        backends = [m.batcher.backend for m in list(daemon.models.values())]
        return sum(b.call_cpu_s for b in backends), sum(b.call_windows for b in backends)

    model0 = model()
    n0, t0, cpu0 = inferred(), time.perf_counter(), time.process_time()
    nov0 = daemon.results.novelty_cpu_s
    metrics.recording = acks.recording = True
    _wait_with_progress(label, seconds, lambda: (inferred() - n0) / max(time.perf_counter() - t0, 1e-9))
    metrics.recording = acks.recording = False
    n1, t1, cpu1 = inferred(), time.perf_counter(), time.process_time()
    model1 = model()
    state = _daemon_state(daemon)
    state["model_cpu_s"], state["model_windows"] = model1[0] - model0[0], model1[1] - model0[1]
    # CPU the inference threads spent inside the novelty path (see report.summarise)
    state["novelty_cpu_s"] = daemon.results.novelty_cpu_s - nov0
    return PhaseResult(label, t1 - t0, n1 - n0, (n1 - n0) / (t1 - t0), metrics.batch_sizes, metrics.infer_s,
                       metrics.latency_s, acks.latency_s, cpu1 - cpu0, state)


def _daemon_state(daemon: Daemon) -> dict[str, Any]:
    """Backlog figures at the end of recording: a daemon that keeps up has none."""
    pub = daemon.publisher
    st = pub.stats() if pub is not None else None
    return {
        "queue_depth_at_end": sum(m.batcher.queue_depth for m in daemon.models.values()),
        "outbox_depth_at_end": st.outbox_depth if st is not None else None,
        "broker_connected": st.connected if st is not None else False,
        "bad_inputs": daemon.metrics.snapshot()["bad_payloads"]["total"],
        "rss_mb": rss_mb(),
    }


def rss_mb() -> float | None:
    """Resident memory of this process now (MiB), from /proc; None where there is none."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def _wait_with_progress(label: str, seconds: float, rate: Callable[[], float]) -> None:
    with progress_bar(round(seconds, 1), label, unit="s", leave=False, disable=None) as bar:
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            time.sleep(min(_TICK_S, seconds - elapsed))
            bar.n = round(min(time.perf_counter() - start, seconds), 1)
            bar.set_postfix_str(f"{rate():.0f} windows/s")
