"""How often a packaged simulator model calls a familiar simulated machine `unfamiliar`, per class.

The question behind the daemon's novelty default: with novelty on, does a machine of the kind the
model was trained on stay familiar? The model runs through ONNX Runtime on the same windows the
daemon cuts (hop 512, per-window z-score), its own calibrated statistics score every window, and
the flag follows the daemon's smoothing (history 5, exit at 0.9 x the threshold, at least 3 windows
to enter, more when a minimum duration is asked for). Three sets of machines:

``demo``       the four known machines of ``drsn-edge demo`` (3 kHz resonance, faults stepping or
               growing), and its fifth, press-5, of another kind (its windows before the fault count
               as its healthy class)
``familiar``   machines drawn from the model's training ranges (1700-1800 rpm, severity 0.25-1.0,
               resonance 2040-3400 Hz as the simulated recordings draw it), ``MACHINES`` per class
``machine 2``  another bearing (6203), 1200 rpm, at the study's 4.5 kHz resonance and at the demo's
               fifth machine's 1.5 kHz (novel), one machine per condition
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.demo.scenario import UNSEEN_RESONANCE_HZ, default_scenario
from drsn_edge.study.novelty_sim import SECOND_GEOMETRY, SECOND_RESONANCE_HZ
from runtime.artifact import Normalization, read_onnx_metadata
from runtime.novelty.smoothing import SmoothingSpec, episodes, flags
from runtime.novelty.stats import scorer_of
from runtime.onnx_tools.ort_run import cpu_session, run_outputs
from runtime.signals.normalize import normalize_windows
from runtime.signals.simulator import BearingSimulator

RATE, WINDOW, HOP, CHUNK = 12000.0, 2048, 512, 1024
SECONDS = 20.0
MACHINES = 10
HISTORY, EXIT_RATIO, MIN_WINDOWS = 5, 0.9, 3


def min_windows(min_duration_s: float) -> int:
    """Windows a flag must persist, as the daemon resolves ``novelty.min_duration_s`` at hop 512."""
    return max(MIN_WINDOWS, math.ceil(min_duration_s / (HOP / RATE) - 1e-9))


def _windows(signal: np.ndarray) -> np.ndarray:
    n = (len(signal) - WINDOW) // HOP + 1
    idx = np.arange(WINDOW)[None, :] + HOP * np.arange(n)[:, None]
    return normalize_windows(signal[idx][:, None, :].astype(np.float32), Normalization(kind="zscore"))


def _truth(m: Any, n_windows: int) -> np.ndarray:
    """A demo machine's condition at the end of each window (its fault appears mid-run)."""
    ends = (np.arange(n_windows) * HOP + WINDOW) / RATE
    return np.array([m.truth_at(t, RATE)[0] for t in ends])


