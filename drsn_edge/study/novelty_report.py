"""Tables (CSV and Markdown) and figures of the novelty study, and the goals it prints.

Every figure is a mean over seeds with the standard deviation beside it and the counts it rests
on, so a rate of 1.00 on 40 windows is not mistaken for one on 4,000.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.study.novelty import CWRU_CLASSES, SHIFT_LOADS
from drsn_edge.study.novelty_metrics import ALL_SCORES, METHODS

LABELS = {
    "max_softmax": "max-softmax",
    "energy": "energy",
    "mahalanobis": "Mahalanobis",
    "relative_mahalanobis": "relative Mahalanobis",
    "sqrt_mahalanobis": "Mahalanobis on sqrt features",
    "knn": "kNN (k=10, L2-normalised)",
    "class_covariance": "Mahalanobis, per-class covariance",
    "features_logits": "Mahalanobis on features + logits",
    "maha_plus_logit": "Mahalanobis + max-logit (standardised)",
    "max_maha_softmax": "max(Mahalanobis, max-softmax) (standardised)",
    "sqrt_envelope": "Mahalanobis on sqrt features + 4 envelope bands (rectified)",
    "sqrt_hilbert": "Mahalanobis on sqrt features + 4 envelope bands (Hilbert)",
    "joint_spectrum": "Mahalanobis on sqrt features + 32 spectrum bands",
}
#: candidates the device runs under another name (runtime.novelty.scores)
ON_DEVICE_AS = {"sqrt_envelope": "sqrt_envelope_mahalanobis"}


def _stat(values: Sequence[float | None]) -> tuple[float, float, int]:
    v = [float(x) for x in values if x is not None and not math.isnan(float(x))]
    if not v:
        return float("nan"), float("nan"), 0
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)


def _fmt(values: Sequence[float | None], scale: float = 1.0, digits: int = 3) -> str:
    mean, std, n = _stat(values)
    if n == 0:
        return "-"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def _of(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("kind") == kind]


def _getter(method: str, key: str) -> Callable[[dict[str, Any]], float]:
    def get(row: dict[str, Any]) -> float:
        return float(row[method][key])

    return get


def _per_seed(sel: list[dict[str, Any]], f: Callable[[dict[str, Any]], float], pooled: bool) -> list[float]:
    """One value per run, or (``pooled``) the mean over classes of each seed: spread over seeds."""
    if not pooled:
        return [f(r) for r in sel]
    seeds = sorted({r["seed"] for r in sel})
    return [float(np.mean([f(r) for r in sel if r["seed"] == s])) for s in seeds]


def loco_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per held-out class: AUROC and detection at p99 of every method over seeds."""
    loco = _of(rows, "loco")
    out = []
    for cls in [*CWRU_CLASSES, "mean"]:
        sel = loco if cls == "mean" else [r for r in loco if r["held_out"] == cls]
        if not sel:
            continue

        def per_seed(
            f: Callable[[dict[str, Any]], float],
            sel: list[dict[str, Any]] = sel,
            pooled: bool = cls == "mean",
        ) -> list[float]:
            return _per_seed(sel, f, pooled)

        row: dict[str, Any] = {
            "held_out": cls,
            "runs": len(sel),
            "n_novel": int(np.mean([r["n_novel"] for r in sel])),
            "n_familiar": int(np.mean([r["n_familiar"] for r in sel])),
            "accuracy_9": _fmt(per_seed(lambda r: r["accuracy"])),
        }
        for m in METHODS:
            row[f"auroc_{m}"] = _fmt(per_seed(_getter(m, "auroc")))
            row[f"detected_{m}"] = _fmt(per_seed(_getter(m, "detected")))
        out.append(row)
    return out


