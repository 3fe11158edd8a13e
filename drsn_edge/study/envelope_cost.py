"""`drsn-edge study envelope-cost`: what the daemon's envelope diagnostics cost beside inference.

Measured, on this machine, single-threaded:

- the CPU time of one envelope analysis (kurtogram, band-pass, Hilbert, spectrum, peak search)
  for ring lengths of 1, 2 and 4 s at the model's sample rate;
- the CPU time of the model's inference per window at the daemon's batch size (ONNX Runtime,
  one intra-op thread), and the windows per second one sensor produces at the model's hop;
- the cost of keeping the ring (one copy of every raw sample).

The diagnostics' share of the daemon's work for one sensor is then
``(analysis CPU / every_s + ring CPU per second) / (inference CPU per second)``; the issue's
goal is at most 5 %. Each fault-state entry adds one analysis; entries are rare (the fault state's
hysteresis and minimum duration keep them minutes apart), and the table states their cost apart.
Performance is measured by this command, never by a unit test.
"""

from __future__ import annotations

import csv
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.artifact import read_onnx_metadata
from runtime.diagnostics.bearings import lookup_bearing
from runtime.diagnostics.envelope import analyse
from runtime.diagnostics.monitor import SampleRing
from runtime.signals.normalize import normalize_windows
from runtime.signals.simulator import BearingSimulator

RING_SECONDS = (1.0, 2.0, 4.0)
PERIODS_S = (10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True)
class CostResult:
    analysis_cpu_s: dict[float, float]  # ring seconds -> median CPU seconds per analysis
    infer_cpu_per_window_s: float
    windows_per_s: float
    ring_cpu_per_s: float
    repeats: int


