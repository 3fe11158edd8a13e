"""PNG figures people look at: confusion matrices, training curves, accuracy against SNR."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix with counts written in each cell."""
    plt = _pyplot()
    n = len(classes)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.55 * n), dpi=120)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if frac[i, j] > 0.5 else "black",
                )
    ax.set_title(title or "confusion matrix", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_history(history: list[dict[str, float]], path: str | Path) -> Path:
    """Loss and accuracy per epoch, train against validation."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=120)
    a1.plot(epochs, [h["train_loss"] for h in history], label="train")
    a1.plot(epochs, [h["val_loss"] for h in history], label="validation")
    a1.set_xlabel("epoch")
    a1.set_ylabel("cross-entropy")
    a1.legend()
    a2.plot(epochs, [h["train_acc"] for h in history], label="train")
    a2.plot(epochs, [h["val_acc"] for h in history], label="validation")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a2.set_ylim(0, 1.02)
    a2.legend()
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_accuracy_vs_snr(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """One panel per noise type; one line per model; error bars are the std over seeds when present."""
    plt = _pyplot()
    kinds = sorted({r["noise"] for r in rows})
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.6), dpi=120, squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        for model in sorted({r["model"] for r in rows if r["noise"] == kind}):
            pts = sorted(
                (r for r in rows if r["noise"] == kind and r["model"] == model), key=lambda r: r["snr_db"]
            )
            ax.errorbar(
                [p["snr_db"] for p in pts],
                [p["accuracy"] for p in pts],
                yerr=[p.get("accuracy_std", 0.0) for p in pts],
                marker="o",
                ms=3,
                capsize=2,
                label=model,
            )
        ax.set_title(kind)
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
