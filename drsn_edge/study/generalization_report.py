"""Tables (CSV + Markdown) and figures (PNG) of the generalisation study.

Spread is the sample standard deviation over seeds (n - 1), always printed beside the count of
runs behind it. The leave-one-load-out mean of a configuration is computed per seed over the four
test loads (only seeds with all four present), then averaged over seeds, so its spread is the
run-to-run spread of the whole protocol.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LOADS = (0, 1, 2, 3)
TEST_SPAN = 10  # seconds of each labelled recording scored after its labelled span


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    v = [float(x) for x in values]
    if not v:
        return float("nan"), float("nan"), 0
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else float("nan")), len(v)


def fmt(m: float, s: float, n: int, pct: bool = True) -> str:
    if n == 0:
        return "not run"
    k = 100.0 if pct else 1.0
    spread = "" if s != s else f" ± {k * s:.1f}"  # NaN: a single run has no spread
    return f"{k * m:.1f}{spread} (n={n})"


def _config(r: dict[str, Any]) -> tuple[str, bool]:
    return r["model"], bool(r["augment"])


def lolo_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, augmentation, AdaBN): accuracy per test load and the protocol mean."""
    by: dict[tuple[str, bool], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[_config(r)].append(r)
    out = []
    for (model, aug), rs in sorted(by.items()):
        for adabn in (False, True):
            col = "acc_adabn" if adabn else "acc"
            row: dict[str, Any] = {"model": model, "augment": aug, "adabn": adabn}
            for load in LOADS:
                m, s, n = mean_std(r[col] for r in rs if r["test_load"] == load)
                n_test = sorted({r["n_test"] for r in rs if r["test_load"] == load})
                row.update(
                    {
                        f"{load}hp_mean": m,
                        f"{load}hp_std": s,
                        f"{load}hp_n": n,
                        f"{load}hp_windows": n_test[0] if n_test else 0,
                    }
                )
            per_seed: dict[int, dict[int, float]] = defaultdict(dict)
            for r in rs:
                per_seed[r["seed"]][r["test_load"]] = r[col]
            complete = [statistics.fmean(v.values()) for v in per_seed.values() if len(v) == len(LOADS)]
            row["mean"], row["std"], row["n_seeds"] = mean_std(complete)
            row["seeds"] = sorted(s for s, v in per_seed.items() if len(v) == len(LOADS))
            out.append(row)
    return out


def recall_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-class recall (one test recording each) per (model, augmentation, AdaBN, test load)."""
    acc: dict[tuple[str, bool, bool, int, str], list[float]] = defaultdict(list)
    for r in rows:
        for adabn, key in ((False, "recall"), (True, "recall_adabn")):
            for cls, v in r[key].items():
                acc[(r["model"], bool(r["augment"]), adabn, int(r["test_load"]), cls)].append(v)
    out = []
    for (model, aug, adabn, load, cls), v in sorted(acc.items()):
        m, s, n = mean_std(v)
        out.append(
            {
                "model": model,
                "augment": aug,
                "adabn": adabn,
                "test_load": load,
                "class": cls,
                "recall_mean": m,
                "recall_std": s,
                "n": n,
            }
        )
    return out


def fewshot_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, seconds): accuracy on the same bearings later in time and on other bearings."""
    by: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[(r["method"], float(r["seconds"]))].append(r)
    out = []
    for (method, sec), rs in sorted(by.items()):
        m, s, n = mean_std(r["acc"] for r in rs)
        mo, so, _n = mean_std(r["acc_other"] for r in rs if "acc_other" in r)
        out.append(
            {
                "method": method,
                "seconds_per_class": sec,
                "acc_mean": m,
                "acc_std": s,
                "n_seeds": n,
                "other_mean": mo,
                "other_std": so,
                "test_windows": rs[0]["n_test"],
                "other_windows": rs[0].get("n_test_other", 0),
            }
        )
    return out


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        path.write_text("")
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in r.items()})