def load_shift_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Familiar 0 HP test windows and the nine fault classes at 1-3 HP: share flagged, per score."""
    cw = _of(rows, "cwru")
    sets: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = [
        ("0 HP test (familiar)", cw, [r["familiar"] for r in cw])
    ]
    sets += [
        (
            f"{hp} HP, 9 fault classes",
            [r["load_shift"][str(hp)] for r in cw],
            [r["load_shift"][str(hp)] for r in cw],
        )
        for hp in SHIFT_LOADS
    ]
    out = []
    for name, base, per in sets:
        if not base:
            continue
        n = base[0]["n_test"] if "n_test" in base[0] else base[0]["n"]
        for m in METHODS:
            out.append(
                {
                    "set": name,
                    "n": n,
                    "accuracy": _fmt([b["accuracy"] for b in base]),
                    "score": LABELS[m],
                    "flagged_p99": _fmt([x[m]["flagged"] for x in per]),
                    "flagged_p99_smoothed": _fmt([x[m]["flagged_smoothed"] for x in per]),
                    "flagged_p99.9_smoothed": _fmt([x[m].get("flagged_smoothed_p999") for x in per]),
                }
            )
    return out


def machine_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """AUROC of every score against windows of another machine, and the model's accuracy there."""
    out = []
    sim = _of(rows, "sim")
    if sim:
        out.append(
            {
                "model": "simulator (machine 1)",
                "novel": "machine 2, all conditions",
                "runs": len(sim),
                "n_novel": sim[0]["n_second"],
                "accuracy_on_novel": _fmt([r["second_accuracy"] for r in sim]),
                **{m: _fmt([r["second_machine"][m]["auroc"] for r in sim]) for m in METHODS},
            }
        )
        if all("auroc_wrong" in r["second_machine"]["mahalanobis"] for r in sim):
            out.append(
                {
                    "model": "simulator (machine 1)",
                    "novel": "machine 2, windows the model gets wrong",
                    "runs": len(sim),
                    "n_novel": int(np.mean([r["n_second_wrong"] for r in sim])),
                    "accuracy_on_novel": "0 (by selection)",
                    **{m: _fmt([r["second_machine"][m]["auroc_wrong"] for r in sim]) for m in METHODS},
                }
            )
        for cond in ("normal", "inner_race", "outer_race", "ball"):
            acc = [r.get("second_accuracy_per_condition", {}).get(cond) for r in sim]
            out.append(
                {
                    "model": "simulator (machine 1)",
                    "novel": f"machine 2, {cond} only",
                    "runs": len(sim),
                    "n_novel": sim[0]["n_second"] // 4,
                    "accuracy_on_novel": _fmt(acc),
                    **{
                        m: _fmt([r["second_machine"][m]["per_condition"][cond] for r in sim]) for m in METHODS
                    },
                }
            )
    cw = _of(rows, "cwru")
    if cw:
        out.append(
            {
                "model": "CWRU 0 HP",
                "novel": "simulated machine 2, all conditions",
                "runs": len(cw),
                "n_novel": cw[0]["simulator"]["n"],
                "accuracy_on_novel": "",
                **{m: _fmt([r["simulator"][m]["auroc"] for r in cw]) for m in METHODS},
            }
        )
    return out


def candidates_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every score the study measured against the three goals it is chosen by, best LOCO mean first.

    A score counts only if it also keeps the other two goals: the second machine and the familiar
    windows. ``paired_vs_mahalanobis`` is the mean over seeds of each seed's LOCO mean minus the
    plain distance's on the same models (the spread of that difference is the honest error bar).
    """
    loco, cw = _of(rows, "loco"), _of(rows, "cwru")
    out = []
    present = [m for m in ALL_SCORES if loco and m in loco[0] and cw and m in cw[0]["simulator"]]
    for m in present:
        seeds = _per_seed(loco, _getter(m, "auroc"), True)
        base = _per_seed(loco, _getter("mahalanobis", "auroc"), True)
        worst = min(CWRU_CLASSES, key=lambda c: _mean([r[m]["auroc"] for r in loco if r["held_out"] == c]))
        worst_auroc = [r[m]["auroc"] for r in loco if r["held_out"] == worst]
        out.append(
            {
                "score": LABELS[m],
                "on_device": "yes" if m in METHODS or m in ON_DEVICE_AS else "no (study only)",
                "loco_auroc": _fmt(seeds),
                "paired_vs_mahalanobis": _fmt([a - b for a, b in zip(seeds, base, strict=True)]),
                "worst_class": f"{worst} {_fmt(worst_auroc, digits=2)}",
                "loco_detected_p99": _fmt(_per_seed(loco, _getter(m, "detected"), True), 100, 1),
                "second_machine_auroc": _fmt([r["simulator"][m]["auroc"] for r in cw]),
                "familiar_flagged_p99_smoothed_pct": _fmt(
                    [r["familiar"][m]["flagged_smoothed"] for r in cw], 100, 2
                ),
                **{
                    f"load_shift_{hp}hp_flagged_smoothed_pct": _fmt(
                        [_shifted(r, hp, m) for r in cw], 100, 1
                    )
                    for hp in SHIFT_LOADS
                },
            }
        )
    return sorted(out, key=lambda r: -float(r["loco_auroc"].split(" ")[0]))


def _shifted(row: dict[str, Any], hp: int, m: str) -> float | None:
    """Share of a CWRU row's windows at ``hp`` flagged after smoothing, None in rows without it."""
    value = row.get("load_shift", {}).get(str(hp), {}).get(m, {}).get("flagged_smoothed")
    return None if value is None else float(value)


