"""Classification metrics in plain numpy: accuracy, macro-F1, per-class report, confusion matrix.

Kept free of scikit-learn so that evaluation runs wherever the models run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ClassReport:
    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Evaluation:
    """Everything `drsn-edge evaluate` reports, JSON-serialisable through :meth:`to_dict`."""

    accuracy: float
    macro_f1: float
    per_class: list[ClassReport]
    confusion: np.ndarray
    classes: list[str]
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "n": self.n,
            "classes": self.classes,
            "per_class": [vars(c) for c in self.per_class],
            "confusion": self.confusion.tolist(),
        }

    def text_report(self) -> str:
        """A fixed-width report like the ones people paste into issues and papers."""
        width = max(12, *(len(c) for c in self.classes))
        lines = [f"{'class':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
        for c in self.per_class:
            lines.append(f"{c.name:<{width}} {c.precision:9.4f} {c.recall:9.4f} {c.f1:9.4f} {c.support:8d}")
        lines.append("")
        lines.append(f"{'accuracy':<{width}} {self.accuracy:9.4f}   (n = {self.n})")
        lines.append(f"{'macro-F1':<{width}} {self.macro_f1:9.4f}")
        lines.append("")
        lines.append("confusion matrix (rows: true, columns: predicted)")
        head = " ".join(f"{i:>6d}" for i in range(len(self.classes)))
        lines.append(f"{'':<{width}} {head}")
        for i, name in enumerate(self.classes):
            row = " ".join(f"{v:>6d}" for v in self.confusion[i])
            lines.append(f"{i:>2d} {name:<{width - 3}} {row}")
        return "\n".join(lines)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def evaluate_predictions(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> Evaluation:
    """Score predictions; classes absent from both truth and prediction get F1 0 and are still listed."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    cm = confusion_matrix(y_true, y_pred, len(classes))
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    actual = cm.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = actual > 0
    per_class = [
        ClassReport(name, float(precision[i]), float(recall[i]), float(f1[i]), int(actual[i]))
        for i, name in enumerate(classes)
    ]
    return Evaluation(
        accuracy=float(tp.sum() / max(len(y_true), 1)),
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        per_class=per_class,
        confusion=cm,
        classes=list(classes),
        n=len(y_true),
    )


def seed_std(values: Sequence[float] | np.ndarray) -> float:
    """Sample standard deviation (n - 1) of results over seeds; 0 for a single seed.

    Studies report mean ± std over a handful of seeds; with three seeds the population formula
    would understate the spread by a fifth, so every table uses this one.
    """
    vals = np.asarray(values, dtype=np.float64)
    return float(vals.std(ddof=1)) if vals.size > 1 else 0.0
