"""Several ``bench daemon`` runs side by side: a table of medians and a PNG of every run.

On a shared machine one run says little (a bare run can vary by half between two minutes), so
figures are reported as the median of repeated runs with every run beside it. ``python -m
runtime.bench.compare --out summary before=results/ab/null-before-* after=results/ab/null-after-*``
reads the ``result.json`` of each folder, groups them by the label before ``=``, prints a
Markdown table (runs and median per group) and writes ``summary.md`` and ``summary.png``: one
panel per figure, one column of dots per group, the median as a bar.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import statistics
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: (label, how to read it from a result.json) of the figures compared
FIGURES: tuple[tuple[str, str], ...] = (
    ("daemon CPU per window (us)", "fast.cpu_us_per_window"),
    ("daemon / bare", "targets.throughput_ratio.measured"),
    ("daemon / bare, spread of the slice pairs", "slices.spread"),
    ("bare / daemon CPU per window, slice pairs", "slices.median_cpu_ratio"),
    ("novelty cost (windows/s)", "targets.novelty_cost.measured"),
    ("novelty cost (CPU per window)", "novelty_cpu_cost"),
    ("novelty path's own CPU share", "fast_novelty_on.novelty_cpu_share"),
    ("real-time CPU per window (us)", "realtime.cpu_us_per_window"),
    ("PUBACK p99 (ms)", "realtime.ack_latency_ms.p99"),
    ("classified p99 (ms)", "realtime.classify_latency_ms.p99"),
    ("load average at start", "environment.load_average_start"),
)


def figure(result: dict[str, Any], path: str) -> float | None:
    """The number at ``path`` (dotted keys) of one result, or None where the run has none."""
    value: Any = result
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def collect(groups: dict[str, list[Path]]) -> dict[str, dict[str, list[float]]]:
    """group -> figure label -> the values of its runs (runs without the figure left out)."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, folders in groups.items():
        results = [json.loads((f / "result.json").read_text()) for f in folders]
        out[name] = {label: [v for r in results if (v := figure(r, path)) is not None]
                     for label, path in FIGURES}
    return out


def table(data: dict[str, dict[str, list[float]]]) -> str:
    """Markdown: one row per group and figure that has values, runs and median."""
    lines = ["| group | figure | runs | median |", "|---|---|---|---:|"]
    for group, figures in data.items():
        for label, values in figures.items():
            if values:
                runs = ", ".join(f"{v:.4g}" for v in values)
                lines.append(f"| {group} | {label} | {runs} | {statistics.median(values):.4g} |")
    return "\n".join(lines) + "\n"


def plot(data: dict[str, dict[str, list[float]]], path: Path) -> bool:
    """One panel per figure with values; False (and a log line) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed; no plot (pip install matplotlib)")
        return False
    shown = [label for label, _ in FIGURES if any(data[g][label] for g in data)]
    cols = min(max(len(shown), 1), 4)  # rows of four panels: a dozen figures stay readable
    rows = -(-max(len(shown), 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    for ax, label in zip(axes.flat, shown, strict=False):
        groups = [g for g in data if data[g][label]]
        for x, g in enumerate(groups):
            values = data[g][label]
            ax.bar(x, statistics.median(values), color="#cfd8e3", width=0.6)
            ax.plot([x] * len(values), values, "o", color="#1f4e79")
        ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right")
        ax.set_title(label, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runtime.bench.compare", description=__doc__)
    p.add_argument("groups", nargs="+", metavar="LABEL=GLOB", help="a label and the run folders it holds")
    p.add_argument("--out", type=Path, required=True, help="folder for summary.md and summary.png")
    args = p.parse_args(argv)
    groups: dict[str, list[Path]] = {}
    for spec in args.groups:
        label, sep, pattern = spec.partition("=")
        folders = sorted(Path(f) for f in glob.glob(pattern) if (Path(f) / "result.json").exists())
        if not sep or not folders:
            p.error(f"{spec!r}: write LABEL=GLOB with the GLOB matching bench daemon --out folders")
        groups.setdefault(label, []).extend(folders)
    data = collect(groups)
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(data)
    (args.out / "summary.md").write_text(text)
    print(text)
    if plot(data, args.out / "summary.png"):
        print(f"wrote {args.out / 'summary.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
