"""Novelty scores from logits and features; every score is "higher means less familiar".

``max_softmax`` and ``energy`` need only the logits and are the baselines the feature scores are
measured against (``drsn-edge study novelty``): on recordings from another rig the packaged models
stay 99% confident while wrong, so a confidence threshold cannot see them. ``mahalanobis`` is the
distance to the nearest class mean under a shared covariance (Lee et al. 2018);
``relative_mahalanobis`` subtracts the distance to one Gaussian of all training features (Ren et
al. 2021), which cancels directions in which everything, familiar or not, varies.
``sqrt_mahalanobis`` is the same nearest-class distance on the signed square root of every feature:
pooled post-ReLU features are non-negative and right-skewed, a class is far from Gaussian in them,
and the root makes it closer to one, so a shared covariance describes every class better. On the
novelty study's cached models it ranks held-out classes and another machine higher than the plain
distance and flags fewer familiar windows (docs/novelty.md, "Which score").
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from runtime.novelty.covariance import whitening_matrix

FeatureScore = Literal["mahalanobis", "relative_mahalanobis", "sqrt_mahalanobis"]
FEATURE_SCORES: tuple[FeatureScore, ...] = ("mahalanobis", "relative_mahalanobis", "sqrt_mahalanobis")
#: what `drsn-edge calibrate` and the end of training fit unless told otherwise
DEFAULT_SCORE: FeatureScore = "sqrt_mahalanobis"


def transform(features: np.ndarray, score: str) -> np.ndarray:
    """The feature space a score measures in: the signed square root for ``sqrt_mahalanobis``.

    Signed, so that a network whose pooled features can be negative keeps their order and sign.
    """
    f = np.asarray(features, dtype=np.float64)
    if score == "sqrt_mahalanobis":
        out: np.ndarray = np.sign(f) * np.sqrt(np.abs(f))
        return out
    return f


def max_softmax(logits: np.ndarray) -> np.ndarray:
    """``1 - max softmax probability`` per window (Hendrycks and Gimpel 2017)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    out: np.ndarray = 1.0 - p.max(axis=1) / p.sum(axis=1)
    return out


def energy(logits: np.ndarray) -> np.ndarray:
    """Free energy ``-logsumexp(logits)`` per window (Liu et al. 2020)."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=1)
    out: np.ndarray = -(top + np.log(np.exp(z - top[:, None]).sum(axis=1)))
    return out


def squared_distances(features: np.ndarray, means: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of every row of ``features`` to every row of ``means``: (N, K)."""
    return Mahalanobis(means, chol).squared(features)


class Mahalanobis:
    """Distances to fixed means under one covariance, with the whitening done once at construction."""

    def __init__(self, means: np.ndarray, chol: np.ndarray) -> None:
        self.w = whitening_matrix(chol)
        self.wm = np.asarray(means, dtype=np.float64) @ self.w.T  # (K, F) whitened means
        self.wm_sq = (self.wm * self.wm).sum(axis=1)

    def squared(self, features: np.ndarray) -> np.ndarray:
        """(N, K) squared distances of the rows of ``features`` (N, F)."""
        wf = np.asarray(features, dtype=np.float64) @ self.w.T
        d2 = (wf * wf).sum(axis=1)[:, None] - 2.0 * wf @ self.wm.T + self.wm_sq[None, :]
        out: np.ndarray = np.maximum(d2, 0.0)
        return out
