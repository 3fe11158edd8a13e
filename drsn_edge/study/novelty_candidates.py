"""Scores the study measures beside the ones a device runs, to show which one is worth shipping.

The issue asks for the nearest-class Mahalanobis distance "unless another measures better: show
it". These are the other candidates, fitted on a model's training windows and standardised by its
validation windows where two scores are combined; they run on the host only (numpy), and one that
won would move into :mod:`runtime.novelty.scores`:

``knn``              distance to the k-th nearest training window on L2-normalised features (Sun et
                     al. 2022, deep nearest neighbours), k = 10
``class_covariance`` nearest class under its own Ledoit-Wolf covariance instead of a shared one
``features_logits``  Mahalanobis on the features and logits side by side
``maha_plus_logit``  standardised Mahalanobis plus standardised negative max-logit
``max_maha_softmax`` the larger of standardised Mahalanobis and standardised (1 - max-softmax)
``sqrt_envelope``    the device's ``sqrt_envelope_mahalanobis`` (:mod:`runtime.novelty.stats`): the
                     root features whitened jointly with 4 log band energies of the rectified
                     window's spectrum up to Nyquist/4, which no training shaped; on device since
                     it won here (docs/novelty.md, "Which score")
``sqrt_hilbert``     the same with the Hilbert envelope (three FFTs per window instead of one)
``joint_spectrum``   the same with 32 log band energies of the window's power spectrum instead
                     (:mod:`drsn_edge.study.novelty_signal`): a recording's fingerprint, which
                     ranks every held-out class perfectly and flags familiar classes at another load
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from drsn_edge.novelty.features import Outputs
from drsn_edge.study.novelty_signal import envelope_bands, spectrum_bands
from runtime.novelty import NoveltyScorer, fit_novelty, ledoit_wolf, max_softmax
from runtime.novelty.scores import transform

CANDIDATES: tuple[str, ...] = (
    "knn",
    "class_covariance",
    "features_logits",
    "maha_plus_logit",
    "max_maha_softmax",
    "sqrt_envelope",
    "sqrt_hilbert",
    "joint_spectrum",
)
KNN_K = 10

Score = Callable[[Outputs], np.ndarray]


def _nearest_class(x: np.ndarray, means: np.ndarray, precisions: list[np.ndarray]) -> np.ndarray:
    d2 = np.stack(
        [np.einsum("nf,fg,ng->n", x - m, p, x - m) for m, p in zip(means, precisions, strict=True)], axis=1
    )
    out: np.ndarray = np.sqrt(np.maximum(d2, 0.0).min(axis=1))
    return out


def _shared(x: np.ndarray, y: np.ndarray, k: int) -> Callable[[np.ndarray], np.ndarray]:
    means = np.stack([x[y == c].mean(axis=0) for c in range(k)])
    precision = np.linalg.inv(ledoit_wolf(x - means[y], assume_centered=True).covariance)
    return lambda z: _nearest_class(z, means, [precision] * k)


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return out


def _standardised(score: Score, val: Outputs) -> Score:
    v = score(val)
    mean, std = float(v.mean()), float(v.std()) + 1e-12
    return lambda o: (score(o) - mean) / std


def _windows(o: Outputs) -> np.ndarray:
    if o.windows is None:
        raise ValueError("a signal candidate needs Outputs with their windows (model_outputs keeps them)")
    return o.windows


def fit_candidates(train: Outputs, labels: np.ndarray, n_classes: int, val: Outputs) -> dict[str, Score]:
    """Every candidate's score function, fitted on ``train`` (standardised on ``val`` where combined)."""
    y = np.asarray(labels).astype(np.int64)
    f, logits = train.features, train.logits
    bank = _unit(f)
    means = np.stack([f[y == c].mean(axis=0) for c in range(n_classes)])
    own = [np.linalg.inv(ledoit_wolf(f[y == c]).covariance) for c in range(n_classes)]
    shared = _shared(f, y, n_classes)
    joint = _shared(np.hstack([f, logits]), y, n_classes)

    def knn(o: Outputs) -> np.ndarray:
        sim = _unit(o.features) @ bank.T
        kth: np.ndarray = 1.0 - np.sort(sim, axis=1)[:, -KNN_K]
        return kth

    envelope = NoveltyScorer(
        fit_novelty(f, y, [str(c) for c in range(n_classes)], "sqrt_envelope_mahalanobis", _windows(train))
    )
    spectrum = _shared(
        np.hstack([transform(f, "sqrt_mahalanobis"), spectrum_bands(_windows(train))]), y, n_classes
    )
    hilbert = _shared(
        np.hstack([transform(f, "sqrt_mahalanobis"), envelope_bands(_windows(train), 4)]), y, n_classes
    )
    maha = _standardised(lambda o: shared(o.features), val)
    logit = _standardised(lambda o: -o.logits.max(axis=1), val)
    softmax = _standardised(lambda o: max_softmax(o.logits), val)
    return {
        "knn": knn,
        "class_covariance": lambda o: _nearest_class(o.features, means, own),
        "features_logits": lambda o: joint(np.hstack([o.features, o.logits])),
        "maha_plus_logit": lambda o: maha(o) + logit(o),
        "max_maha_softmax": lambda o: np.maximum(maha(o), softmax(o)),
        "sqrt_envelope": lambda o: envelope.score(o.features, _windows(o)),
        "sqrt_hilbert": lambda o: hilbert(
            np.hstack([transform(o.features, "sqrt_mahalanobis"), envelope_bands(_windows(o), 4)])
        ),
        "joint_spectrum": lambda o: spectrum(
            np.hstack([transform(o.features, "sqrt_mahalanobis"), spectrum_bands(_windows(o))])
        ),
    }