def _cpu(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        times.append(time.thread_time() - t0)
    return float(np.median(times))


def measure(model: Path, repeats: int = 20, batch: int = 32) -> CostResult:
    import onnxruntime as ort

    meta = read_onnx_metadata(model)
    assert meta.signal is not None
    fs, window, hop = meta.signal.sample_rate, meta.signal.window, meta.signal.hop
    bearing = lookup_bearing("6205")
    analysis = {}
    for seconds in RING_SECONDS:
        x = BearingSimulator("outer_race", sample_rate=fs, rpm=1797, seed=0).generate(int(seconds * fs))
        analyse(x, fs, bearing, 1797)  # warm caches and imports
        analysis[seconds] = _cpu(lambda x=x: analyse(x, fs, bearing, 1797), repeats)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    raw = np.random.default_rng(0).standard_normal((batch, window)).astype(np.float32)
    feed = {meta.input.name: normalize_windows(raw, meta.normalization)[:, None, :]}
    session.run(None, feed)
    infer = _cpu(lambda: session.run(None, feed), repeats * 5) / batch
    ring = SampleRing(int(2 * fs))
    chunk = np.zeros(1024, dtype=np.float32)

    def push_100() -> None:
        for _ in range(100):
            ring.push(chunk)

    per_chunk = _cpu(push_100, repeats) / 100
    return CostResult(analysis, infer, fs / hop, per_chunk * fs / chunk.size, repeats)


def daemon_ab(model: Path, sensors: int = 8, seconds: float = 60.0, rounds: int = 2) -> dict[str, Any]:
    """The whole daemon, fast-paced, with and without diagnostics on every sensor (alternating runs):
    windows per CPU second of the process. Covers the ring copies, the event routing and one
    analysis per fault entry; periodic analyses are priced by :func:`share` (a fast run compresses
    signal time, so ``every_s`` cannot be exercised here)."""
    import tempfile

    from runtime.bench.broker import bench_broker
    from runtime.config import validate_config_dict
    from runtime.daemon import Daemon

    fs = 12000.0  # scipy.signal's first import is a one-off cost no running daemon pays twice
    analyse(
        BearingSimulator("outer_race", sample_rate=fs).generate(int(fs)), fs, lookup_bearing("6205"), 1797
    )
    conditions = ("inner_race", "outer_race", "ball", "normal")
    ids = [f"s{i}" for i in range(sensors)]
    results: dict[str, list[float]] = {"off": [], "on": []}
    analyses: list[int] = []
    with bench_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        for k in range(rounds):
            for mode in ("off", "on"):
                cfg: dict[str, Any] = {
                    "model": str(model),
                    "backend": {
                        "type": "onnxruntime",
                        "providers": ["CPUExecutionProvider"],
                        "intra_op_threads": 1,
                    },
                    "sources": [
                        {
                            "type": "synthetic",
                            "pacing": "fast",
                            "duration_s": seconds,
                            "sensors": [{"id": i, "condition": conditions[n % 4]} for n, i in enumerate(ids)],
                        }
                    ],
                    "batching": {"max_batch": 32, "max_wait_ms": 5},
                    "exit_when_sources_finish": True,
                    "mqtt": {
                        "host": broker.host,
                        "port": broker.port,
                        "device_id": f"cost-{k}-{mode}",
                        "outbox": {"path": f"{tmp}/outbox-{k}-{mode}.sqlite3"},
                    },
                    "logging": {"level": "WARNING"},
                }
                if mode == "on":
                    cfg["sensors"] = {i: {"diagnostics": {"bearing": "6205", "rpm": 1797}} for i in ids}
                daemon = Daemon(validate_config_dict(cfg))
                cpu0 = time.process_time()
                daemon.run(install_signals=False)
                results[mode].append(_windows(daemon) / (time.process_time() - cpu0))
                if daemon.diagnostics is not None:
                    analyses.append(daemon.diagnostics.stats.analyses)
    off, on = float(np.mean(results["off"])), float(np.mean(results["on"]))
    return {
        "sensors": sensors,
        "seconds": seconds,
        "rounds": rounds,
        "off_windows_per_cpu_s": off,
        "on_windows_per_cpu_s": on,
        "cost_pct": 100 * (1 - on / off),
        "spread_pct": 100 * float(np.std(results["off"]) / off),
        "analyses": analyses,
    }


def _windows(daemon: Any) -> float:
    return float(sum(sp.windower.stats.windows for sp in daemon.sensors.values()))


def share(r: CostResult, ring_s: float, every_s: float) -> float:
    """Diagnostics CPU over inference CPU for one sensor with a periodic analysis every ``every_s``."""
    diag = r.analysis_cpu_s[ring_s] / every_s + r.ring_cpu_per_s
    return diag / (r.infer_cpu_per_window_s * r.windows_per_s)


def write(r: CostResult, out: Path, model: Path, daemon: dict[str, Any] | None = None) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "ring_s": s,
            "every_s": p,
            "analysis_cpu_ms": round(1000 * r.analysis_cpu_s[s], 2),
            "share_of_inference_pct": round(100 * share(r, s, p), 2),
        }
        for s in RING_SECONDS
        for p in PERIODS_S
    ]
    csv_path = out / "cost.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [
        f"# Envelope diagnostics: CPU cost beside inference\n\nMachine: {platform.machine()}, "
        f"{platform.processor() or 'cpu'}, Python {platform.python_version()}; model {model.name}; "
        f"median of {r.repeats} runs, single thread.\n",
        f"- inference: {1e3 * r.infer_cpu_per_window_s:.3f} ms CPU per window at batch 32; one sensor makes "
        f"{r.windows_per_s:.1f} windows/s, so {1e3 * r.infer_cpu_per_window_s * r.windows_per_s:.2f} ms CPU "
        "per second per sensor",
        f"- ring of raw samples: {1e6 * r.ring_cpu_per_s:.1f} µs CPU per second per sensor",
        *[
            f"- one envelope analysis of a {s:g} s ring: {1e3 * r.analysis_cpu_s[s]:.1f} ms CPU"
            for s in RING_SECONDS
        ],
        "\nShare of the sensor's inference CPU spent on diagnostics with a periodic analysis every `every_s` "
        "(a fault-state entry adds one analysis: with one entry per 10 minutes, "
        f"{100 * r.analysis_cpu_s[2.0] / 600 / (r.infer_cpu_per_window_s * r.windows_per_s):.2f} % more "
        "for a 2 s ring):\n",
        "| ring (s) | " + " | ".join(f"every {p:g} s" for p in PERIODS_S) + " |",
        "|---|" + "---|" * len(PERIODS_S),
    ]
    for s in RING_SECONDS:
        lines.append(f"| {s:g} | " + " | ".join(f"{100 * share(r, s, p):.1f} %" for p in PERIODS_S) + " |")
    if daemon is not None:
        lines += [
            f"\nThe whole daemon, fast-paced ({daemon['sensors']} sensors x {daemon['seconds']:g} s of "
            f"signal, {daemon['rounds']} alternating runs each, process CPU; analyses per run with "
            f"diagnostics: {daemon['analyses']}): "
            f"{daemon['off_windows_per_cpu_s']:.0f} windows per CPU second without diagnostics, "
            f"{daemon['on_windows_per_cpu_s']:.0f} with them on every sensor: **{daemon['cost_pct']:.1f} %** "
            "of the daemon's throughput (ring copies, event routing, the fault-entry analyses); the "
            f"spread of the runs without diagnostics is {daemon['spread_pct']:.1f} %.",
        ]
    md = out / "cost.md"
    md.write_text("\n".join(lines) + "\n")
    return {"csv": csv_path, "md": md, "png": _plot(r, out / "cost.png")}


def _plot(r: CostResult, path: Path) -> Path:
    from drsn_edge.study.envelope_plot import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for s in RING_SECONDS:
        ax.plot(PERIODS_S, [100 * share(r, s, p) for p in PERIODS_S], marker="o", label=f"{s:g} s ring")
    ax.axhline(5, color="tab:red", ls="--", label="goal: 5 %")
    ax.set_xscale("log")
    ax.set_xlabel("every_s (periodic analysis interval, s)")
    ax.set_ylabel("diagnostics CPU / inference CPU (%)")
    ax.set_title("envelope diagnostics cost per sensor", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
