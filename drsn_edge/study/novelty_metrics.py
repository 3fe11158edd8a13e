"""The measures of the novelty study: every score of a trained model on the sets it is judged on.

For one model the study fits the class statistics on the training windows' features, takes each
score's p99 threshold on the validation windows, and then asks of every other set how its scores
compare: AUROC against the familiar test windows (how well the score *ranks* novel above
familiar, threshold-free) and the share of windows above p99 (what a deployment with that
threshold would flag), raw and after the daemon's smoothing over a window history.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

from drsn_edge.novelty.features import Outputs
from drsn_edge.study.novelty_candidates import CANDIDATES, fit_candidates
from runtime.novelty import NoveltyScorer, calibrate, energy, fit_novelty, max_softmax
from runtime.novelty.scores import FEATURE_SCORES, FeatureScore
from runtime.novelty.smoothing import SmoothingSpec, flags

#: the scores a device can run (runtime.novelty), in every table and figure
METHODS: tuple[str, ...] = (
    "max_softmax",
    "energy",
    "mahalanobis",
    "relative_mahalanobis",
    "sqrt_mahalanobis",
)
#: every score a row carries: the device's and the host-only candidates (novelty_candidates)
ALL_SCORES: tuple[str, ...] = METHODS + CANDIDATES
#: windows of history the smoothed measures average over (the fault state's default)
HISTORY = 5


def auroc(familiar: np.ndarray, novel: np.ndarray) -> float:
    """Probability that a novel window scores above a familiar one (ties count half)."""
    if len(familiar) == 0 or len(novel) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([familiar, novel]))
    n_f, n_n = len(familiar), len(novel)
    return float((ranks[n_f:].sum() - n_n * (n_n + 1) / 2) / (n_f * n_n))


def _on_features(scorer: NoveltyScorer) -> Callable[[Outputs], np.ndarray]:
    def score(outputs: Outputs) -> np.ndarray:
        return scorer.score(outputs.features)

    return score


class Scorers:
    """Every method's score function and its p99 threshold, fitted on one model's outputs."""

    def __init__(self, train: Outputs, train_labels: np.ndarray, classes: list[str], val: Outputs) -> None:
        self.score_fns: dict[str, Callable[[Outputs], np.ndarray]] = {
            "max_softmax": lambda o: max_softmax(o.logits),
            "energy": lambda o: energy(o.logits),
        }
        kind: FeatureScore
        for kind in FEATURE_SCORES:
            stats = calibrate(fit_novelty(train.features, train_labels, classes, score=kind), val.features)
            self.score_fns[kind] = _on_features(NoveltyScorer(stats))
        self.score_fns.update(fit_candidates(train, train_labels, len(classes), val))
        val_scores = {m: self.score_fns[m](val) for m in ALL_SCORES}
        self.thresholds = {m: float(np.percentile(v, 99.0)) for m, v in val_scores.items()}
        self.thresholds_p999 = {m: float(np.percentile(v, 99.9)) for m, v in val_scores.items()}

    def scores(self, outputs: Outputs) -> dict[str, np.ndarray]:
        return {m: self.score_fns[m](outputs) for m in ALL_SCORES}

    def threshold(self, method: str, level: str = "p99") -> float:
        return self.thresholds[method] if level == "p99" else self.thresholds_p999[method]

    def flagged(self, method: str, scores: np.ndarray, level: str = "p99") -> float:
        """Share of windows above the method's p99 (or p99.9) threshold."""
        return float(np.mean(scores > self.threshold(method, level))) if len(scores) else float("nan")

    def flagged_smoothed(
        self, method: str, scores: np.ndarray, groups: np.ndarray, level: str = "p99"
    ) -> float:
        """Share flagged after smoothing each group's windows (one sensor's stream, in time order).

        The first ``HISTORY - 1`` windows of a group fill the history and are not counted.
        """
        t = self.threshold(method, level)
        spec = SmoothingSpec(enter=t, exit=t, history=HISTORY)
        out = [flags(scores[groups == g], spec)[HISTORY - 1 :] for g in np.unique(groups)]
        return float(np.mean(np.concatenate(out))) if out else float("nan")
