"""summary.md and summary.png of this folder: the novelty path's share of the daemon's CPU per run
(``{before,after}-N/result.json``), its calls per batch inside the daemon (split_calls.log) and
``bench novelty`` (bench_novelty_{before,after}/bench_novelty.json), before and after.

Run from anywhere: ``python docs/results/novelty/daemon_cost/share-2026-11-28/summarize.py [FOLDER]``
(FOLDER: another set laid out the same, such as ``set1-084b1c9/``).
"""

from __future__ import annotations

import ast
import json
import re
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parent
SIDES = ("before", "after")
#: split_calls.py's names, in the order the table shows them
CALLS = [
    ("score_batch", "the batch score (`score_batch`)"),
    ("cache.bands", "of which envelope bands with reuse (`EnvelopeCache.bands`)"),
    ("cache._plan", "of which the plan, which rows compute (`EnvelopeCache._plan`)"),
    ("fresh_bands", "of which the bands computed (every other batch, 16 rows)"),
    ("rfft", "of which the real FFT"),
    ("scorer.score", "of which the score (`NoveltyScorer.score`)"),
    ("quiet_rounds", "the flags (`quiet_rounds`)"),
]


def shares() -> dict[str, list[tuple[float, float]]]:
    """Per side: (share in %, 1-minute load at the run's start) of every run, in run order."""
    loads: dict[str, float] = {}
    for line in (HERE / "runs.log").read_text().splitlines():
        m = re.match(r"=== (\w+-\d+) runtime \S+ \S+ load ([\d.]+)", line)
        if m:
            loads[m.group(1)] = float(m.group(2))
    out: dict[str, list[tuple[float, float]]] = {s: [] for s in SIDES}
    for side in SIDES:
        for d in sorted(HERE.glob(f"{side}-*"), key=lambda p: int(p.name.split("-")[1])):
            r = json.loads((d / "result.json").read_text())
            share = 100 * r["fast_novelty_on"]["novelty_cpu_share"]
            out[side].append((share, loads.get(d.name, float("nan"))))
    return out


def splits() -> dict[str, list[dict[str, float]]]:
    """Per side: the per-batch microseconds of every split_calls run."""
    out: dict[str, list[dict[str, float]]] = {s: [] for s in SIDES}
    side = ""
    for line in (HERE / "split_calls.log").read_text().splitlines():
        m = re.match(r"=== split (\w+)-\d+", line)
        if m:
            side = m.group(1)
        elif line.startswith("SPLIT") and side in out:
            out[side].append(ast.literal_eval(line[line.index("{"): line.index("}") + 1]))
    return out


def main() -> None:
    sh, sp = shares(), splits()
    med = {s: statistics.median(v for v, _ in sh[s]) for s in SIDES}
    lines = [
        "# The novelty path's share of the daemon, start tree 36c3244 against this change",
        "",
        "| novelty path's own CPU / the daemon's, novelty on | runs (load at start) | median |",
        "|---|---|---:|",
    ]
    for s in SIDES:
        runs = ", ".join(f"{v:.2f} ({ld:.1f})" for v, ld in sh[s])
        lines.append(f"| {s} | {runs} % | {med[s]:.2f} % |")
    lines += ["", f"Runs per side: {len(sh['before'])} and {len(sh['after'])}, interleaved.", ""]
    lines += [
        "| per batch of 32 inside the daemon (us), median of runs | before | after | after / before |",
        "|---|---:|---:|---:|",
    ]
    path: dict[str, float] = {}
    for key, label in CALLS:
        b = statistics.median(r.get(key, float("nan")) for r in sp["before"])
        a = statistics.median(r.get(key, float("nan")) for r in sp["after"])
        lines.append(f"| {label} | {b:.1f} | {a:.1f} | {a / b:.2f} |")
    for s in SIDES:
        path[s] = statistics.median(r["score_batch"] + r["quiet_rounds"] for r in sp[s])
    lines.append(f"| the path: batch score and flags (median of per-run sums) | {path['before']:.1f} | "
                 f"{path['after']:.1f} | {path['after'] / path['before']:.2f} |")
    pairs = [(a["score_batch"] + a["quiet_rounds"]) / (b["score_batch"] + b["quiet_rounds"])
             for b, a in zip(sp["before"], sp["after"], strict=False)]
    lines += ["", "Per pair (after / before, the path): " + ", ".join(f"{p:.2f}" for p in pairs)
              + f" ({len(pairs)} pairs, each run 6 s after 2 s of warm-up)", ""]
    nov: dict[str, dict[str, float]] = {}
    for s in SIDES:
        f = HERE / f"bench_novelty_{s}" / "bench_novelty.json"
        if f.exists():
            nov[s] = json.loads(f.read_text())
    if len(nov) == 2:
        lines += ["| `bench novelty`, per batch of 32, median of 3 runs | before | after |",
                  "|---|---:|---:|"]
        for key, label in [("envelope_bands_ms_per_batch", "envelope bands of every window (ms)"),
                           ("envelope_reused_ms_per_batch", "bands reused as the daemon does (k = 4) (ms)"),
                           ("novelty_ms_per_batch", "whole per-window path with a learned baseline (ms)")]:
            lines.append(f"| {label} | {nov['before'][key]:.3f} | {nov['after'][key]:.3f} |")
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, s in enumerate(SIDES):
        ys = [v for v, _ in sh[s]]
        ax1.scatter([i] * len(ys), ys, label=f"{s} (median {med[s]:.2f} %)")
    ax1.axhline(5.0, color="grey", linestyle="--", label="goal <= 5 %")
    ax1.set_xticks([0, 1], ["before (36c3244)", "after"])
    ax1.set_xlim(-0.5, 1.5)
    ax1.set_ylabel("novelty path's own CPU / the daemon's (%)")
    ax1.set_title("share, bench daemon --novelty both, one dot per run")
    ax1.legend(fontsize=8)
    keys = [k for k, _ in CALLS]
    x = range(len(keys))
    for off, s in ((-0.2, "before"), (0.2, "after")):
        vals = [statistics.median(r.get(k, float("nan")) for r in sp[s]) for k in keys]
        ax2.bar([i + off for i in x], vals, width=0.4, label=s)
    ax2.set_xticks(list(x), keys, rotation=30, ha="right", fontsize=8)
    ax2.set_ylabel("us per batch of 32 (median of runs)")
    ax2.set_title("calls inside the daemon (split_calls.py)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "summary.png", dpi=110)


if __name__ == "__main__":
    main()
