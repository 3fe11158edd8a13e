"""Fit and calibrate a model's novelty statistics on its own training data, and store them.

Used at the end of `drsn-edge train` and by `drsn-edge calibrate CHECKPOINT` for checkpoints
trained before novelty existed. The class means and shared covariance come from the training
windows' features, the p99 / p99.9 thresholds from the validation windows (never the test
windows, which stay for measuring); the share of test windows above p99 is reported as the check
that the thresholds mean what they say.

A simulator-trained model saw a handful of simulated machines per class (8 for the packaged one),
and validation windows cut from the *same* machines set thresholds that fit those machines only:
a familiar fault on a machine between them (the demo's 3 kHz resonance) scored above p99 most of
the time. ``machines=N`` fits the statistics on N fresh simulated machines per class drawn from
the model's training ranges instead, and takes the thresholds from whole machines held out of the
fit, which is what a new machine of the same kind looks like.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drsn_edge.novelty.features import model_outputs
from runtime.errors import ConfigError, DataError
from runtime.novelty import NoveltyScorer, NoveltyStats, calibrate, fit_novelty
from runtime.novelty.scores import DEFAULT_SCORE, FeatureScore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    """Fitted statistics and the figures that show they work."""

    stats: NoveltyStats
    n_train: int
    n_val: int
    n_test: int
    test_flagged_p99: float
    test_flagged_p999: float
    data: str = "training data"

    def summary(self) -> str:
        t = self.stats.thresholds
        return (
            f"novelty ({self.stats.score}, {self.stats.feature_dim} features, shrinkage "
            f"{self.stats.shrinkage:.3f}, {self.data}): fitted on {self.n_train} windows, thresholds from "
            f"{self.n_val} validation windows p99 {t['p99']:.3f} / p99.9 {t['p99.9']:.3f}; "
            f"test windows above p99: {100 * self.test_flagged_p99:.2f}% and above p99.9: "
            f"{100 * self.test_flagged_p999:.2f}% of {self.n_test}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.stats.score,
            "data": self.data,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_test": self.n_test,
            "thresholds": self.stats.thresholds,
            "test_flagged_p99": self.test_flagged_p99,
            "test_flagged_p999": self.test_flagged_p999,
        }


def fit_model_novelty(model: torch.nn.Module, data: Any, score: FeatureScore = DEFAULT_SCORE) -> Calibration:
    """Fit on ``data.train``, set thresholds on ``data.val``, check on ``data.test`` (normalised windows)."""
    if not callable(getattr(model, "forward_features", None)):
        raise ConfigError(
            f"{type(model).__name__} has no forward_features; novelty needs the pooled features"
        )
    train = model_outputs(model, data.train.x)
    stats = calibrate(
        fit_novelty(train.features, data.train.y, list(data.classes), score=score, windows=data.train.x),
        model_outputs(model, data.val.x).features,
        data.val.x,  # read only by a score of the windows too (sqrt_envelope_mahalanobis)
    )
    test = model_outputs(model, data.test.x) if len(data.test.x) else None
    scores = NoveltyScorer(stats).score(test.features, data.test.x) if test is not None else np.zeros(0)
    return Calibration(
        stats=stats,
        n_train=len(train),
        n_val=stats.n_calibration,
        n_test=len(scores),
        test_flagged_p99=float(np.mean(scores > stats.thresholds["p99"])) if len(scores) else float("nan"),
        test_flagged_p999=float(np.mean(scores > stats.thresholds["p99.9"])) if len(scores) else float("nan"),
    )


def calibrate_checkpoint(
    path: str | Path,
    *,
    data_dir: str | None = None,
    out: str | Path | None = None,
    score: FeatureScore = DEFAULT_SCORE,
    machines: int | None = None,
) -> Calibration:
    """Rebuild the checkpoint's data from its recorded spec, fit, and write the statistics into it.

    ``data_dir`` replaces the recorded data path (the data lives elsewhere on this host); ``out``
    writes a new checkpoint instead of updating ``path`` in place; ``machines`` (simulator models
    only) fits on that many fresh simulated machines per class, thresholds from held-out ones.
    """
    from drsn_edge.training.checkpoint import load_checkpoint, save_checkpoint
    from drsn_edge.training.datasource import DataSpec
    from drsn_edge.training.pipeline import prepare

    ckpt = load_checkpoint(path)
    raw = ckpt.metadata.training.get("data_spec")
    if not raw:
        raise ConfigError(
            f"{path} records no data spec, so its training windows cannot be rebuilt; retrain it with "
            "`drsn-edge train` (which calibrates at the end)"
        )
    spec = DataSpec.from_dict(raw)
    if data_dir is not None:
        spec.path = data_dir
    what = "training data"
    if machines is not None:
        spec, what = _fresh_machines(spec, machines, path), f"{machines} fresh simulated machines per class"
    data, _ = prepare(spec)
    if list(data.classes) != list(ckpt.metadata.classes):
        raise DataError(
            f"the rebuilt data has classes {list(data.classes)} but {path} was trained on "
            f"{ckpt.metadata.classes}; point --data at the data it was trained on"
        )
    result = replace(fit_model_novelty(ckpt.build_model(), data, score), data=what)
    store(ckpt, result)
    save_checkpoint(out or path, ckpt)
    log.info("%s", result.summary())
    return result


#: seconds of each fresh machine; share of machines per class in fit / thresholds / check
MACHINE_SECONDS = 3.0
MACHINE_FRACTIONS = (0.6, 0.2, 0.2)
#: fewer held-out machines per class than this give thresholds of a couple of machines only
MIN_MACHINES = 10


def _fresh_machines(spec: Any, machines: int, path: str | Path) -> Any:
    """The checkpoint's simulator spec with ``machines`` new machines per class, split by machine."""
    if spec.source != "synthetic":
        raise ConfigError(
            f"--machines draws fresh simulated machines, but {path} was trained on {spec.source} data; "
            "drop --machines (its statistics come from its own training data)"
        )
    if machines < MIN_MACHINES:
        raise ConfigError(
            f"--machines {machines} leaves too few held-out machines per class for a threshold; "
            f"use at least {MIN_MACHINES} (48 calibrates the packaged simulator model)"
        )
    return dataclasses.replace(
        spec,
        synthetic_per_class=machines,
        synthetic_seconds=MACHINE_SECONDS,
        split="recording",
        fractions=MACHINE_FRACTIONS,
        seed=spec.seed + 1,  # other machines than the ones the network was trained on
    )


def store(ckpt: Any, result: Calibration) -> None:
    """Put the statistics into the checkpoint's metadata (the export step carries them on)."""
    training = {**ckpt.metadata.training, "novelty_calibration": result.as_dict()}
    ckpt.metadata = ckpt.metadata.model_copy(update={"novelty": result.stats.to_dict(), "training": training})


def calibrate_trained(
    ckpt: Any, model: torch.nn.Module, data: Any, score: FeatureScore = DEFAULT_SCORE
) -> Calibration | None:
    """The end-of-training hook: fit and store the statistics, or warn and leave novelty off.

    Training has already succeeded when this runs, so a dataset that cannot be calibrated (a class
    without validation windows, too few windows) costs the novelty score, not the model.
    """
    from runtime.errors import DrsnEdgeError

    try:
        result = fit_model_novelty(model, data, score)
    except DrsnEdgeError as exc:
        log.warning("novelty statistics not fitted (%s); the model works without them, novelty off", exc)
        return None
    store(ckpt, result)
    print(result.summary())
    return result
