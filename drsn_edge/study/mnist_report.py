"""Table, figure and generated page of the MNIST reference experiment.

``<stem>.csv`` (mean ± std per model), ``<stem>_runs.csv`` (one row per model and seed),
``<stem>.md`` (settings, both tables, the paired difference) and ``<stem>.png`` (test accuracy
per seed and validation accuracy per epoch).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.study.thresholds import write_csv
from drsn_edge.training.metrics import seed_std

RUN_COLUMNS = (
    "model",
    "seed",
    "accuracy",
    "macro_f1",
    "n_train",
    "n_val",
    "n_test",
    "best_epoch",
    "parameters",
    "seconds",
)


_OPTIMIZERS = {"adam": "Adam (constant rate, L2 penalty)", "adamw": "AdamW (cosine schedule)"}

def write_mnist_report(
    rows: list[dict[str, Any]], data_summary: dict[str, Any], study: Any, wall_s: float
) -> dict[str, Path]:
    from drsn_edge.study.mnist import summarise

    out = study.out_dir
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(rows)
    runs = [{k: r.get(k) for k in RUN_COLUMNS} for r in sorted(rows, key=lambda r: (r["model"], r["seed"]))]
    paths = {
        "csv": write_csv(summary, out / f"{study.stem}.csv"),
        "runs_csv": write_csv(runs, out / f"{study.stem}_runs.csv"),
        "png": plot_mnist(rows, out / f"{study.stem}.png"),
    }
    paths["md"] = out / f"{study.stem}.md"
    paths["md"].write_text(page(summary, runs, rows, data_summary, study, wall_s))
    paths["json"] = out / f"{study.stem}.json"
    paths["json"].write_text(
        json.dumps(
            {
                "summary": summary,
                "runs": runs,
                "data": data_summary.get("split"),
                "command": study.command,
                "wall_s": wall_s,
            },
            indent=1,
            default=str,
        )
    )
    return paths


def paired_difference(rows: list[dict[str, Any]], a: str, b: str) -> dict[str, float] | None:
    """Accuracy of ``a`` minus ``b`` per shared seed: mean, std and how many seeds ``a`` wins."""
    acc = {(r["model"], int(r["seed"])): float(r["accuracy"]) for r in rows}
    seeds = sorted({s for m, s in acc if m == a} & {s for m, s in acc if m == b})
    if not seeds:
        return None
    diff = np.array([acc[(a, s)] - acc[(b, s)] for s in seeds])
    return {
        "mean": float(diff.mean()),
        "std": seed_std(diff),
        "wins": int((diff > 0).sum()),
        "seeds": len(seeds),
    }


def page(
    summary: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    data_summary: dict[str, Any],
    study: Any,
    wall_s: float,
) -> str:
    lines = [
        "# MNIST reference experiment (generated)\n",
        f"Command: `{study.command}`  ",
        f"Generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}.\n",
        f"- data: {data_summary.get('split', {}).get('rule', data_summary.get('rule', 'MNIST'))}; "
        f"train {runs[0]['n_train']}, validation {runs[0]['n_val']}, test n = {runs[0]['n_test']}; "
        f"noise x/255 + 0.5*U(0,1), drawn once (seed {study.split_seed})"
        if runs
        else "- no runs",
        f"- training: {study.epochs} epochs, batch {study.batch_size}, "
        f"{_OPTIMIZERS[study.optimizer]} lr {study.lr:g}, weight decay {study.weight_decay:g}, "
        f"best epoch on validation; seeds {list(study.seeds)}",
        f"- runtime: {sum(r['seconds'] for r in runs) / 60:.1f} min of run time "
        f"({np.mean([r['seconds'] for r in runs]):.1f} s per run) on {study.threads} torch thread(s); "
        f"this invocation {wall_s / 60:.1f} min\n"
        if runs
        else "",
        "| model | parameters | seeds | test accuracy (%) | macro-F1 (%) | min | max |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        lines.append(
            f"| {s['model']} | {s['parameters']} | {s['seeds']} | {100 * s['accuracy']:.2f} ± "
            f"{100 * s['accuracy_std']:.2f} | {100 * s['macro_f1']:.2f} ± {100 * s['macro_f1_std']:.2f} | "
            f"{100 * s['min']:.2f} | {100 * s['max']:.2f} |"
        )
    models = [s["model"] for s in summary]
    if len(models) >= 2:
        diff = paired_difference(rows, models[0], models[1])
        if diff:
            lines.append(
                f"\n{models[0]} - {models[1]}, paired by seed: {100 * diff['mean']:+.2f} ± "
                f"{100 * diff['std']:.2f} points; {models[0]} better on {diff['wins']} of "
                f"{diff['seeds']} seeds."
            )
    lines += [
        f"\n![MNIST]({study.stem}.png)\n",
        "Per run:\n",
        "| model | seed | accuracy (%) | best epoch | seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['model']} | {r['seed']} | {100 * r['accuracy']:.2f} | {r['best_epoch']} | {r['seconds']:.1f} |"
        for r in runs
    ]
    return "\n".join(lines) + "\n"


def plot_mnist(rows: list[dict[str, Any]], path: Path) -> Path:
    """Left: test accuracy per seed (dots) and mean ± std; right: mean validation accuracy per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=120)
    for i, model in enumerate(models):
        acc = np.array([100 * r["accuracy"] for r in rows if r["model"] == model])
        a1.scatter(np.full(len(acc), i) + np.linspace(-0.12, 0.12, len(acc)), acc, s=14, alpha=0.7)
        a1.errorbar([i], [acc.mean()], yerr=[seed_std(acc)], fmt="_", color="black", ms=22, capsize=6)
        curves = np.array([r["val_acc"] for r in rows if r["model"] == model], dtype=float)
        a2.plot(np.arange(1, curves.shape[1] + 1), 100 * curves.mean(0), marker="o", ms=3, label=model)
    a1.set_xticks(range(len(models)), models)
    a1.set_xlim(-0.6, len(models) - 0.4)
    a1.set_ylabel("test accuracy (%)")
    a1.set_title("noisy MNIST, test set (per seed, mean ± std)", fontsize=9)
    a1.grid(alpha=0.3, axis="y")
    a2.set_xlabel("epoch")
    a2.set_ylabel("validation accuracy (%)")
    a2.set_title("mean over seeds", fontsize=9)
    a2.grid(alpha=0.3)
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
