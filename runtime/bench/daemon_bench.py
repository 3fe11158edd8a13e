"""`drsn-edge bench daemon`: the daemon's throughput and latency beside the bare backend, in one run.

Phases, in this order so that a machine whose speed drifts (other load, thermal limits) shows
up as a spread rather than a bias:

1. the backend alone, called in a loop at the daemon's batch size (``bare #1``);
2. the whole daemon with every sensor replayed as fast as possible (``fast``): windowing,
   batching, inference, fault state and a QoS 1 publish of every window's result, with the
   sources pushed back at a full queue, so the figure is what the daemon sustains;
3. the backend alone again (``bare #2``); the ratio uses the mean of both bare runs;
4. the daemon with every sensor in real time (``realtime``): the latency from the arrival of a
   window's last sample to the broker's PUBACK of that window's result. Sensors either arrive
   ``staggered`` (UDP frames from another process, each sensor at its own phase, as independent
   gateways do) or ``aligned`` (replayed inside the daemon in lockstep: every sensor's chunk at
   the same instant, the worst case for latency).

With ``slices`` > 1, phases 1 to 3 become bare, daemon, bare, daemon, ..., bare in short slices
(:mod:`runtime.bench.slices`) and the ratio is the median of each daemon slice against its two
bare neighbours: the bare backend alone drifts by a third within one run on a shared machine.
"""

from __future__ import annotations

import itertools
import os
import platform
import sys
import tempfile
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from runtime.backends import open_model
from runtime.bench.broker import bench_broker
from runtime.bench.feeder import udp_feeder
from runtime.bench.null_backend import has_features_output, healthy_only
from runtime.bench.runs import Feeder, PhaseResult, merge_phases, run_bare, run_daemon_phase, sample_windows
from runtime.bench.slices import SlicedFast, run_sliced, slice_figures
from runtime.bench.workload import Workload, daemon_config, make_recordings
from runtime.daemon import Daemon
from runtime.errors import ConfigError
from runtime.sources.udp import UdpSource
from runtime.windowing import signal_spec

Mode = Literal["fast", "realtime"]
Arrival = Literal["staggered", "aligned"]
#: novelty scoring off, on in every daemon phase (the daemon's default for a calibrated model), or
#: both: the fast phase without (which the ratio and the real-time phase use) and with it, for its cost
Novelty = Literal["off", "on", "both"]


@dataclass(frozen=True)
class DaemonBenchOptions:
    """Everything one benchmark run needs (the command line maps onto this one to one)."""

    work: Workload
    modes: tuple[Mode, ...] = ("fast", "realtime")
    seconds: float = 10.0
    warmup_s: float = 2.0
    recording_s: float = 10.0
    broker: str | None = None
    arrival: Arrival = "staggered"
    pin_cpu: int | None = None
    ratio_target: float = 0.70
    p99_target_ms: float = 25.0
    own_us_target: float = 20.0  # the daemon's own CPU per window with the null backend
    rss_target_mb: float = 150.0
    novelty: Novelty = "off"
    novelty_cost_target: float = 0.05  # the novelty path's share of the daemon's throughput
    seed: int = 0
    #: the fast phase as this many daemon slices between bare slices (runtime.bench.slices); 1: one
    #: bare, fast, bare sequence
    slices: int = 1


@dataclass
class DaemonBenchRun:
    """The JSON-ready result and the raw phases (the plot needs the real-time samples)."""

    result: dict[str, Any]
    phases: dict[str, PhaseResult]


