"""Table and PNG of the interleaved A/B in this folder: `python summarize.py [folder]`.

Reads <folder>/<config>-<side>-<round>/result.json and the load average logged before each run
in <folder>/../ab-runs.log; writes summary.md and summary.png beside this script's folder.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent


def loads(log: Path) -> dict[str, str]:
    out = {}
    for m in re.finditer(r"=== \S+ (\S+) load: (\S+ \S+ \S+)", log.read_text() if log.exists() else ""):
        out[m.group(1)] = m.group(2)
    return out


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "ab"
    load = loads(folder.parent / f"{folder.name}-runs.log") or loads(folder.parent / "ab-runs.log")
    rows, data = [], {}
    for res in sorted(folder.glob("*/result.json")):
        name = res.parent.name
        cfg, side, rnd = name.rsplit("-", 2)
        d = json.loads(res.read_text())
        fast, bare = d["fast"], d["bare"]
        ratio = fast["windows_per_s"] / bare["windows_per_s"] if bare["windows_per_s"] else float("nan")
        bare_cpu = statistics.mean(r["cpu_us_per_window"] for r in bare["runs"])
        cpu_ratio = bare_cpu / fast["cpu_us_per_window"]
        null = cfg.startswith("null")
        rows.append((cfg, side, rnd, load.get(name, "?"), bare["windows_per_s"], fast["windows_per_s"],
                     ratio, bare_cpu, fast["cpu_us_per_window"], cpu_ratio, null))
        data.setdefault((cfg, side), []).append(fast["cpu_us_per_window"] if null else 100 * ratio)
        if not null:
            data.setdefault((cfg + " (CPU)", side), []).append(100 * cpu_ratio)
    lines = ["| config | side | run | load (1/5/15 min) | bare windows/s | daemon windows/s | "
             "daemon / bare (windows/s) | bare CPU us/window | daemon CPU us/window | bare / daemon (CPU) |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for cfg, side, rnd, ld, b, f, r, bcpu, cpu, cr, null in rows:
        ratio = "" if null else f"{100 * r:.1f} %"
        cratio = "" if null else f"{100 * cr:.1f} %"
        bare = "(null)" if null else f"{b:,.0f}"
        bc = "" if null else f"{bcpu:.1f}"
        lines.append(f"| {cfg} | {side} | {rnd} | {ld} | {bare} | {f:,.0f} | {ratio} | {bc} | {cpu:.1f} "
                     f"| {cratio} |")
    lines += ["", "| config | side | runs | median | values |", "|---|---|---:|---:|---|"]
    for (cfg, side), vals in sorted(data.items()):
        unit = "us/window (CPU)" if cfg.startswith("null") else "% of bare"
        lines.append(f"| {cfg} | {side} | {len(vals)} | {statistics.median(vals):.1f} {unit} | "
                     f"{', '.join(f'{v:.1f}' for v in vals)} |")
    (folder.parent / f"{folder.name}-summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, cfg, label in ((axes[0], "qos1-batch (CPU)", "bare / daemon CPU per window, % (ONNX Runtime)"),
                           (axes[1], "null-qos1-batch", "daemon CPU per window, us (null backend)")):
        for x, side in enumerate(("before", "after")):
            vals = data.get((cfg, side), [])
            ax.scatter([x] * len(vals), vals, color="C0" if side == "before" else "C1")
            if vals:
                ax.hlines(statistics.median(vals), x - 0.2, x + 0.2, color="k")
        ax.set_xticks([0, 1], ["before (25042db)", "after"])
        ax.set_title(label, fontsize=9)
        ax.set_xlim(-0.6, 1.6)
    axes[0].axhline(75, ls="--", color="grey")
    axes[1].axhline(20, ls="--", color="grey")
    fig.suptitle("QoS 1, one message per batch: interleaved A/B (dots: runs, bars: medians)", fontsize=10)
    fig.tight_layout()
    fig.savefig(folder.parent / f"{folder.name}-summary.png", dpi=110)


if __name__ == "__main__":
    main()