def lolo_markdown(table: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    head = "| model | noise aug. | AdaBN | test 0 HP | test 1 HP | test 2 HP | test 3 HP | mean over loads |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for t in table:
        cells = [fmt(t[f"{x}hp_mean"], t[f"{x}hp_std"], t[f"{x}hp_n"]) for x in LOADS]
        mean = fmt(t["mean"], t["std"], t["n_seeds"])
        lines.append(
            f"| {t['model']} | {'yes' if t['augment'] else 'no'} | {'yes' if t['adabn'] else 'no'} | "
            + " | ".join(cells)
            + f" | **{mean}** |"
        )
    counts = []
    for load in LOADS:
        rs = [r for r in rows if r["test_load"] == load]
        if rs:
            r = rs[0]
            counts.append(
                f"{load} HP: {r['n_test']} scored windows from {r['n_test_recordings']} recordings "
                f"({len(r['test_classes'])} classes), {r['n_adapt']} AdaBN windows, "
                f"{r['n_train']} training / {r['n_val']} validation windows"
            )
    return (
        "\n".join(lines) + "\n\nAccuracy in %, mean ± sample std over seeds (n = runs; the mean over loads "
        "is taken per seed over the four loads, n = seeds with all four).\n\n"
        + "\n".join(f"- {c}" for c in counts)
        + "\n"
    )


def lolo_paired(rows: list[dict[str, Any]], reference: str = "drsn_cw_paper") -> str:
    """``reference`` (clean training, no AdaBN) minus every other network, paired by (seed, test load).

    A seed and a held-out load fix the data a pair saw, so the paired difference separates the
    networks from the fold-to-fold spread that dominates the per-model means.
    """
    acc = {
        (r["model"], int(r["seed"]), int(r["test_load"])): float(r["acc"]) for r in rows if not r["augment"]
    }
    lines = []
    for other in sorted({m for m, _, _ in acc} - {reference}):
        pairs = [(seed, load) for m, seed, load in acc if m == reference and (other, seed, load) in acc]
        if not pairs:
            continue
        m, sd, n = mean_std(acc[(reference, seed, load)] - acc[(other, seed, load)] for seed, load in pairs)
        spread = "" if sd != sd else f" ± {100 * sd:.1f}"
        lines.append(
            f"- {reference} minus {other} (clean training, no AdaBN): {100 * m:+.1f}{spread} points "
            f"over {n} (seed, test load) pairs"
        )
    return "\n".join(lines) + ("\n" if lines else "")


def recall_markdown(recalls: list[dict[str, Any]], model: str, augment: bool) -> str:
    sel = [r for r in recalls if r["model"] == model and r["augment"] == augment]
    classes = list(dict.fromkeys(r["class"] for r in sel))
    lines = [
        f"Per-class recall of {model} ({'noise-augmented' if augment else 'clean'} training), %, mean "
        "over seeds; each cell is one test recording.",
        "",
        "| test load | AdaBN | " + " | ".join(classes) + " |",
        "|---|---|" + "---|" * len(classes),
    ]
    for load in LOADS:
        for adabn in (False, True):
            cells = {r["class"]: r for r in sel if r["test_load"] == load and r["adabn"] == adabn}
            if not cells:
                continue
            vals = [f"{100 * cells[c]['recall_mean']:.1f}" if c in cells else "-" for c in classes]
            lines.append(f"| {load} HP | {'yes' if adabn else 'no'} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def fewshot_paired(rows: list[dict[str, Any]]) -> str:
    """Full fine-tune against the other methods, paired by seed (same labelled bearings), and per seed.

    Seeds draw the bearings, and the draw moves every method together (a weak fault is hard for
    all), so the paired difference says more than two means with overlapping spreads.
    """
    acc = {(r["method"], float(r["seconds"]), int(r["seed"])): float(r["acc"]) for r in rows}
    names = {"scratch": "from scratch", "head": "the new head"}
    lines = []
    for sec in sorted({k[1] for k in acc if k[0] == "finetune"}):
        seeds = sorted(k[2] for k in acc if k[0] == "finetune" and k[1] == sec)
        per_seed = ", ".join(f"{100 * acc[('finetune', sec, s)]:.1f}" for s in seeds)
        parts = [f"full fine-tune per seed ({', '.join(map(str, seeds))}): {per_seed} %"]
        for other, label in names.items():
            both = [s for s in seeds if (other, sec, s) in acc]
            if both:
                m, sd, n = mean_std(acc[("finetune", sec, s)] - acc[(other, sec, s)] for s in both)
                spread = "" if sd != sd else f" ± {100 * sd:.1f}"
                parts.append(f"minus {label} {100 * m:+.1f}{spread} points (n={n} seeds)")
        lines.append(f"- {sec:g} s / class: " + "; ".join(parts))
    return "\n".join(lines) + ("\n" if lines else "")


def fewshot_markdown(table: list[dict[str, Any]]) -> str:
    secs = sorted({t["seconds_per_class"] for t in table})
    methods = [m for m in ("scratch", "head", "finetune") if any(t["method"] == m for t in table)]
    names = {"scratch": "from scratch", "head": "new head, frozen backbone", "finetune": "full fine-tune"}
    lines = [
        "| method | test | " + " | ".join(f"{s:g} s / class" for s in secs) + " |",
        "|---|---|" + "---|" * len(secs),
    ]
    for m in methods:
        for label, key in (("same bearings, later", "acc"), ("other bearings", "other")):
            cells = []
            for s in secs:
                t = next((t for t in table if t["method"] == m and t["seconds_per_class"] == s), None)
                cells.append(fmt(t[f"{key}_mean"], t[f"{key}_std"], t["n_seeds"]) if t else "not run")
            lines.append(f"| {names[m]} | {label} | " + " | ".join(cells) + " |")
    n = table[0]["test_windows"] if table else 0
    n_other = table[0]["other_windows"] if table else 0
    return "\n".join(lines) + (
        f"\n\nAccuracy in %, mean ± sample std over seeds (n = seeds). Same bearings: {n} windows from "
        f"the {TEST_SPAN} s after the labelled span (one window gap); other bearings: {n_other} windows "
        "from three other simulated bearings per class.\n"
    )


def lolo_plot(table: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / max(len(table), 1)
    # one hue per network (dark: clean training, light: noise augmentation), hatched with AdaBN:
    # sixteen configurations stay distinguishable where the default colour cycle repeats after ten
    models = list(dict.fromkeys(t["model"] for t in table))
    palette = plt.get_cmap("tab20")
    for i, t in enumerate(table):
        colour = palette((2 * models.index(t["model"]) + (1 if t["augment"] else 0)) % 20)
        xs = np.arange(len(LOADS) + 1) + i * width
        ms = [t[f"{x}hp_mean"] for x in LOADS] + [t["mean"]]
        ss = [t[f"{x}hp_std"] for x in LOADS] + [t["std"]]
        label = f"{t['model']}{' +aug' if t['augment'] else ''}{' +AdaBN' if t['adabn'] else ''}"
        ax.bar(
            xs,
            [100 * m for m in ms],
            width,
            yerr=[100 * (s if s == s else 0) for s in ss],
            label=label,
            capsize=2,
            color=colour,
            hatch="///" if t["adabn"] else None,
            edgecolor="white" if t["adabn"] else None,
        )
    ax.set_xticks(np.arange(len(LOADS) + 1) + 0.4 - width / 2)
    ax.set_xticklabels([f"test {x} HP" for x in LOADS] + ["mean"])
    ax.set_ylabel("accuracy on the held-out load (%)")
    lows = [100 * t[k] for t in table for k in t if k.endswith("_mean") or k == "mean"]
    ax.set_ylim(max(0.0, min((v for v in lows if v == v), default=50.0) - 5), 101)
    ax.set_title(
        "CWRU leave-one-load-out (train on the other three loads); bars: mean, whiskers: std over seeds"
    )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fewshot_plot(table: list[dict[str, Any]], path: Path, parent: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = {"scratch": "from scratch", "head": "new head, frozen backbone", "finetune": "full fine-tune"}
    colors = {"scratch": "tab:gray", "head": "tab:blue", "finetune": "tab:green"}
    for method in ("scratch", "head", "finetune"):
        ts = [t for t in table if t["method"] == method]
        if not ts:
            continue
        xs = [t["seconds_per_class"] for t in ts]
        for key, style in (("acc", "-"), ("other", ":")):
            ax.errorbar(
                xs,
                [100 * t[f"{key}_mean"] for t in ts],
                yerr=[100 * (t[f"{key}_std"] if t[f"{key}_std"] == t[f"{key}_std"] else 0) for t in ts],
                marker="o",
                capsize=3,
                linestyle=style,
                color=colors[method],
                label=f"{names[method]} ({'same bearings' if key == 'acc' else 'other bearings'})",
            )
    ax.set_xscale("log")
    ax.set_xlabel("labelled signal per class (s)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(
        f"Simulated second machine: few-shot, parent {parent}" if parent else "Simulated second machine"
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
