"""Timing and memory of one runner: the figures of one column of the backend benchmark.

Method: the input is the model's own golden windows (real, normalised), tiled to the batch size.
Each batch size is warmed up, then timed in ``repeats`` repeats of enough calls to last
``min_time_s`` seconds; p50/p99 are per-call latencies and windows/s is batch x calls / repeat
time, each the median over repeats. Peak memory is the process's peak resident set size during
load + runs minus the RSS before the runner was loaded (Linux: VmHWM, reset per batch through
/proc/self/clear_refs; elsewhere the lifetime peak, which only ever grows).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

_MIB = 1024 * 1024
_MAX_CALLS = 2000
CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class BatchFigures:
    batch: int
    calls: int
    p50_ms: float
    p99_ms: float
    windows_per_s: float
    peak_rss_delta_mib: float


@dataclass
class BackendResult:
    name: str
    status: str  # ok | skipped | failed
    reason: str = ""
    load_s: float | None = None
    max_abs_diff: float | None = None  # vs the golden (ONNX Runtime FP32) logits
    argmax_agreement: float | None = None
    results: list[BatchFigures] = field(default_factory=list)


class Runner(Protocol):
    """What the timing loop needs; runtime backends satisfy it, PyTorch gets an adapter."""

    def load(self) -> None: ...

    def infer(self, batch: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BenchSpec:
    """What a measuring process needs (picklable: it crosses to a spawned process)."""

    backend: str  # the column name
    model: str  # the FP32 ONNX file (or the FP16 file for an ONNX-level FP16 column)
    checkpoint: str | None
    weights_sha256: str
    batches: tuple[int, ...]
    repeats: int
    min_time_s: float
    warmup: int
    threads: int
    workdir: str


# -- memory --------------------------------------------------------------------------------------

def _proc_status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_mib() -> float:
    kib = _proc_status_kib("VmRSS")
    return kib / 1024 if kib is not None else _lifetime_peak_mib()


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False where that is not possible."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    kib = _proc_status_kib("VmHWM")
    return kib / 1024 if kib is not None else _lifetime_peak_mib()


def _lifetime_peak_mib() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MIB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


# -- timing --------------------------------------------------------------------------------------

def tile_windows(golden: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` real windows: the golden windows repeated as often as needed."""
    reps = math.ceil(batch / len(golden))
    return np.ascontiguousarray(np.concatenate([golden] * reps)[:batch], dtype=np.float32)


def time_calls(
    call: Callable[[], object], sync: Callable[[], None], *, batch: int, repeats: int, min_time_s: float,
    warmup: int,
) -> tuple[int, float, float, float]:
    """(calls per repeat, p50 ms, p99 ms, windows/s): each call ends with ``sync()`` (a no-op on the
    CPU, the stream's synchronisation on a GPU); warm-up, repeats sized to ``min_time_s``, medians."""
    for _ in range(max(warmup, 1)):
        call()
        sync()
    t0 = time.perf_counter()
    call()
    sync()
    single = max(time.perf_counter() - t0, 1e-6)
    calls = int(min(max(math.ceil(min_time_s / single), 5), _MAX_CALLS))
    p50s, p99s, rates = [], [], []
    for _ in range(repeats):
        lat = np.empty(calls)
        start = time.perf_counter()
        for i in range(calls):
            t = time.perf_counter()
            call()
            sync()
            lat[i] = time.perf_counter() - t
        wall = time.perf_counter() - start
        p50s.append(float(np.percentile(lat, 50)))
        p99s.append(float(np.percentile(lat, 99)))
        rates.append(batch * calls / wall)
    return calls, 1e3 * float(np.median(p50s)), 1e3 * float(np.median(p99s)), float(np.median(rates))


def time_batch(runner: Runner, x: np.ndarray, *, repeats: int, min_time_s: float, warmup: int,
               rss_before_load: float) -> BatchFigures:
    """:func:`time_calls` on one batch, with the peak RSS over the warm-up and the repeats."""
    reset_peak_rss()
    calls, p50, p99, rate = time_calls(lambda: runner.infer(x), lambda: None, batch=len(x), repeats=repeats,
                                       min_time_s=min_time_s, warmup=warmup)
    return BatchFigures(batch=len(x), calls=calls, p50_ms=p50, p99_ms=p99, windows_per_s=rate,
                        peak_rss_delta_mib=max(peak_rss_mib() - rss_before_load, 0.0))


def measure(runner: Runner, spec: BenchSpec, golden: tuple[np.ndarray, np.ndarray],
            on_batch: Callable[[int], None]) -> BackendResult:
    """Load one backend, check its logits on the golden windows, time every batch size."""
    result = BackendResult(spec.backend, "ok")
    rss0 = current_rss_mib()
    t0 = time.perf_counter()
    runner.load()  # imports the backend's package; TensorRT also builds its engine here
    result.load_s = time.perf_counter() - t0
    try:
        gx, gy = golden
        got = np.concatenate([runner.infer(gx[i:i + 1]) for i in range(len(gx))])
        result.max_abs_diff = float(np.abs(got - gy).max())
        result.argmax_agreement = float(np.mean(got.argmax(1) == gy.argmax(1)))
        for b in spec.batches:
            on_batch(b)
            result.results.append(time_batch(runner, tile_windows(gx, b), repeats=spec.repeats,
                                             min_time_s=spec.min_time_s, warmup=spec.warmup,
                                             rss_before_load=rss0))
    finally:
        runner.close()
    return result
