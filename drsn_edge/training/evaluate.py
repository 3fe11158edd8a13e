"""Scoring a checkpoint on the split it never saw, and writing the report people read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from drsn_edge.training.metrics import Evaluation, evaluate_predictions
from drsn_edge.training.plots import plot_confusion
from drsn_edge.training.trainer import predict_logits


def evaluate_model(model: nn.Module, x: np.ndarray, y: np.ndarray, classes: list[str]) -> Evaluation:
    logits = predict_logits(model, x)
    return evaluate_predictions(y, logits.argmax(1), classes)


def write_evaluation(
    ev: Evaluation,
    out_dir: str | Path,
    title: str = "",
    extra: dict[str, Any] | None = None,
    stem: str = "test",
) -> dict[str, Path]:
    """Write ``<stem>_report.txt``, ``<stem>_metrics.json`` and ``<stem>_confusion.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": out / f"{stem}_report.txt",
        "metrics": out / f"{stem}_metrics.json",
        "confusion": out / f"{stem}_confusion.png",
    }
    paths["report"].write_text((title + "\n\n" if title else "") + ev.text_report() + "\n")
    paths["metrics"].write_text(json.dumps({**ev.to_dict(), **(extra or {})}, indent=1))
    plot_confusion(
        ev.confusion,
        ev.classes,
        paths["confusion"],
        title=f"{title}  acc {ev.accuracy:.4f}, macro-F1 {ev.macro_f1:.4f}".strip(),
    )
    return paths
