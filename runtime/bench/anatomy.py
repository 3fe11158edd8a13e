"""Where a real-time window's CPU and latency go: CPU per daemon thread and latency per stage.

CPU per thread, without a profiler: a profiler slows Python about twofold and distorts where a
real-time daemon waits, so the question "which thread spends the CPU per window" is answered
here from the kernel's own accounting: ``/proc/self/task/<tid>/stat`` (user + system ticks) of
every thread, read when recording starts and when it ends, attributed to thread names through
``threading``'s native ids. ``python -m runtime.bench.anatomy --mode realtime --backend null``
runs the same phase as ``drsn-edge bench daemon`` (real time: UDP sensors from another process)
and prints, per thread name, microseconds of CPU per classified window and, with results at QoS
1, the latency of each stage from last sample to PUBACK (:mod:`runtime.bench.stages`); ``--out``
keeps both tables. ``--profile THREAD`` adds cProfile in the named threads.

Linux only (elsewhere every thread reads 0 and the table says so).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

_PACKAGED = Path(__file__).resolve().parents[2] / "drsn_edge" / "assets" / "drsn_cw_sim.onnx"
_TICK_S = 1.0 / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)


def thread_ticks() -> dict[int, float]:
    """CPU seconds (user + system) of every thread of this process, by native thread id."""
    out: dict[int, float] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        out[int(tid)] = (int(fields[11]) + int(fields[12])) * _TICK_S  # utime, stime
    return out


def thread_names() -> dict[int, str]:
    """Native thread id -> Python thread name, for the threads alive now."""
    return {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}


class ThreadCpu:
    """Per-thread CPU between :meth:`start` and :meth:`stop`, grouped by thread name."""

    def __init__(self) -> None:
        self._t0: dict[int, float] = {}
        self._names: dict[int, str] = {}
        self.seconds: dict[str, float] = {}
        self.process_s = 0.0

    def start(self) -> None:
        self._names = thread_names()
        self._t0 = thread_ticks()
        self._p0 = time.process_time()

    def stop(self) -> None:
        t1 = thread_ticks()
        self.process_s = time.process_time() - self._p0
        names = self._names | thread_names()
        seconds: dict[str, float] = {}
        for tid, cpu in t1.items():
            name = names.get(tid, "(native: ONNX Runtime, SQLite or another library's thread)")
            seconds[name] = seconds.get(name, 0.0) + cpu - self._t0.get(tid, 0.0)
        self.seconds = dict(sorted(seconds.items(), key=lambda kv: -kv[1]))

    def table(self, windows: int) -> str:
        """Markdown: us of CPU per window for each thread name, and the process's total."""
        n = max(windows, 1)
        lines = ["| thread | CPU us per window | share |", "|---|---:|---:|"]
        total = sum(self.seconds.values()) or 1e-12
        for name, s in self.seconds.items():
            if s > 0:
                lines.append(f"| {name} | {1e6 * s / n:.1f} | {100 * s / total:.1f} % |")
        lines.append(f"| all threads (ticks of {_TICK_S * 1e3:.0f} ms) | {1e6 * total / n:.1f} | |")
        lines.append(f"| process (getrusage) | {1e6 * self.process_s / n:.1f} | |")
        return "\n".join(lines) + "\n"


@contextlib.contextmanager
def measuring(cpu: ThreadCpu, warmup_s: float, seconds: float, stages: Any = None) -> Iterator[None]:
    """Start ``cpu`` (and ``stages``) after ``warmup_s``, stop them ``seconds`` later (a timer thread)."""
    def run() -> None:
        time.sleep(warmup_s)
        cpu.start()
        if stages is not None:
            stages.recording = True
        time.sleep(seconds)
        if stages is not None:
            stages.recording = False
        cpu.stop()

    timer = threading.Thread(target=run, name="bench-thread-cpu", daemon=True)
    timer.start()
    try:
        yield
    finally:
        timer.join()


@contextlib.contextmanager
def profiling(prefix: str | None, profiles: list[cProfile.Profile]) -> Iterator[None]:
    """cProfile every thread started inside the block whose name starts with ``prefix`` (None: none)."""
    from runtime.bench.profile import profile_threads

    if prefix is None:
        yield
        return
    with profile_threads(prefix) as found:
        yield
    profiles.extend(found)


