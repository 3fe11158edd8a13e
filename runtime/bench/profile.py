"""Where the daemon's time goes: the ``fast`` phase of ``bench daemon`` under cProfile, per thread.

``python -m runtime.bench.profile --out bench-results/profile`` runs the daemon with every
sensor replayed as fast as possible (the same config as the benchmark's ``fast`` phase), with
a profiler in every thread the daemon starts (cProfile only sees the thread that enabled it),
timing each with its own CPU clock (waits on locks, sockets and queues cost nothing), and
writes the merged statistics (``profile.pstats``, for ``snakeviz`` or ``pstats``) and a
table of the functions with the most own time, as microseconds per classified window
(``profile.md``). Profiling slows Python code by about 2x, not native code (ONNX Runtime), so
read the table as shares, not as absolute figures: ``bench daemon`` gives those.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from runtime.bench.broker import bench_broker
from runtime.bench.null_backend import healthy_only
from runtime.bench.runs import run_daemon_phase
from runtime.bench.workload import Workload, daemon_config, make_recordings

_PACKAGED = Path(__file__).resolve().parents[2] / "drsn_edge" / "assets" / "drsn_cw_sim.onnx"


@contextlib.contextmanager
def profile_threads(prefix: str = "") -> Iterator[list[cProfile.Profile]]:
    """Profile every thread started inside the block whose name starts with ``prefix``; yields the profiles.

    The list fills as the threads start; read it after the block.
    """
    profiles: list[cProfile.Profile] = []
    original: Callable[[threading.Thread], None] = threading.Thread.run

    def run(self: threading.Thread) -> None:
        if not self.name.startswith(prefix):
            original(self)
            return
        prof = cProfile.Profile(time.thread_time)  # CPU time: a thread waiting on a lock costs nothing
        profiles.append(prof)
        prof.enable()
        try:
            original(self)
        finally:
            prof.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    try:
        yield profiles
    finally:
        threading.Thread.run = original  # type: ignore[method-assign,assignment]


_ORT_RUN = "<built-in method onnxruntime.capi.onnxruntime_pybind11_state.run>"
#: where the time goes, by thread and stage: (label, file suffix, function) whose cumulative time counts
STAGES = (
    ("source thread: replay, windowing, normalisation, queueing", "sources/pacing.py", "run_paced"),
    ("  of which windowing (cutting windows of a block of sensors)", "runtime/window_group.py", "push_block"),
    ("inference thread: batch assembly and normalisation", "runtime/batching.py", "_inputs"),
    ("inference thread: backend call", "", _ORT_RUN),
    ("inference thread: results (fault state, payloads, publishing)", "results_router.py", "on_batch"),
    ("  of which sensors and rounds of the batch (arrays)", "runtime/results_table.py", "rows_of"),
    ("  of which fault state (array steps per batch)", "runtime/results_router.py", "_step_rounds"),
    ("  of which novelty scores (one product per batch)", "runtime/novelty/route.py", "score_batch"),
    ("  of which novelty flags and overlays (per round)", "runtime/novelty/route.py", "round_novelty"),
    ("  of which metrics (histograms, carried every 0.25 s)", "runtime/metrics.py", "flush_batches"),
    ("  of which result payloads (batch or window)", "runtime/results.py", "prediction_batch|prediction"),
    ("  of which outbox writes (events and results, one transaction)", "runtime/mqtt/outbox.py", "put_many"),
    ("MQTT worker: sending, PUBACKs, outbox deletes", "runtime/mqtt/publisher_worker.py", "run"),
    ("  of which paho's network loop (read, PUBACK callbacks)", "runtime/mqtt/link.py", "pump"),
    ("paho network thread (none since the worker runs paho's loop)", "paho/mqtt/client.py", "_thread_main"),
)


def stage_table(stats: pstats.Stats) -> str:
    """Markdown: the share of all profiled CPU time each stage of :data:`STAGES` takes (cumulative)."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1e-12
    lines = ["| stage | share of CPU |", "|---|---:|"]
    for label, suffix, name in STAGES:
        names = set(name.split("|"))  # alternatives: one stage, several functions
        cum = sum(v[3] for (file, _, func), v in raw.items() if func in names and file.endswith(suffix))
        lines.append(f"| {label} | {100 * cum / total:.1f} % |")
    return "\n".join(lines) + "\n"


def top_table(stats: pstats.Stats, windows: int, limit: int = 25) -> str:
    """Markdown: functions by own time, in us per window, with their share of all profiled time."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = sorted(((tt, ct, nc, func) for func, (_, nc, tt, ct, _) in raw.items()), reverse=True)
    total = sum(r[0] for r in rows) or 1e-12
    lines = ["| own us/window | share | cumulative us/window | calls/window | function |",
             "|---:|---:|---:|---:|---|"]
    for tt, ct, nc, (file, line, name) in rows[:limit]:
        where = f"{Path(file).name}:{line} {name}" if line else name
        lines.append(f"| {1e6 * tt / windows:.1f} | {100 * tt / total:.1f} % | {1e6 * ct / windows:.1f} | "
                     f"{nc / windows:.2f} | `{where}` |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runtime.bench.profile", description=__doc__)
    p.add_argument("--model", type=Path, default=_PACKAGED)
    p.add_argument("--sensors", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--prediction-qos", choices=["0", "1", "off"], default="off")
    p.add_argument("--predictions", choices=["window", "batch"], default="window")
    p.add_argument("--backend", choices=["onnxruntime", "null"], default="onnxruntime")
    p.add_argument("--novelty", choices=["off", "on"], default="off",
                   help="novelty on every sensor (needs a calibrated --model such as drsn_cw_cwru0hp.onnx)")
    p.add_argument("--out", type=Path, default=Path("bench-results/profile"))
    args = p.parse_args(argv)
    qos: Literal[0, 1] | None = {"off": None, "0": 0, "1": 1}[args.prediction_qos]
    work = Workload(args.model, args.sensors, 12000.0, 1024, args.batch, 5.0, 1, qos, "full",
                    predictions=args.predictions, backend=args.backend, novelty=args.novelty == "on")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="drsn-profile-") as tmp, bench_broker() as broker:
        recordings = make_recordings(Path(tmp) / "rec", 12000.0, 5.0)
        if args.backend == "null":  # as bench daemon: the stand-in's healthy answer, a healthy machine
            recordings = healthy_only(recordings)
        cfg = daemon_config(work, recordings, "fast", broker.host, broker.port, Path(tmp) / "outbox.sqlite3")
        with profile_threads() as profiles:
            result = run_daemon_phase(cfg, "daemon fast (profiled)", 0.0, args.seconds,
                                      null=args.backend == "null")
    merged = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        merged.add(prof)
    merged.dump_stats(str(args.out / "profile.pstats"))
    head = (f"{result.windows} windows in {result.seconds:.1f} s ({result.windows_per_s:.0f} windows/s under "
            f"the profiler), {args.sensors} sensors, batch {args.batch}, predictions {args.prediction_qos}"
            f"/{args.predictions}, backend {args.backend}, novelty {args.novelty}, "
            f"model {args.model.name}\n\n")
    table = head + stage_table(merged) + "\n" + top_table(merged, max(result.windows, 1))
    (args.out / "profile.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
