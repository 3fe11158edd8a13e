"""Novelty: does a window look like anything the model was trained on, or like this machine's normal?

numpy only (it runs on the device). :mod:`.covariance` has the Ledoit-Wolf estimator and the
stable factorisation, :mod:`.scores` the scores, :mod:`.stats` the class statistics stored in the
model metadata, :mod:`.baseline` a machine's own learned normal.
"""

from __future__ import annotations

from runtime.novelty.baseline import Baseline, BaselineFileError, BaselineLearner, baseline_path
from runtime.novelty.covariance import MomentAccumulator, SingularCovarianceError, ledoit_wolf
from runtime.novelty.scores import energy, max_softmax
from runtime.novelty.stats import (
    NoveltyScorer,
    NoveltyStats,
    NoveltyStatsError,
    calibrate,
    fit_novelty,
)

__all__ = [
    "Baseline",
    "BaselineFileError",
    "BaselineLearner",
    "MomentAccumulator",
    "NoveltyScorer",
    "NoveltyStats",
    "NoveltyStatsError",
    "SingularCovarianceError",
    "baseline_path",
    "calibrate",
    "energy",
    "fit_novelty",
    "ledoit_wolf",
    "max_softmax",
]
