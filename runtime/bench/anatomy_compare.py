"""Several ``python -m runtime.bench.anatomy`` runs side by side: CPU per thread and latency stages.

``python -m runtime.bench.anatomy_compare --out summary before=results/before-* after=results/after-*``
reads each folder's ``anatomy.json``, groups the runs by the label before ``=`` and writes
``summary.md`` (per group: the median of each thread's CPU per window with every run beside it,
the process's, and the median of each run's p50 / p99 of each latency stage) and
``summary.png`` (stacked bars of the median CPU per thread, one bar per group). Threads are
grouped by role (the source's threads, inference, MQTT), since a change may add or remove one.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

#: (role, thread-name prefixes) in the order they are stacked
ROLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("source (receive, decode, window)", ("source-",)),
    ("inference (batches, results)", ("infer-",)),
    ("MQTT (worker, paho)", ("mqtt-", "paho-")),
    ("other", ("",)),
)


def role_of(thread: str) -> str:
    return next(role for role, prefixes in ROLES if thread.startswith(prefixes))


def load(groups: dict[str, list[Path]]) -> dict[str, list[dict[str, Any]]]:
    """group -> the ``anatomy.json`` documents of its folders (folders without one left out)."""
    files = {name: [d / "anatomy.json" for d in dirs] for name, dirs in groups.items()}
    return {name: [json.loads(f.read_text()) for f in fs if f.exists()] for name, fs in files.items()}


def per_role(run: dict[str, Any]) -> dict[str, float]:
    """us of CPU per window by role for one run."""
    out = dict.fromkeys((role for role, _ in ROLES), 0.0)
    n = max(run["windows"], 1)
    for thread, seconds in run["threads_s"].items():
        out[role_of(thread)] += 1e6 * seconds / n
    return out


def table(runs: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["| group (runs) | " + " | ".join(role for role, _ in ROLES) + " | process | load at end |",
             "|---|" + "---|" * (len(ROLES) + 2)]
    for name, group in runs.items():
        roles = [per_role(r) for r in group]
        cells = []
        for role, _ in ROLES:
            values = [r[role] for r in roles]
            cells.append(f"**{statistics.median(values):.1f}** ({', '.join(f'{v:.1f}' for v in values)})")
        proc = [r["cpu_us_per_window"] for r in group]
        cells.append(f"**{statistics.median(proc):.1f}** ({', '.join(f'{v:.1f}' for v in proc)})")
        cells.append(", ".join(f"{r['load_average']:.2f}" for r in group))
        lines.append(f"| {name} ({len(group)}) | " + " | ".join(cells) + " |")
    lines += ["", "Latency stages (ms): the median over a group's runs of each run's p50 / p99:", ""]
    timed = {name: [r["stages_ms"] for r in group if "p50" in r.get("stages_ms", {})]
             for name, group in runs.items()}
    names = next((t[0]["names"] for t in timed.values() if t), None)
    if names:
        lines += ["| group | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for name, stages in timed.items():
            if stages:
                cells = [f"{statistics.median(t['p50'][j] for t in stages):.2f} / "
                         f"{statistics.median(t['p99'][j] for t in stages):.2f}" for j in range(len(names))]
                windows = sum(t["windows"] for t in stages)
                lines.append(f"| {name} ({windows} windows) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(runs: dict[str, list[dict[str, Any]]], path: Path,
         title: str = "real time, 64 UDP sensors, null backend: CPU per window by thread") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(runs)
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(names), 4.2))
    bottom = np.zeros(len(names))
    for role, _ in ROLES:
        values = np.array([statistics.median([per_role(r)[role] for r in runs[n]]) for n in names])
        ax.bar(names, values, bottom=bottom, label=role)
        bottom += values
    for i, name in enumerate(names):  # every run's process CPU per window as a dot
        ys = [r["cpu_us_per_window"] for r in runs[name]]
        ax.plot([i] * len(ys), ys, "k.", ms=5)
    ax.set_ylabel("CPU per window (us), median by thread role")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runtime.bench.anatomy_compare", description=__doc__)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--title", default="real time, 64 UDP sensors, null backend: CPU per window by thread",
                   help="the PNG's title (say which runs it shows)")
    p.add_argument("groups", nargs="+", metavar="NAME=GLOB")
    args = p.parse_args(argv)
    groups: dict[str, list[Path]] = {}
    for spec in args.groups:
        name, _, pattern = spec.partition("=")
        groups[name] = [Path(d) for d in sorted(glob.glob(pattern))]
    runs = {name: group for name, group in load(groups).items() if group}
    if not runs:
        raise SystemExit("no anatomy.json found under the given folders; run python -m runtime.bench.anatomy "
                         "--out FOLDER first")
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(runs)
    (args.out / "summary.md").write_text(text)
    plot(runs, args.out / "summary.png", args.title)
    print(text)
    print(f"wrote {args.out / 'summary.md'} and {args.out / 'summary.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
