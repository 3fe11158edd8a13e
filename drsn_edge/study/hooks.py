"""The ``after`` hooks the noise study passes to :func:`drsn_edge.training.sweep.run_sweep`.

``run_sweep`` owns the loop (resuming, training, checkpoint selection on validation, scoring on
test); a hook receives the best model, the prepared splits and the checkpoint path, and returns
extra columns for the run's row. Two hooks cover the two noise protocols:

* :class:`TrainTestHook` (noise in train and test, the paper's protocol): split sizes, the FP16
  accuracy of the models named for it, and per-block threshold statistics;
* :class:`TestOnlyHook` (trained clean, tested noisy): the clean model is scored at every noise
  point of the grid, so one training run per (model, seed) serves the whole grid.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.models import shrinkage_layers
from drsn_edge.study.fp16_score import Fp16Model, export_fp16
from drsn_edge.study.thresholds import block_stats

log = logging.getLogger(__name__)


def _checkpoint_info(best_path: Path) -> tuple[str, dict[str, Any]]:
    """(model name, data spec dict) of a checkpoint, as the trainer stored them."""
    from drsn_edge.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(best_path)
    return ckpt.model_name, dict(ckpt.metadata.training.get("data_spec", {}))


def _split_sizes(data: Any) -> dict[str, int]:
    return {"n_train": len(data.train.y), "n_val": len(data.val.y)}


def _score_point(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    classes: list[str],
    fp16: Fp16Model | str | None,
    thresholds: bool,
) -> dict[str, Any]:
    """Accuracy, macro-F1, optional FP16 accuracy and threshold statistics on one test set."""
    from drsn_edge.training.metrics import evaluate_predictions

    pred = _predict(model, x)
    ev = evaluate_predictions(y, pred, classes)
    out: dict[str, Any] = {"accuracy": ev.accuracy, "macro_f1": ev.macro_f1, "n_test": ev.n}
    out.update(_fp16_columns(fp16, x, y, pred))
    if thresholds:
        out["thresholds"] = block_stats(model, x)
    return out


def _fp16_columns(
    fp16: Fp16Model | str | None, x: np.ndarray, y: np.ndarray, pred: np.ndarray
) -> dict[str, Any]:
    if fp16 is None:
        return {}
    if isinstance(fp16, str):
        return {"fp16_error": fp16}
    return fp16.score(x, y, reference_pred=pred)


def fp16_columns(model: Any, best_path: Path, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Export ``best_path`` to FP16 ONNX and score it on ``(x, y)`` against ``model``'s predictions."""
    return _fp16_columns(export_fp16(best_path), x, y, _predict(model, x))


class TrainTestHook:
    """Extra columns for a run trained and tested on noisy data."""

    def __init__(self, fp16_models: Sequence[str] = ("drsn_cw_paper",), thresholds: bool = True) -> None:
        self.fp16_models = set(fp16_models)
        self.thresholds = thresholds

    def __call__(self, model: Any, data: Any, best_path: Path) -> dict[str, Any]:
        name, _spec = _checkpoint_info(best_path)
        row: dict[str, Any] = {**_split_sizes(data)}
        if name in self.fp16_models:
            row.update(fp16_columns(model, best_path, data.test.x, data.test.y))
        if self.thresholds and shrinkage_layers(model):
            row["thresholds"] = block_stats(model, data.test.x)
        return row


class TestOnlyHook:
    """Score a clean-trained model on the clean test span and at every (noise kind, SNR)."""

    def __init__(
        self,
        kinds: Sequence[str],
        snrs: Sequence[float],
        fp16_models: Sequence[str] = ("drsn_cw_paper",),
        thresholds: bool = True,
    ) -> None:
        self.kinds = list(kinds)
        self.snrs = [float(s) for s in snrs]
        self.fp16_models = set(fp16_models)
        self.thresholds = thresholds

    def __call__(self, model: Any, data: Any, best_path: Path) -> dict[str, Any]:
        from drsn_edge.training.datasource import DataSpec
        from drsn_edge.training.pipeline import prepare

        name, spec_dict = _checkpoint_info(best_path)
        fp16 = export_fp16(best_path) if name in self.fp16_models else None
        classes = list(data.classes)
        with_thresholds = self.thresholds and bool(shrinkage_layers(model))
        clean, _ = prepare(DataSpec.from_dict({**spec_dict, "noise": None}))
        row: dict[str, Any] = {
            **_split_sizes(data),
            "clean": _score_point(model, clean.test.x, clean.test.y, classes, fp16, with_thresholds),
        }
        points = []
        for kind in self.kinds:
            for snr in self.snrs:
                spec = DataSpec.from_dict(
                    {**spec_dict, "noise": f"{kind}:{snr:g}", "noise_protocol": "test_only"}
                )
                noisy, _ = prepare(spec)
                points.append(
                    {
                        "noise": kind,
                        "snr_db": snr,
                        **_score_point(model, noisy.test.x, noisy.test.y, classes, fp16, with_thresholds),
                    }
                )
        row["test_only"] = points
        return row


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    from drsn_edge.training.trainer import predict_logits

    return np.asarray(predict_logits(model, x).argmax(1))
