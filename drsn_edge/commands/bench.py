"""`drsn-edge bench`: benchmarks with their own output. `bench daemon` measures the whole daemon path;
`bench backends` compares inference backends (the package :mod:`drsn_edge.bench_backends`).

Each sub-command is a pair of ``add_arguments``/``run`` functions, like the top-level commands;
both import their heavy parts inside ``run``, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from drsn_edge import bench_backends
from drsn_edge.assets import ASSETS, DEMO_MODEL


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    daemon = sub.add_parser(
        "daemon",
        help="the whole daemon path (windowing, batching, inference, QoS 1 publishing) vs the "
        "bare backend, fast and in real time",
        description="Run N simulated 12 kHz sensors through the daemon as fast as possible and in real time, "
        "beside the same backend called directly at the same batch size; print and save the figures.",
    )
    add_daemon_arguments(daemon)
    daemon.set_defaults(_bench=run_daemon)
    backends = sub.add_parser(
        "backends", help="compare inference backends on one model (latency, windows/s, memory, accuracy)"
    )
    bench_backends.add_arguments(backends)
    backends.set_defaults(_bench=bench_backends.run)
    novelty = sub.add_parser(
        "novelty", help="cost of the novelty path (features, score, smoothing, baseline) next to inference"
    )
    add_novelty_arguments(novelty)
    novelty.set_defaults(_bench=run_novelty)


def run(args: argparse.Namespace) -> int:
    return int(args._bench(args) or 0)


def add_daemon_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        type=Path,
        default=ASSETS / DEMO_MODEL,
        help="ONNX model with drsn-edge metadata (default: the packaged simulator model)",
    )
    p.add_argument("--sensors", type=int, default=64, help="simulated sensors (default 64)")
    p.add_argument("--rate", type=float, help="samples per second per sensor (default: the model's rate)")
    p.add_argument("--batch", type=int, default=32, help="batching.max_batch, also the bare loop's batch")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="batching.max_wait_ms (default 5)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    p.add_argument("--chunk", type=int, default=1024, help="samples per chunk a sensor delivers")
    p.add_argument(
        "--mode",
        choices=["both", "fast", "realtime"],
        default="both",
        help="daemon phases to run (default both)",
    )
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase (default 10)")
    p.add_argument(
        "--slices",
        type=int,
        default=1,
        help="the fast phase as N daemon slices between N + 1 bare slices of seconds/N each, the "
        "ratio the median of each slice against its bare neighbours (default 1: bare, fast, bare)",
    )
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before a daemon phase is measured")
    p.add_argument(
        "--recording-seconds",
        type=float,
        default=10.0,
        help="seconds of simulated signal per bearing condition, replayed in a loop",
    )
    p.add_argument(
        "--arrival",
        choices=["staggered", "aligned"],
        default="staggered",
        help="real time: sensors send UDP frames each at its own phase (staggered, as independent "
        "gateways do), or are replayed in lockstep, all chunks at once (aligned, the worst case)",
    )
    p.add_argument(
        "--broker",
        metavar="HOST:PORT",
        help="use this broker (default: a private mosquitto, else an in-process amqtt)",
    )
    p.add_argument(
        "--prediction-qos",
        choices=["1", "0", "off"],
        default="1",
        help="every window's result at QoS 1 (default: through the outbox, timed to its PUBACK), "
        "at QoS 0, or off (the daemon's default config: fault states and QoS 1 events only)",
    )
    p.add_argument(
        "--predictions",
        choices=["window", "batch"],
        default="window",
        help="per-window results as one message per window (default) or one per inference batch",
    )
    p.add_argument(
        "--backend",
        choices=["onnxruntime", "null"],
        default="onnxruntime",
        help="null: a constant stand-in for the model, so the figures are the daemon's own cost",
    )
    p.add_argument(
        "--novelty",
        choices=["off", "on", "both"],
        default="off",
        help="novelty scoring on every sensor (needs a calibrated model such as drsn_cw_cwru0hp.onnx); "
        "both: the fast phase without and with it in the same run, and the novelty path's cost",
    )
    p.add_argument(
        "--outbox-sync",
        choices=["full", "normal"],
        default="full",
        help="mqtt.outbox.synchronous (default full, the daemon's default), for events; results at QoS 1 "
        "without events follow mqtt.outbox.results_synchronous (its default, normal)",
    )
    p.add_argument(
        "--pin-cpu",
        type=int,
        metavar="CPU",
        help="pin the benchmark process (daemon and bare loop, not the broker) to this CPU",
    )
    p.add_argument("--ratio-target", type=float, default=0.70, help="daemon/bare throughput target")
    p.add_argument("--p99-target-ms", type=float, default=25.0, help="real-time p99 PUBACK latency target")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results/daemon"),
        help="folder for result.json, result.md and latency.png",
    )
    p.add_argument("--check", action="store_true", help="exit with 1 when a target is missed")
    p.add_argument("--seed", type=int, default=0, help="simulator seed")


def run_daemon(args: argparse.Namespace) -> int:
    from runtime.backends import open_model
    from runtime.bench import DaemonBenchOptions, Workload, run_daemon_bench
    from runtime.bench.daemon_bench import Mode
    from runtime.bench.report import console_table, save
    from runtime.errors import ConfigError
    from runtime.windowing import signal_spec

    if args.sensors < 1 or args.batch < 1 or args.threads < 1 or args.seconds <= 0 or args.chunk < 1:
        raise ConfigError("--sensors, --batch, --threads, --chunk and --seconds must be positive")
    if args.slices < 1 or (args.slices > 1 and args.mode == "realtime"):
        raise ConfigError("--slices must be 1 or more and slices the fast phase: use it with --mode fast "
                          "or both")
    rate = args.rate if args.rate is not None else signal_spec(open_model(args.model)).sample_rate
    work = Workload(
        model=args.model.resolve(),
        sensors=args.sensors,
        sample_rate=rate,
        chunk=args.chunk,
        batch=args.batch,
        max_wait_ms=args.max_wait_ms,
        threads=args.threads,
        prediction_qos={"off": None, "0": 0, "1": 1}[args.prediction_qos],
        outbox_sync=args.outbox_sync,
        predictions=args.predictions,
        backend=args.backend,
    )
    modes: tuple[Mode, ...] = ("fast", "realtime") if args.mode == "both" else (args.mode,)
    opts = DaemonBenchOptions(
        work=work,
        modes=modes,
        seconds=args.seconds,
        warmup_s=args.warmup,
        recording_s=args.recording_seconds,
        broker=args.broker,
        arrival=args.arrival,
        pin_cpu=args.pin_cpu,
        ratio_target=args.ratio_target,
        p99_target_ms=args.p99_target_ms,
        novelty=args.novelty,
        seed=args.seed,
        slices=args.slices,
    )
    command = (
        shlex.join(["drsn-edge", *sys.argv[1:]])
        if sys.argv[1:2] == ["bench"]
        else "drsn-edge bench daemon (called from Python)"
    )
    bench = run_daemon_bench(opts, command)
    print(console_table(bench.result))
    for path in save(bench.result, args.out, bench.phases.get("realtime")):
        print(f"wrote {path}")
    missed = [name for name, t in bench.result["targets"].items() if not t["met"]]
    if missed:
        print(f"target(s) missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed and args.check else 0


def add_novelty_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, default=ASSETS / "drsn_cw_cwru0hp.onnx", help="a calibrated ONNX")
    p.add_argument("--batch", type=int, default=32, help="windows per inference call (default 32)")
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per loop (default 5)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    p.add_argument("--out", type=Path, default=Path("docs/results/novelty"), help="where the figures go")
    p.add_argument(
        "--runs", type=int, default=1, help="runs one after another: medians and each run (default 1)"
    )


def run_novelty(args: argparse.Namespace) -> int:
    from drsn_edge.novelty.bench_plot import plot_runs
    from runtime.novelty.bench import report_text, run_repeated, write_report

    result = run_repeated(args.model, args.runs, batch=args.batch, seconds=args.seconds, threads=args.threads)
    print(report_text(result))
    write_report(result, args.out, "drsn-edge " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    plot_runs(result, args.out / "bench_novelty.png")
    return 0