def main(argv: list[str] | None = None) -> int:
    from runtime.bench.broker import bench_broker
    from runtime.bench.feeder import udp_feeder
    from runtime.bench.profile import top_table
    from runtime.bench.runs import run_daemon_phase
    from runtime.bench.workload import Workload, daemon_config, make_recordings
    from runtime.daemon import Daemon
    from runtime.sources.udp import UdpSource

    p = argparse.ArgumentParser(prog="python -m runtime.bench.anatomy", description=__doc__)
    p.add_argument("--model", type=Path, default=_PACKAGED)
    p.add_argument("--mode", choices=["fast", "realtime"], default="realtime")
    p.add_argument("--sensors", type=int, default=64)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--prediction-qos", choices=["0", "1", "off"], default="1")
    p.add_argument("--predictions", choices=["window", "batch"], default="batch")
    p.add_argument("--backend", choices=["onnxruntime", "null"], default="null")
    p.add_argument("--pin-cpu", type=int, default=None)
    p.add_argument("--recordings", choices=["all", "healthy"], default=None,
                   help="which simulated recordings the sensors replay (default: healthy with the null "
                        "backend, whose stand-in answers healthy; all four conditions with a model)")
    p.add_argument("--profile", metavar="THREAD", default=None,
                   help="also run cProfile (thread CPU clock) in the threads whose name starts with THREAD "
                        "and print their functions by own time (slows them about 2x: shares, not figures)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    profiles: list[cProfile.Profile] = []
    qos: Literal[0, 1] | None = {"off": None, "0": 0, "1": 1}[args.prediction_qos]
    work = Workload(args.model, args.sensors, 12000.0, args.chunk, 32, 5.0, 1, qos, "full",
                    predictions=args.predictions, backend=args.backend)
    mode: Literal["fast", "realtime"] = args.mode
    allowed = set(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="drsn-threads-") as tmp, bench_broker() as broker:
        if args.pin_cpu is not None:
            os.sched_setaffinity(0, {args.pin_cpu})
        recordings = make_recordings(Path(tmp) / "rec", 12000.0, 10.0)
        healthy = args.recordings == "healthy" if args.recordings else args.backend == "null"
        if healthy:  # as bench daemon with null: the stand-in answers healthy, a healthy machine
            recordings = [r for r in recordings if r.name.startswith("normal")] or recordings
        network = mode == "realtime"
        cfg = daemon_config(work, recordings, mode, broker.host, broker.port, Path(tmp) / "outbox.sqlite3",
                            network=network)
        cpu = ThreadCpu()
        stages = _stage_recorder()
        others = allowed - {args.pin_cpu} if args.pin_cpu is not None else None

        @contextlib.contextmanager
        def feed(daemon: Daemon) -> Iterator[None]:
            with contextlib.ExitStack() as stack:
                if network:
                    udp = next(s for s in daemon.sources if isinstance(s, UdpSource))
                    stack.enter_context(udp_feeder(udp.address, recordings, work.sensors, work.sample_rate,
                                                   work.chunk, args.warmup + args.seconds + 5.0,
                                                   cpus=others or None))
                if stages is not None:  # listens to the daemon's own per-batch and PUBACK calls
                    daemon.publish_hooks.append(stages)
                    daemon.metrics.observe_batch = stages.wrap(  # type: ignore[method-assign]
                        daemon.metrics.observe_batch)
                stack.enter_context(measuring(cpu, args.warmup, args.seconds, stages))
                yield

        with profiling(args.profile, profiles):
            result = run_daemon_phase(cfg, f"daemon {mode} (threads timed)", args.warmup + 0.05, args.seconds,
                                      feed, null=args.backend == "null")
    load = os.getloadavg()[0]
    head = (f"{result.windows} windows in {result.seconds:.1f} s ({result.windows_per_s:.0f} windows/s), "
            f"mode {mode}, {args.sensors} sensors, chunk {args.chunk}, backend {args.backend}, predictions "
            f"{args.prediction_qos}/{args.predictions}, process CPU per window "
            f"{1e6 * result.cpu_s / max(result.windows, 1):.1f} us{_model_note(result.extra)}, load average "
            f"{load:.2f}\n\n")
    text = head + cpu.table(result.windows)
    if stages is not None and qos == 1:
        text += "\n" + stages.table()
    if profiles:
        merged = pstats.Stats(profiles[0])
        for prof in profiles[1:]:
            merged.add(prof)
        text += f"\nthreads {args.profile}*, cProfile over the whole phase (warm-up included)\n\n"
        text += top_table(merged, max(result.windows, 1))
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "anatomy.md").write_text(text)
        doc: dict[str, Any] = {"windows": result.windows, "seconds": result.seconds,
                               "cpu_us_per_window": 1e6 * result.cpu_s / max(result.windows, 1),
                               "model_cpu_s": result.extra.get("model_cpu_s"),
                               "model_windows": result.extra.get("model_windows"),
                               "threads_s": cpu.seconds, "load_average": load, "argv": argv}
        if stages is not None:
            doc["stages_ms"] = stages.summary()
        (args.out / "anatomy.json").write_text(json.dumps(doc))
    return 0


def _model_note(extra: dict[str, Any]) -> str:
    """The backend call's own thread CPU per window, part of the inference thread's row below."""
    windows = extra.get("model_windows")
    if not windows:
        return ""
    return f" (of which the model call {1e6 * extra['model_cpu_s'] / windows:.1f} us, inference thread)"


def _stage_recorder() -> Any:
    """A :class:`~runtime.bench.stages.StageRecorder`, or None on a tree without one (an A/B run of an
    older commit with this file first on the path: CPU per thread only)."""
    try:
        from runtime.bench.stages import StageRecorder
    except ImportError:
        return None
    return StageRecorder()


if __name__ == "__main__":
    raise SystemExit(main())