def machines(seed: int = 0) -> Iterator[tuple[str, str, str, np.ndarray, np.ndarray | None]]:
    """(set, machine, its fault class, signal, per-window truth or None: the class throughout)."""
    scenario = default_scenario(SECONDS * 2, seed=7)
    for i, m in enumerate(scenario.machines):
        sensor = m.sensor_config()
        sim = BearingSimulator("normal", 0.0, RATE, rpm=m.rpm, seed=scenario.seed + i,
                               geometry=sensor.geometry(), resonance_hz=sensor.resonance_hz)
        parts = []
        for start in range(0, int(scenario.duration_s * RATE), CHUNK):  # the source's chunks
            sim.condition, sim.severity = m.truth_at(start / RATE, RATE)
            parts.append(sim.generate(CHUNK))
        signal = np.concatenate(parts)
        group = "demo press-5 (unseen kind)" if m.novel else "demo"
        story = f"normal, then {m.fault}" if m.fault else "normal"  # whole run: the fault comes later
        yield group, m.sensor_id, story, signal, _truth(m, (len(signal) - WINDOW) // HOP + 1)
    rng = np.random.default_rng([seed, 11])
    for cond in ("normal", "ball", "inner_race", "outer_race"):
        for k in range(MACHINES):
            sev = 0.0 if cond == "normal" else float(rng.uniform(0.25, 1.0))
            sim = BearingSimulator(cond, sev, RATE, rpm=float(rng.uniform(1700, 1800)), seed=1000 + 37 * k,
                                   resonance_hz=float(rng.uniform(2040, 3400)))
            yield "familiar", f"{cond}#{k}", cond, sim.generate(int(SECONDS * RATE)), None
    for res in (SECOND_RESONANCE_HZ, UNSEEN_RESONANCE_HZ):
        for j, cond in enumerate(("normal", "ball", "inner_race", "outer_race")):
            sim = BearingSimulator(cond, 0.0 if cond == "normal" else 0.8, RATE, rpm=1200.0, seed=2000 + j,
                                   geometry=SECOND_GEOMETRY, resonance_hz=res)
            signal = sim.generate(int(SECONDS * RATE))
            yield f"machine 2, {res / 1000:g} kHz", f"m2-{cond}", cond, signal, None


def measure(model: str | Path, label: str, min_duration_s: float = 0.0) -> list[dict[str, Any]]:
    """One row per (set, class): windows, accuracy, share flagged and alarms at p99 and p99.9."""
    meta = read_onnx_metadata(model)
    scorer = scorer_of(meta, str(model))
    if scorer is None or meta.features_name is None:
        raise ValueError(f"{model} carries no novelty statistics; calibrate and export it first")
    session = cpu_session(model)
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for group, _name, cond, signal, truth in machines():
        x = _windows(signal)
        out = run_outputs(session, x)
        scores = scorer.score(out[meta.features_name], x)  # the inputs, read by the envelope score
        cell = acc.setdefault((group, cond), {"machines": 0, "windows": 0, "correct": 0,
                                              "p99": [], "p99.9": [], "alarms_p99.9": 0})
        cell["machines"] += 1
        cell["windows"] += len(scores) - (HISTORY - 1)
        picked = np.array(meta.classes)[out[meta.output_name].argmax(1)]
        cell["correct"] += int(np.sum(picked == (cond if truth is None else truth)))
        for level in ("p99", "p99.9"):
            t = scorer.stats.threshold(level)
            f = flags(scores, SmoothingSpec(enter=t, exit=EXIT_RATIO * t, history=HISTORY,
                                            min_windows=min_windows(min_duration_s)))[HISTORY - 1:]
            cell[level].append(f)
            if level == "p99.9":
                cell["alarms_p99.9"] += episodes(f)
    rows = []
    for (group, cond), c in acc.items():
        hours = c["windows"] * HOP / RATE / 3600.0
        rows.append({
            "model": label,
            "min_duration_s": min_duration_s,
            "set": group,
            "class": cond,
            "machines": c["machines"],
            "windows": c["windows"],
            "accuracy": round(c["correct"] / (c["windows"] + c["machines"] * (HISTORY - 1)), 3),
            "flagged_p99_pct": round(100 * float(np.mean(np.concatenate(c["p99"]))), 1),
            "flagged_p99.9_pct": round(100 * float(np.mean(np.concatenate(c["p99.9"]))), 1),
            "alarms_p99.9": c["alarms_p99.9"],
            "seconds": round(hours * 3600.0, 1),
        })
    return rows


TITLE = ("Packaged simulator model: familiar machines should stay low, unseen kinds high "
         "(smoothed as the daemon does)")


def _label(row: dict[str, Any]) -> str:
    return f"{row['model']}, min {row['min_duration_s']:g} s"


def plot(rows: list[dict[str, Any]], path: Path, label: Callable[[dict[str, Any]], str] = _label,
         title: str = TITLE) -> None:
    """Share flagged per class and set, one panel per threshold, one bar per `label` (a model, a setting).

    Shared by the studies that compare what each variant flags on the same sets, so their figures read alike.
    """
    from drsn_edge.training.plots import _pyplot

    plt = _pyplot()
    labels = list(dict.fromkeys(label(r) for r in rows))
    groups = list(dict.fromkeys((r["set"], r["class"]) for r in rows))
    fig, axes = plt.subplots(2, 1, figsize=(14, 9), dpi=110, sharex=True)
    x = np.arange(len(groups))
    width = 0.8 / len(labels)
    for ax, level in zip(axes, ("p99", "p99.9"), strict=True):
        for i, name in enumerate(labels):
            by = {(r["set"], r["class"]): r[f"flagged_{level}_pct"] for r in rows if label(r) == name}
            ax.bar(x + (i - (len(labels) - 1) / 2) * width, [by.get(g, np.nan) for g in groups], width,
                   label=name)
        ax.set_xticks(x, [f"{s}: {c}" for s, c in groups], fontsize=8, rotation=40, ha="right")
        ax.set_ylabel(f"windows flagged at {level}, %")
        ax.set_ylim(0, 105)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
