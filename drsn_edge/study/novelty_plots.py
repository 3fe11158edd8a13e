"""PNG figures of the novelty study: per-class AUROC, load shift, second machine, baseline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.study.novelty import CWRU_CLASSES, SHIFT_LOADS
from drsn_edge.study.novelty_metrics import METHODS
from drsn_edge.training.plots import _pyplot

LABELS = {
    "max_softmax": "max-softmax",
    "energy": "energy",
    "mahalanobis": "Mahalanobis",
    "relative_mahalanobis": "relative Mahalanobis",
    "sqrt_mahalanobis": "Mahalanobis on sqrt features",
}


def _bars(ax: Any, groups: list[str], series: dict[str, tuple[list[float], list[float]]]) -> None:
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for i, (name, (mean, std)) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, mean, width, yerr=std, capsize=2, label=name)
    ax.set_xticks(x, groups, rotation=30, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def _ms(values: list[float]) -> tuple[float, float]:
    v = [x for x in values if x is not None and not np.isnan(x)]
    return (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0) if v else (np.nan, 0.0)


def _series(groups: list[str], get: Any) -> dict[str, tuple[list[float], list[float]]]:
    out = {}
    for m in METHODS:
        stats = [_ms(get(g, m)) for g in groups]
        out[LABELS[m]] = ([s[0] for s in stats], [s[1] for s in stats])
    return out


def plot_candidates(rows: list[dict[str, Any]], out: Path) -> None:
    """One bar per score on each goal: LOCO AUROC, second-machine AUROC, familiar windows flagged."""
    from drsn_edge.study.novelty_metrics import ALL_SCORES
    from drsn_edge.study.novelty_report import LABELS as ALL_LABELS
    from drsn_edge.study.novelty_report import ON_DEVICE_AS, _shifted

    loco = [r for r in rows if r.get("kind") == "loco"]
    cw = [r for r in rows if r.get("kind") == "cwru"]
    scores = [m for m in ALL_SCORES if loco and m in loco[0] and cw and m in cw[0]["simulator"]]
    if not scores:
        return
    seeds = sorted({r["seed"] for r in loco})
    panels: tuple[tuple[str, float, Callable[[str], list[float]]], ...] = (
        ("LOCO AUROC, mean of 10 classes (goal ≥ 0.95)", 0.95,
         lambda m: [float(np.mean([r[m]["auroc"] for r in loco if r["seed"] == s])) for s in seeds]),
        ("CWRU model vs simulated machine, AUROC (goal ≥ 0.99)", 0.99,
         lambda m: [r["simulator"][m]["auroc"] for r in cw]),
        ("familiar windows flagged at p99, smoothed, % (goal ≤ 1)", 1.0,
         lambda m: [100 * r["familiar"][m]["flagged_smoothed"] for r in cw]),
        ("familiar classes at 2 HP, flagged % (p99, smoothed)", 100.0,
         lambda m: [100 * v for r in cw if (v := _shifted(r, 2, m)) is not None]),
    )
    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(19, 5.2), dpi=110)
    y = np.arange(len(scores))
    for ax, (title, goal, get) in zip(axes, panels, strict=True):
        stats = [_ms(get(m)) for m in scores]
        colors = ["tab:blue" if m in METHODS or m in ON_DEVICE_AS else "tab:gray" for m in scores]
        ax.barh(y, [s[0] for s in stats], xerr=[s[1] for s in stats], color=colors, capsize=2)
        if goal <= 1.0:  # the last panel has no goal, only a comparison
            ax.axvline(goal, color="k", lw=0.8, ls="--")
        ax.set_title(title, fontsize=9)
        ax.set_yticks(y, [ALL_LABELS[m] for m in scores] if ax is axes[0] else [], fontsize=8)
        ax.invert_yaxis()
        if goal < 1:
            ax.set_xlim(0.5, 1.005)
        elif goal > 1:
            ax.set_xlim(0.0, 100.0)
        else:
            ax.set_xlim(left=0.0)
    fig.suptitle(
        f"Novelty scores on the study's models (blue: runs on the device; {len(seeds)} seeds, mean ± std)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out / "candidates.png")
    plt.close(fig)


def plot_all(rows: list[dict[str, Any]], out: Path) -> None:
    plot_candidates(rows, out)
    plt = _pyplot()
    loco = [r for r in rows if r.get("kind") == "loco"]
    if loco:
        classes = [c for c in CWRU_CLASSES if any(r["held_out"] == c for r in loco)]
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), dpi=110)
        for ax, key, title in (
            (axes[0], "auroc", "AUROC (held-out class vs familiar test windows)"),
            (axes[1], "detected", "held-out windows flagged at p99"),
        ):
            _bars(
                ax,
                classes,
                _series(classes, lambda c, m, k=key: [r[m][k] for r in loco if r["held_out"] == c]),
            )
            ax.set_title(title, fontsize=10)
            ax.set_ylim(0, 1.05)
        axes[0].axhline(0.95, color="k", lw=0.8, ls="--")
        axes[0].legend(fontsize=8, loc="lower left")
        fig.suptitle(f"Leave one class out, CWRU 0 HP ({len(loco)} runs; mean ± std over seeds)", fontsize=11)
        fig.tight_layout()
        fig.savefig(out / "loco.png")
        plt.close(fig)
    cw = [r for r in rows if r.get("kind") == "cwru"]
    if cw:
        sets = ["0 HP test", *[f"{hp} HP faults" for hp in SHIFT_LOADS]]

        def flagged(s: str, m: str) -> list[float]:
            if s == "0 HP test":
                return [r["familiar"][m]["flagged_smoothed"] for r in cw]
            return [r["load_shift"][s.split()[0]][m]["flagged_smoothed"] for r in cw]

        fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
        _bars(ax, sets, _series(sets, flagged))
        ax.set_ylabel("share flagged at p99 (smoothed, 5 windows)")
        ax.set_title(f"Familiar classes at other loads ({len(cw)} seeds)", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "load_shift.png")
        plt.close(fig)
    sim = [r for r in rows if r.get("kind") == "sim"]
    if sim:
        conds = ["normal", "inner_race", "outer_race", "ball"]
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), dpi=110)
        _bars(
            axes[0],
            conds,
            _series(conds, lambda c, m: [r["second_machine"][m]["per_condition"][c] for r in sim]),
        )
        axes[0].set_title("AUROC, simulated machine 2 vs machine 1 test windows", fontsize=10)
        axes[0].set_ylim(0, 1.05)
        axes[0].legend(fontsize=8, loc="lower left")
        modes = ["learned_across_speeds", "learned_at_one_speed"]
        keys = ["baseline@p99", "baseline@p99.9", "training_data@p99"]
        x = np.arange(len(modes))
        for i, key in enumerate(keys):
            mean = [_ms([r["baseline"][mo][key]["false_alarms_per_hour"] for r in sim])[0] for mo in modes]
            axes[1].bar(x + (i - 1) * 0.27, mean, 0.27, label=key)
        axes[1].set_xticks(x, [m.replace("_", " ") for m in modes])
        axes[1].set_yscale("symlog")
        axes[1].set_ylabel("false alarms per hour of healthy running")
        axes[1].set_title("Machine 2 running healthy at 1100-1300 rpm", fontsize=10)
        axes[1].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "second_machine_baseline.png")
        plt.close(fig)
