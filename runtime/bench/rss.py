"""The daemon's memory as deployed: ``drsn-edge run`` in its own process, sampled from /proc.

``bench daemon`` runs the daemon inside the benchmark process, whose resident memory also holds
the bare-backend sessions, the recordings and the measurements, so its RSS is an upper bound.
``python -m runtime.bench.rss --seconds 60 --out bench-results/rss`` starts the real command on
the benchmark's real-time config (N sensors replayed at 12 kHz, every window's result at QoS 1
by default), reads ``VmRSS`` once a second and writes ``rss.json``, ``rss.md`` (peak, last,
after the first 10 s) and ``rss.png`` (RSS over time).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from runtime.bench.broker import bench_broker
from runtime.bench.workload import Workload, daemon_config, make_recordings

log = logging.getLogger(__name__)

_PACKAGED = Path(__file__).resolve().parents[2] / "drsn_edge" / "assets" / "drsn_cw_sim.onnx"


def rss_of(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of ``pid`` in MiB; None once the process is gone."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError, IndexError):
        return None


def sample_daemon(config: dict[str, Any], seconds: float, folder: Path) -> list[tuple[float, float, float]]:
    """Run ``drsn-edge run`` on ``config`` for ``seconds``; return (t, rss, peak) samples in MiB."""
    path = folder / "daemon.json"
    path.write_text(json.dumps(config))
    cmd = [sys.executable, "-m", "drsn_edge.cli", "run", "--config", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float, float]] = []
    t0 = time.monotonic()
    try:
        while (t := time.monotonic() - t0) < seconds and proc.poll() is None:
            got = rss_of(proc.pid)
            if got is not None:
                samples.append((round(t, 2), round(got[0], 1), round(got[1], 1)))
            time.sleep(1.0)
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    if proc.returncode not in (0, -15) or not samples:
        raise RuntimeError(f"the daemon exited with status {proc.returncode}: {err[-2000:]}")
    return samples


def summary(samples: list[tuple[float, float, float]]) -> dict[str, Any]:
    settled = [rss for t, rss, _ in samples if t >= 10.0] or [samples[-1][1]]
    return {"samples": len(samples), "seconds": samples[-1][0], "rss_last_mb": samples[-1][1],
            "rss_peak_mb": max(peak for _, _, peak in samples), "rss_after_10s_max_mb": max(settled),
            "rss_after_10s_min_mb": min(settled)}


def plot(samples: list[tuple[float, float, float]], target: float, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed; no RSS plot (pip install matplotlib)")
        return False
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([s[0] for s in samples], [s[1] for s in samples], label="VmRSS")
    ax.plot([s[0] for s in samples], [s[2] for s in samples], ls=":", label="VmHWM (peak)")
    ax.axhline(target, color="k", ls="--", label=f"target {target:g} MiB")
    ax.set(xlabel="s since start", ylabel="MiB", title="drsn-edge run: resident memory")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runtime.bench.rss", description=__doc__)
    p.add_argument("--model", type=Path, default=_PACKAGED)
    p.add_argument("--sensors", type=int, default=64)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--prediction-qos", choices=["0", "1", "off"], default="1")
    p.add_argument("--predictions", choices=["window", "batch"], default="batch")
    p.add_argument("--target-mb", type=float, default=150.0)
    p.add_argument("--out", type=Path, default=Path("bench-results/rss"))
    args = p.parse_args(argv)
    qos: Literal[0, 1] | None = {"off": None, "0": 0, "1": 1}[args.prediction_qos]
    work = Workload(args.model.resolve(), args.sensors, 12000.0, 1024, 32, 5.0, 1, qos, "full",
                    predictions=args.predictions)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="drsn-rss-") as tmp, bench_broker() as broker:
        recordings = make_recordings(Path(tmp) / "rec", 12000.0, 10.0)
        outbox = Path(tmp) / "outbox.sqlite3"
        cfg = daemon_config(work, recordings, "realtime", broker.host, broker.port, outbox)
        samples = sample_daemon(cfg, args.seconds, Path(tmp))
    result = {"command": " ".join(["python -m runtime.bench.rss", *(argv or sys.argv[1:])]),
              "sensors": args.sensors, "prediction_qos": args.prediction_qos, "predictions": args.predictions,
              "target_mb": args.target_mb, **summary(samples), "trace": samples}
    s = result
    met = "met" if s["rss_peak_mb"] <= args.target_mb else "MISSED"
    table = ("| figure | MiB |\n|---|---:|\n"
             f"| peak (VmHWM) | {s['rss_peak_mb']:.1f} |\n| last | {s['rss_last_mb']:.1f} |\n"
             f"| after 10 s: min / max | {s['rss_after_10s_min_mb']:.1f} / "
             f"{s['rss_after_10s_max_mb']:.1f} |\n"
             f"| target | <= {args.target_mb:g}: {met} |\n")
    head = (f"`drsn-edge run`, {args.sensors} sensors replayed at 12 kHz in real time, results "
            f"{args.prediction_qos}/{args.predictions}, {s['seconds']:.0f} s, {s['samples']} samples\n\n")
    (args.out / "rss.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "rss.md").write_text(head + table)
    plot(samples, args.target_mb, args.out / "rss.png")
    print(head + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