def run_daemon_bench(opts: DaemonBenchOptions, command: str) -> DaemonBenchRun:
    """Run every phase and return the figures; the broker is started before pinning to a CPU."""
    meta = open_model(opts.work.model)
    spec = signal_spec(meta)
    if abs(spec.sample_rate - opts.work.sample_rate) > 1e-6 * spec.sample_rate:
        raise ConfigError(f"the model expects {spec.sample_rate:g} Hz; run the benchmark at that rate "
                          f"(--rate {spec.sample_rate:g}) or pick a model trained at "
                          f"{opts.work.sample_rate:g} Hz")
    if opts.novelty != "off" and (meta.novelty is None or not has_features_output(opts.work.model, meta)):
        raise ConfigError(f"--novelty {opts.novelty} needs a model with a features output and novelty "
                          f"statistics; {opts.work.model.name} has none: use --model "
                          "drsn_edge/assets/drsn_cw_cwru0hp.onnx or calibrate and export yours")
    phases: dict[str, PhaseResult] = {}
    sliced: SlicedFast | None = None
    load_start = _load()
    allowed = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
    cpus = len(allowed) or os.cpu_count() or 0
    others = allowed - {opts.pin_cpu} if opts.pin_cpu is not None else None  # for the sensor feeder
    with tempfile.TemporaryDirectory(prefix="drsn-bench-") as tmp, bench_broker(opts.broker) as broker:
        if opts.pin_cpu is not None:
            os.sched_setaffinity(0, {opts.pin_cpu})  # before any daemon or ORT thread exists
        recordings = make_recordings(Path(tmp) / "rec", opts.work.sample_rate, opts.recording_s, opts.seed)
        windows = sample_windows(meta, recordings, opts.work.batch)
        w = replace(opts.work, novelty=opts.novelty == "on")  # both: without novelty, then the pair
        null = w.backend == "null"
        if null:  # the stand-in answers "healthy" for every window: the sensors replay a healthy machine
            recordings = healthy_only(recordings)
        if "fast" not in opts.modes or opts.slices == 1:
            phases["bare1"] = run_bare(w.model, w.batch, w.threads, opts.seconds, windows, "bare #1", null)
        for mode in opts.modes:
            outbox = Path(tmp) / f"outbox-{mode}.sqlite3"
            network = mode == "realtime" and opts.arrival == "staggered"
            cfg = daemon_config(w, recordings, mode, broker.host, broker.port, outbox, network=network)
            feeder = _feeder(w, recordings, opts.warmup_s + opts.seconds + 5.0, others) if network else None
            label = f"daemon {mode}" + (", novelty on" if w.novelty else "")
            if mode == "fast" and opts.slices > 1:
                sliced = _sliced(opts, w, recordings, broker, Path(tmp), windows)
                phases |= {f"bare{k + 1}": b for k, b in enumerate(sliced.bare)}
                phases["fast"], on = sliced.merged()
                if on is not None:
                    phases["fast_novelty"] = on
                continue
            if mode == "fast" and opts.novelty == "both":
                phases["fast"], phases["fast_novelty"] = _novelty_pair(opts, w, recordings, broker, Path(tmp))
            else:
                phases[mode] = run_daemon_phase(cfg, label, opts.warmup_s, opts.seconds, feeder, null)
            if mode == "fast":
                phases["bare2"] = run_bare(w.model, w.batch, w.threads, opts.seconds, windows, "bare #2",
                                           null)
        broker_kind = f"{broker.kind} at {broker.host}:{broker.port}"
    result = _result(opts, command, meta, spec.hop, phases)
    if sliced is not None:
        from runtime.bench.report import summarise

        result["slices"] = slice_figures(
            [b.windows_per_s for b in sliced.bare], [d.windows_per_s for d in sliced.daemon],
            [d.windows_per_s for d in sliced.novelty],
            [summarise(d)["cpu_us_per_window"] for d in sliced.daemon],
            [summarise(b)["cpu_us_per_window"] for b in sliced.bare]) | {
            "seconds_each": round(opts.seconds / opts.slices, 3),
            # the process's RSS after each daemon slice: every slice starts a daemon in this process
            "rss_mb": [d.extra.get("rss_mb") for d in sliced.daemon],
            # the model call's own thread CPU per window in each slice (runtime.bench.report.summarise)
            "bare_model_us_per_window": [summarise(b)["model_cpu_us_per_window"] for b in sliced.bare],
            "daemon_model_us_per_window": [summarise(d)["model_cpu_us_per_window"] for d in sliced.daemon]}
        if "throughput_ratio" in result["targets"]:  # neighbours in time, not the pooled phases
            t = result["targets"]["throughput_ratio"]
            t |= {"pooled": t["measured"], "measured": result["slices"]["median_ratio"],
                  "method": f"median of {opts.slices} slice pairs"}
            t["met"] = t["measured"] >= t["target"]
    rss = [p.extra["rss_mb"] for p in phases.values() if p.extra.get("rss_mb") is not None]
    if rss:  # the whole benchmark process (daemon, bare loop, recordings) after its daemon phases
        result["targets"]["rss_mb"] = {"target": opts.rss_target_mb, "measured": max(rss),
                                       "met": max(rss) <= opts.rss_target_mb}
    result["environment"] = _environment(broker_kind, opts.pin_cpu, cpus)
    # a shared machine's load says how far one run can be trusted: kept beside its figures
    result["environment"]["load_average_start"] = load_start
    result["environment"]["load_average_end"] = _load()
    return DaemonBenchRun(result, phases)