def baseline_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """False alarms per hour of healthy running and delay to a later fault, baseline vs training data."""
    sim = _of(rows, "sim")
    out: list[dict[str, Any]] = []
    if not sim:
        return out
    for mode in ("learned_across_speeds", "learned_at_one_speed"):
        runs = [r["baseline"][mode] for r in sim]
        for key in ("baseline@p99", "baseline@p99.9", "training_data@p99"):
            res = [x[key] for x in runs]
            delays = [x["delay_s"] for x in res]
            out.append(
                {
                    "learning": mode.replace("_", " "),
                    "score": key,
                    "runs": len(res),
                    "healthy_hours": round(sum(x["healthy_hours"] for x in runs), 2),
                    "healthy_flagged": _fmt([x["healthy_flagged"] for x in res]),
                    "false_alarms": sum(x["false_alarms"] for x in res),
                    "false_alarms_per_hour": _fmt([x["false_alarms_per_hour"] for x in res], digits=1),
                    "fault_detected": _fmt([x["fault_detected"] for x in res]),
                    "delay_s": _fmt(delays, digits=2)
                    if all(d is not None for d in delays)
                    else f"{sum(d is None for d in delays)} of {len(delays)} missed",
                }
            )
    return out


def _write(rows: list[dict[str, Any]], out: Path, stem: str, title: str, note: str = "") -> None:
    if not rows:
        return
    cols = list(rows[0])
    with open(out / f"{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    lines = [
        f"# {title}",
        "",
        *([note, ""] if note else []),
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")


def write_report(rows: list[dict[str, Any]], out: Path, *, command: str, epochs: int) -> None:
    """All tables and figures into ``out``; rows.json keeps every number behind them."""
    out.mkdir(parents=True, exist_ok=True)
    note = f"mean ± std over seeds; `{command}` ({epochs} epochs per run)"
    _write(loco_table(rows), out, "loco", "Leave one class out (CWRU 0 HP): AUROC and detection at p99", note)
    _write(load_shift_table(rows), out, "load_shift", "Share of windows flagged at p99, 0 HP model", note)
    _write(machine_table(rows), out, "second_machine", "AUROC against windows of another machine", note)
    counts = (
        "30 leave-one-class-out runs (37-85 held-out, 713-761 familiar test windows each), 3 CWRU models "
        "(798 familiar test windows, 932 simulated windows each); " + note
    )
    _write(candidates_table(rows), out, "candidates", "Every score measured, by the goals", counts)
    _write(
        baseline_table(rows), out, "baseline", "Per-machine baseline vs training-data score (simulator)", note
    )
    (out / "rows.json").write_text(json.dumps(rows, indent=1))
    from drsn_edge.study.novelty_plots import plot_all

    plot_all(rows, out)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's goals, measured: LOCO AUROC, second-machine AUROC, smoothed familiar flags.

    "Second machine" is the CWRU model meeting the simulated machine (another bearing, speed and
    resonance: a machine it never saw); the simulator-trained model meeting a second simulated
    machine is reported beside it.
    """
    loco, sim, cw = _of(rows, "loco"), _of(rows, "sim"), _of(rows, "cwru")
    result: dict[str, Any] = {}
    for m in METHODS:
        result[m] = {
            "loco_auroc": _mean([r[m]["auroc"] for r in loco]),
            "loco_detected_p99": _mean([r[m]["detected"] for r in loco]),
            "second_machine_auroc": _mean([r["simulator"][m]["auroc"] for r in cw]),
            "sim_to_sim_auroc": _mean([r["second_machine"][m]["auroc"] for r in sim]),
            "familiar_flagged_smoothed": _mean([r["familiar"][m]["flagged_smoothed"] for r in cw]),
            "familiar_flagged_smoothed_p999": _mean(
                [r["familiar"][m].get("flagged_smoothed_p999", float("nan")) for r in cw]
            ),
        }
    result["runs"] = {"loco": len(loco), "sim": len(sim), "cwru": len(cw)}
    return result


def goals_text(rows: list[dict[str, Any]]) -> str:
    g = goals(rows)
    lines = [f"novelty study goals (runs: {g['runs']})"]
    for m in METHODS:
        x = g[m]
        lines.append(
            f"  {LABELS[m]:21s} LOCO AUROC {x['loco_auroc']:.3f} (goal >= 0.95), detected at p99 "
            f"{100 * x['loco_detected_p99']:.1f}% | CWRU model vs simulated machine AUROC "
            f"{x['second_machine_auroc']:.3f} (goal >= 0.99; simulator-trained model vs machine 2: "
            f"{x['sim_to_sim_auroc']:.3f}) | familiar windows flagged after smoothing: p99 "
            f"{100 * x['familiar_flagged_smoothed']:.2f}% (goal <= 1%), p99.9 "
            f"{100 * x['familiar_flagged_smoothed_p999']:.2f}%"
        )
    return "\n".join(lines)
