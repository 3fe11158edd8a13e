"""Tables and the figure of `drsn-edge bench backends --device cuda` (JSON, Markdown, PNG).

Kept apart from the measuring code so that the report can be rebuilt, and tested, on a machine
without a GPU from the JSON a GPU run wrote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from drsn_edge.bench_backends.report import batch_axes, numerics_and_skipped

STEM = "backends-cuda"


def markdown_table(doc: dict[str, Any]) -> str:
    """Figures per runner, batch and mode, then numerics, then the runners that did not run and why."""
    lines = ["| backend | mode | batch | p50 ms | p99 ms | windows/s | device peak MiB |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for b in doc["backends"]:
        for r in b["results"]:
            mem = "n/a" if r["device_peak_mib"] is None else f"{r['device_peak_mib']:.1f}"
            lines.append(f"| {b['name']} | {r['mode']} | {r['batch']} | {r['p50_ms']:.3f} | "
                         f"{r['p99_ms']:.3f} | {r['windows_per_s']:,.0f} | {mem} |")
    return "\n".join([*lines, *numerics_and_skipped(doc["backends"], note=True)])


def markdown(doc: dict[str, Any]) -> str:
    m, s, h = doc["model"], doc["settings"], doc["host"]
    gpu = h["gpu"]
    pkgs = ", ".join(f"{k} {v}" for k, v in h["packages"].items())
    return "\n".join([
        f"# CUDA backends: {m['name']} version {m['version']}", "",
        f"`{doc['command']}`", "",
        f"Model {Path(m['path']).name} ({m['parameters']:,} parameters, input {m['input']}); input: the "
        f"model's golden windows tiled to the batch size; {s['repeats']} repeats of >= {s['min_time_s']} s "
        f"after {s['warmup']} warm-up calls, medians over repeats; every timed call ends with the device "
        "synchronised. compute: input "
        "already on the device, logits left there; end-to-end: numpy in host memory to numpy logits, "
        "through pinned buffers.", "",
        f"GPU {gpu['name']} (sm {gpu['compute_capability']}, {gpu['memory_gib']} GiB, CUDA {gpu['cuda']}, "
        f"cuDNN {gpu['cudnn']}); {h['platform']}, Python {h['python']}, {pkgs}. "
        f"Created {doc['created']}.", "",
        markdown_table(doc), ""])


def plot(doc: dict[str, Any], path: Path) -> Path | None:
    """Windows/s and p50 latency against batch size, solid compute and dashed end to end.

    None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no PNG: matplotlib is not installed (`pip install matplotlib`)", file=sys.stderr)
        return None
    fig, (ax_rate, ax_lat) = plt.subplots(1, 2, figsize=(12, 4.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, b in enumerate(x for x in doc["backends"] if x["results"]):
        for mode, style in (("compute", "-"), ("end-to-end", "--")):
            rows = [r for r in b["results"] if r["mode"] == mode]
            if not rows:
                continue
            xs = [r["batch"] for r in rows]
            kw = {"color": colours[i % len(colours)], "linestyle": style, "marker": "o", "markersize": 3}
            ax_rate.plot(xs, [r["windows_per_s"] for r in rows], label=f"{b['name']} {mode}", **kw)
            ax_lat.plot(xs, [r["p50_ms"] for r in rows], **kw)
    batch_axes(ax_rate, ax_lat, doc["settings"]["batch_sizes"])
    ax_rate.legend(fontsize=7)
    m = doc["model"]
    fig.suptitle(f"{m['name']} version {m['version']} on {doc['host']['gpu']['name']}: solid compute only, "
                 "dashed end to end with host copies", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def save(doc: dict[str, Any], out: Path) -> list[Path]:
    """Write backends-cuda.json, .md and (with matplotlib) .png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{STEM}.json", out / f"{STEM}.md"]
    paths[0].write_text(json.dumps(doc, indent=2) + "\n")
    paths[1].write_text(markdown(doc))
    png = plot(doc, out / f"{STEM}.png")
    return paths + ([png] if png is not None else [])