def _load() -> float | None:
    """The 1-minute load average of the machine (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _novelty_pair(opts: DaemonBenchOptions, w: Workload, recordings: list[Path], broker: Any,
                  tmp: Path) -> tuple[PhaseResult, PhaseResult]:
    """The fast phase without and with novelty, as off, on, on, off halves (each ``seconds / 2``):
    load that drifts during the run weighs on both sides alike instead of biasing the cost."""
    halves: dict[bool, list[PhaseResult]] = {False: [], True: []}
    for k, novelty in enumerate((False, True, True, False)):
        cfg = daemon_config(replace(w, novelty=novelty), recordings, "fast", broker.host, broker.port,
                            tmp / f"outbox-fast-{k}.sqlite3")
        label = f"daemon fast, novelty {'on' if novelty else 'off'} ({k + 1} of 4)"
        halves[novelty].append(run_daemon_phase(cfg, label, opts.warmup_s, opts.seconds / 2, None,
                                                w.backend == "null"))
    return merge_phases("daemon fast", halves[False]), merge_phases("daemon fast, novelty on", halves[True])


def _sliced(opts: DaemonBenchOptions, w: Workload, recordings: list[Path], broker: Any, tmp: Path,
            windows: Any) -> SlicedFast:
    """The fast phase as ``opts.slices`` daemon slices between bare ones, ``seconds / slices`` each."""
    each, null, count = opts.seconds / opts.slices, w.backend == "null", itertools.count()

    def bare(label: str) -> PhaseResult:
        return run_bare(w.model, w.batch, w.threads, each, windows, label, null)

    def daemon(novelty: bool, label: str) -> PhaseResult:
        cfg = daemon_config(replace(w, novelty=novelty or w.novelty), recordings, "fast", broker.host,
                            broker.port, tmp / f"outbox-slice-{next(count)}.sqlite3")
        return run_daemon_phase(cfg, label, opts.warmup_s, each, None, null)

    return run_sliced(opts.slices, bare, daemon, opts.novelty == "both")


def _feeder(w: Workload, recordings: list[Path], seconds: float, cpus: set[int] | None) -> Feeder:
    """Send every sensor's frames over UDP to the port the daemon's UDP source bound."""

    def feed(daemon: Daemon) -> AbstractContextManager[None]:
        udp = next(s for s in daemon.sources if isinstance(s, UdpSource))
        return udp_feeder(udp.address, recordings, w.sensors, w.sample_rate, w.chunk, seconds, stagger=True,
                          cpus=cpus or None)

    return feed


def _result(opts: DaemonBenchOptions, command: str, meta: Any, hop: int,
            phases: dict[str, PhaseResult]) -> dict[str, Any]:
    from runtime.bench.report import summarise

    bare_runs = [summarise(phases[f"bare{k}"]) for k in range(1, len(phases) + 1) if f"bare{k}" in phases]
    bare_rate = sum(r["windows_per_s"] for r in bare_runs) / len(bare_runs)
    # results at QoS 1 without events commit at the config's default results_synchronous (the events
    # at outbox_sync): recorded, since results before that setting existed committed like events
    work = asdict(opts.work) | {"model": str(opts.work.model), "novelty": opts.novelty,
                                "results_sync": _results_sync_default()}
    result: dict[str, Any] = {
        "command": command,
        "workload": work,
        "model": {"name": meta.model.name, "version": meta.model.version, "window": meta.signal.window,
                  "hop": hop, "classes": meta.classes, "sample_rate": meta.signal.sample_rate},
        "bare": {"windows_per_s": round(bare_rate, 1), "runs": bare_runs},
        "targets": {},
    }
    if "fast" in phases:
        fast = summarise(phases["fast"])
        ratio = fast["windows_per_s"] / bare_rate
        result["fast"] = fast
        if opts.work.backend != "null":  # against a stand-in that costs nothing the ratio says nothing
            result["targets"]["throughput_ratio"] = {"target": opts.ratio_target, "measured": round(ratio, 4),
                                                     "met": ratio >= opts.ratio_target}
        own = fast["cpu_us_per_window"]
        if opts.work.backend == "null" and own is not None:  # the backend costs nothing: this is the daemon
            result["targets"]["own_us_per_window"] = {"target": opts.own_us_target, "measured": own,
                                                      "met": own <= opts.own_us_target}
    if "fast_novelty" in phases and "fast" in phases:
        plain, scored = result["fast"], summarise(phases["fast_novelty"])
        cost = 1.0 - scored["windows_per_s"] / plain["windows_per_s"]
        result["fast_novelty_on"] = scored
        result["targets"]["novelty_cost"] = {"target": opts.novelty_cost_target, "measured": round(cost, 4),
                                             "met": cost <= opts.novelty_cost_target}
        off_us, on_us = plain["cpu_us_per_window"], scored["cpu_us_per_window"]
        if off_us and on_us:  # what a dedicated core would see: throughput is 1 / CPU per window there
            result["novelty_cpu_cost"] = round(1.0 - off_us / on_us, 4)
    if "realtime" in phases:
        rt = summarise(phases["realtime"])
        rt["offered_per_s"] = round(opts.work.sensors * opts.work.sample_rate / hop, 1)
        rt["arrival"] = opts.arrival
        p99 = rt["ack_latency_ms"]["p99"]
        result["realtime"] = rt
        if opts.work.prediction_qos == 1:  # only results at QoS 1 have a PUBACK to time
            result["targets"]["p99_ack_latency_ms"] = {"target": opts.p99_target_ms, "measured": p99,
                                                       "met": p99 is not None and p99 <= opts.p99_target_ms}
    return result


def _results_sync_default() -> str:
    from runtime.mqtt.config import OutboxConfig

    return str(OutboxConfig.model_fields["results_synchronous"].default)


def _environment(broker: str, pinned: int | None, cpus: int) -> dict[str, Any]:
    try:
        import onnxruntime

        ort_version = str(onnxruntime.__version__)
    except ImportError:  # pragma: no cover - the benchmark already needed it
        ort_version = "not installed"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpus_visible": cpus,
        "pinned_cpu": pinned,
        "onnxruntime": ort_version,
        "broker": broker,
        "argv0": Path(sys.argv[0]).name,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
