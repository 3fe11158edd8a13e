"""The backend benchmark's report: one JSON document, a Markdown table and a PNG of throughput and
latency against batch size."""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from drsn_edge.bench_backends.measurement import CLEAR_REFS, BackendResult

SCHEMA = "drsn-edge/bench-backends"
_MEMORY_METHOD = "peak RSS (VmHWM, reset per batch size) minus RSS before load"
_MEMORY_FALLBACK = "lifetime peak RSS minus RSS before load"


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of ``names`` (those not installed are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for pkg in names:
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return found


def command_line(called_from_python: str) -> str:
    """The command as typed, or ``called_from_python`` when not run as ``drsn-edge bench backends``."""
    argv = sys.argv[1:]
    return shlex.join(["drsn-edge", *argv]) if argv[:2] == ["bench", "backends"] else called_from_python


def model_section(model: Path, meta: Any) -> dict[str, Any]:
    """What the report says about the benchmarked model."""
    return {"path": str(model), "name": meta.model.name, "version": meta.model.version,
            "weights_sha256": meta.weights_sha256, "parameters": meta.model.num_parameters,
            "input": meta.input.shape, "classes": meta.classes}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report_doc(args: argparse.Namespace, model: Path, meta: Any, batches: list[int],
               results: list[BackendResult]) -> dict[str, Any]:
    import os

    command = command_line("drsn-edge bench backends (called from Python)")
    return {
        "schema": SCHEMA, "version": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command,
        "model": model_section(model, meta),
        "checkpoint": None if args.checkpoint is None else str(args.checkpoint),
        "settings": {"batch_sizes": batches, "repeats": args.repeats, "min_time_s": args.min_time,
                     "warmup": args.warmup, "threads": args.threads,
                     "memory": _MEMORY_METHOD if CLEAR_REFS.exists() else _MEMORY_FALLBACK},
        "host": {"cpu": _cpu_name(), "cpus": os.cpu_count(), "platform": platform.platform(),
                 "python": platform.python_version(),
                 "packages": package_versions(("onnxruntime", "torch", "tensorrt", "numpy"))},
        "backends": [asdict(r) for r in results],
    }


def markdown_table(doc: dict[str, Any]) -> str:
    """The figures as a Markdown table, then the numerics and the skipped backends with reasons."""
    lines = ["| backend | batch | p50 ms | p99 ms | windows/s | peak RSS delta MiB |",
             "|---|---:|---:|---:|---:|---:|"]
    for b in doc["backends"]:
        for r in b["results"]:
            lines.append(f"| {b['name']} | {r['batch']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
                         f"{r['windows_per_s']:,.0f} | {r['peak_rss_delta_mib']:.1f} |")
    return "\n".join([*lines, *numerics_and_skipped(doc["backends"])])


def numerics_and_skipped(backends: list[dict[str, Any]], *, note: bool = False) -> list[str]:
    """The numerics table of the backends that ran (``note``: their reason column too), then one
    line per backend skipped or failed, with the reason."""
    extra_head, extra_rule = (" note |", "---|") if note else ("", "")
    lines = ["", f"| backend | load s | max abs logit diff vs golden | argmax agreement |{extra_head}",
             f"|---|---:|---:|---:|{extra_rule}"]
    for b in backends:
        if b["status"] == "ok":
            lines.append(f"| {b['name']} | {b['load_s']:.2f} | {b['max_abs_diff']:.2e} | "
                         f"{100 * b['argmax_agreement']:.1f}% |" + (f" {b['reason']} |" if note else ""))
    skipped = [b for b in backends if b["status"] != "ok"]
    if skipped:
        lines += ["", *[f"- {b['name']} {b['status']}: {b['reason']}" for b in skipped]]
    return lines


def _markdown(doc: dict[str, Any]) -> str:
    m, s, h = doc["model"], doc["settings"], doc["host"]
    pkgs = ", ".join(f"{k} {v}" for k, v in h["packages"].items())
    return "\n".join([
        f"# Backends: {m['name']} version {m['version']}", "",
        f"`{doc['command']}`", "",
        f"Model {Path(m['path']).name} ({m['parameters']:,} parameters, input {m['input']}); "
        f"{s['threads']} intra-op thread(s), {s['repeats']} repeats of >= {s['min_time_s']} s, medians over "
        f"repeats. Memory: {s['memory']}.", "",
        f"Host: {h['cpu']} ({h['cpus']} CPUs), {h['platform']}, Python {h['python']}, {pkgs}. "
        f"Created {doc['created']}.", "",
        markdown_table(doc), ""])


def plot(doc: dict[str, Any], path: Path) -> Path | None:
    """Throughput and p50 latency against batch size, one line per backend; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no PNG: matplotlib is not installed (`pip install matplotlib`)", file=sys.stderr)
        return None
    fig, (ax_rate, ax_lat) = plt.subplots(1, 2, figsize=(11, 4.2))
    for b in doc["backends"]:
        if not b["results"]:
            continue
        xs = [r["batch"] for r in b["results"]]
        ax_rate.plot(xs, [r["windows_per_s"] for r in b["results"]], marker="o", label=b["name"])
        ax_lat.plot(xs, [r["p50_ms"] for r in b["results"]], marker="o", label=b["name"])
    batch_axes(ax_rate, ax_lat, doc["settings"]["batch_sizes"])
    ax_rate.legend()
    m, s = doc["model"], doc["settings"]
    fig.suptitle(f"{m['name']} version {m['version']}: backends on {doc['host']['cpu']}, "
                 f"{s['threads']} thread(s)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def batch_axes(ax_rate: Any, ax_lat: Any, batches: list[int]) -> None:
    """Log-log throughput and latency axes over the batch sizes, as both benchmarks plot them."""
    from matplotlib.ticker import NullLocator

    for ax, title in ((ax_rate, "throughput (windows/s)"), (ax_lat, "latency p50 per call (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("batch size")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)


def save(doc: dict[str, Any], out: Path) -> list[Path]:
    """Write backends.json, backends.md and (with matplotlib) backends.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "backends.json", out / "backends.md"]
    paths[0].write_text(json.dumps(doc, indent=2) + "\n")
    paths[1].write_text(_markdown(doc))
    png = plot(doc, out / "backends.png")
    return paths + ([png] if png is not None else [])
