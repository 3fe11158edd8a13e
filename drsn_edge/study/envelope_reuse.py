"""Does reusing a sensor's envelope bands across its overlapping windows change what is flagged?

The daemon computes the envelope bands of ``sqrt_envelope_mahalanobis`` on every k-th window of
a sensor and scores the windows between with them (``novelty.envelope_every``,
:mod:`runtime.novelty.envelope_cache`); calibration and the studies compute them per window. This
replays the packaged simulator study's machines (:func:`drsn_edge.study.novelty_packaged.machines`:
the demo's five, 10 familiar machines per class, the second machine at two resonances) through
ONNX Runtime once, scores every machine's window sequence with the bands of every k-th window
(window i takes window ``k * (i // k)``'s, what the cache does on a stream without gaps; its tests
check that), and smooths as the daemon does. Per k: the share of windows flagged per set and
class at p99 and p99.9, the alarms, and how long after its fault appears each demo machine is
first flagged.

``python -m drsn_edge.study.envelope_reuse --model drsn_edge/assets/drsn_cw_sim.onnx --every 1 4
--out docs/results/novelty/daemon_cost``
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.study.novelty_packaged import HISTORY, HOP, RATE, WINDOW, _windows, machines, min_windows, plot
from runtime.artifact import read_onnx_metadata
from runtime.novelty.scores import envelope_bands
from runtime.novelty.smoothing import SmoothingSpec, episodes, flags
from runtime.novelty.stats import scorer_of
from runtime.onnx_tools.ort_run import cpu_session, run_outputs

EXIT_RATIO = 0.9
LEVELS = ("p99", "p99.9")


def reused(bands: np.ndarray, every: int) -> np.ndarray:
    """Each window's bands as the daemon scores a gapless stream: those of window ``every * (i // every)``."""
    return bands[(np.arange(len(bands)) // every) * every]


def measure(model: Path, everies: list[int], durations: list[float]) -> list[dict[str, Any]]:
    """One row per (k, minimum flag duration, set, class); the model runs once per machine."""
    meta = read_onnx_metadata(model)
    scorer = scorer_of(meta, str(model))
    if scorer is None or meta.features_name is None or not scorer.stats.needs_windows:
        raise ValueError(f"{model} does not carry an envelope score; use the packaged simulator model")
    session = cpu_session(model)
    acc: dict[tuple[int, float, str, str], dict[str, Any]] = {}
    for group, _name, cond, signal, truth in machines():
        x = _windows(signal)
        features = run_outputs(session, x)[meta.features_name]
        bands = envelope_bands(x, scorer.stats.envelope_bands)
        onset = None
        if truth is not None and any(t != "normal" for t in truth) and truth[0] == "normal":
            onset = int(np.argmax(np.asarray(truth) != "normal"))
        base = scorer.score(features, bands=bands)
        for k, dur in ((k, d) for k in everies for d in durations):
            scores = scorer.score(features, bands=reused(bands, k))
            cell = acc.setdefault((k, dur, group, cond), {"machines": 0, "windows": 0, "p99": [], "p99.9": [],
                                                     "alarms_p99.9": 0, "delay_s": [], "dscore": []})
            cell["machines"] += 1
            cell["windows"] += len(scores) - (HISTORY - 1)
            cell["dscore"].append(np.abs(scores - base) / scorer.stats.threshold("p99.9"))
            for level in LEVELS:
                t = scorer.stats.threshold(level)
                spec = SmoothingSpec(enter=t, exit=EXIT_RATIO * t, history=HISTORY,
                                     min_windows=min_windows(dur))
                f = flags(scores, spec)
                cell[level].append(f[HISTORY - 1:])
                if level == "p99.9":
                    cell["alarms_p99.9"] += episodes(f[HISTORY - 1:])
                    if onset is not None:
                        after = np.flatnonzero(f[onset:])
                        # the window's end minus the fault's appearance: seconds until the flag
                        cell["delay_s"].append(float(after[0] * HOP / RATE + WINDOW / RATE) if len(after)
                                               else float("nan"))
    rows = []
    for (k, dur, group, cond), c in sorted(acc.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        rows.append({
            "envelope_every": k,
            "min_duration_s": dur,
            "set": group,
            "class": cond,
            "machines": c["machines"],
            "windows": c["windows"],
            "flagged_p99_pct": round(100 * float(np.mean(np.concatenate(c["p99"]))), 2),
            "flagged_p99.9_pct": round(100 * float(np.mean(np.concatenate(c["p99.9"]))), 2),
            "alarms_p99.9": c["alarms_p99.9"],
            "first_flag_after_fault_s": (round(float(np.nanmax(c["delay_s"])), 2) if c["delay_s"] else ""),
            "median_score_change_of_p99.9": round(float(np.median(np.concatenate(c["dscore"]))), 4),
        })
    return rows


def write(rows: list[dict[str, Any]], out: Path, command: str) -> None:
    """CSV, JSON, a markdown table and a PNG (share flagged per set and class, one bar per k)."""
    out.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0])
    with open(out / "envelope_reuse.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    (out / "envelope_reuse.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1))
    lines = ["# Envelope bands reused across a sensor's windows: what is flagged", "", f"`{command}`", "",
             "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    (out / "envelope_reuse.md").write_text("\n".join(lines) + "\n")
    _plot(rows, out / "envelope_reuse.png")


def _label(row: dict[str, Any]) -> str:
    return f"bands every {row['envelope_every']} window(s), flag lasting {row['min_duration_s']:g} s"


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    plot(rows, path, label=_label,
         title="Packaged simulator model, envelope bands per window vs reused across a sensor's "
               "overlapping windows (familiar should stay low, machine 2 and press-5 high)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("drsn_edge/assets/drsn_cw_sim.onnx"))
    ap.add_argument("--every", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--min-duration", type=float, nargs="+", default=[0.0, 1.0])
    ap.add_argument("--out", type=Path, default=Path("docs/results/novelty/daemon_cost"))
    args = ap.parse_args(argv)
    durations = " ".join(f"{d:g}" for d in args.min_duration)
    command = (f"python -m drsn_edge.study.envelope_reuse --model {args.model} --every "
               f"{' '.join(map(str, args.every))} --min-duration {durations} --out {args.out}")
    rows = measure(args.model, args.every, args.min_duration)
    write(rows, args.out, command)
    for r in rows:
        print(r["envelope_every"], r["min_duration_s"], r["set"], r["class"], r["windows"],
              r["flagged_p99_pct"], r["flagged_p99.9_pct"], r["alarms_p99.9"], r["first_flag_after_fault_s"])


if __name__ == "__main__":
    main()
