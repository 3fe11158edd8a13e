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
``sqrt_envelope_mahalanobis`` whitens those root features jointly with four log band energies of
the window's (rectified) envelope spectrum (:func:`envelope_bands`), which no training shaped: a network
trained without one ball fault never had to separate it from the other ball faults, the envelope
of the raw window does. It needs the model's input windows beside the features.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Literal

import numpy as np

from runtime.errors import DataError
from runtime.novelty.covariance import whitening_matrix

FeatureScore = Literal["mahalanobis", "relative_mahalanobis", "sqrt_mahalanobis", "sqrt_envelope_mahalanobis"]
#: scores of the features alone
FEATURE_SCORES: tuple[FeatureScore, ...] = ("mahalanobis", "relative_mahalanobis", "sqrt_mahalanobis")
#: scores that also need the model's input windows (``windows=`` of the scorer)
WINDOW_SCORES: tuple[FeatureScore, ...] = ("sqrt_envelope_mahalanobis",)
NOVELTY_SCORES: tuple[FeatureScore, ...] = FEATURE_SCORES + WINDOW_SCORES
#: scores measured on the signed square root of the features (:func:`transform`)
ROOT_SCORES: tuple[FeatureScore, ...] = ("sqrt_mahalanobis", "sqrt_envelope_mahalanobis")
#: the float dtypes the daemon's fast paths take as they are (others go the checked way)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: envelope-spectrum bands of ``sqrt_envelope_mahalanobis``, equally wide from 0 to a quarter of Nyquist
ENVELOPE_BANDS = 4
#: what `drsn-edge calibrate` and the end of training fit unless told otherwise: the only score that
#: met the leave-one-class-out goal (docs/novelty.md, "The window's envelope beside the features")
DEFAULT_SCORE: FeatureScore = "sqrt_envelope_mahalanobis"
#: the best score of the features alone: what :func:`runtime.novelty.stats.fit_novelty` fits when
#: it is given no windows, and what a caller without the model's input windows can use
DEFAULT_FEATURE_SCORE: FeatureScore = "sqrt_mahalanobis"


def transform(features: np.ndarray, score: str) -> np.ndarray:
    """The feature space a score measures in: the signed square root for ``sqrt_mahalanobis``.

    Signed, so that a network whose pooled features can be negative keeps their order and sign.
    """
    f = np.asarray(features, dtype=np.float64)
    if score in ROOT_SCORES:
        out: np.ndarray = np.sign(f) * np.sqrt(np.abs(f))
        return out
    return f


def envelope_bands(windows: np.ndarray, n_bands: int = ENVELOPE_BANDS) -> np.ndarray:
    """(N, n_bands) log mean power of each window's envelope spectrum in equal bands up to Nyquist/4.

    ``windows`` (N, W) or (N, 1, W) are the model's input (z-scored per window, so the bands are
    the envelope's shape, not the sensor's gain). The envelope is the rectified window ``|x|``:
    the low part of its spectrum is 2/π times the spectrum of the analytic signal's magnitude
    wherever the resonance that carries the impacts lies above fs/8 (1.5 kHz at 12 kHz),
    and it costs one real FFT per window where the Hilbert envelope costs three (the study
    measured both: 0.983 against 0.990 leave-one-class-out, docs/novelty.md). The FFT is
    scipy's on float32, the model input's own type, with no float64 copy of the batch: on 32 x
    2048 it measured 0.13-0.15 ms against 0.17 ms for numpy's float64 real FFT and 0.8-0.9 ms
    for numpy's float32 one (the three-times-slower path an earlier version avoided by copying to
    float64). It runs on one thread (``workers`` unset): the daemon's other threads own the
    other cores. The bands differ from a float64 FFT by about 1e-7 in the log
    (tests/novelty/test_envelope_score.py), far below the spread of the windows' scores; the
    power of equal bands is summed in float32 (one dot product per band, within 2e-7 of a float64
    sum: the bands move by about 5e-8 in the log, the scores by about 1e-8,
    tests/novelty/test_fast_score.py), of unequal ones in float64. Bin 0 (DC) is left out, so the
    envelope's mean needs no removing; the bands split bins 1 .. W/8 into ``n_bands`` runs of
    equal width (bearing defect rates are slow). Defined for W >= 8 * n_bands.
    """
    w = np.abs(np.asarray(windows, dtype=np.float32))  # a new float32 buffer the FFT may overwrite
    return rectified_bands(w.reshape(len(w), -1), n_bands)


def window_bands(windows: np.ndarray | None, n: int, bands: int) -> np.ndarray:
    """:func:`envelope_bands` of ``n`` model input windows, or a DataError saying what does not fit."""
    if windows is None:
        raise DataError(
            "the novelty score sqrt_envelope_mahalanobis needs the model's input windows beside the "
            "features; pass windows= to the scorer, or calibrate with another --score"
        )
    w = np.asarray(windows)  # the model's float32 input as it is: no float64 copy per batch
    if (
        not np.issubdtype(w.dtype, np.number)
        or w.ndim < 2
        or len(w) != n
        or w.reshape(n, -1).shape[1] < 8 * bands
    ):
        raise DataError(
            f"windows of shape {w.shape} do not fit {n} feature rows; pass one input window "
            f"(at least {8 * bands} samples) per feature row"
        )
    if not np.isfinite(w).all():
        raise DataError("windows contain NaN or infinite values; check the model input")
    return envelope_bands(w, bands)


def rectified_bands(w: np.ndarray, n_bands: int = ENVELOPE_BANDS) -> np.ndarray:
    """:func:`envelope_bands` of windows already rectified, (N, W) float32, which it may overwrite
    (the daemon rectifies the rows it gathers in place: one pass over them less)."""
    n = w.shape[1]
    if n < 8 * n_bands:
        raise ValueError(f"windows of {n} samples are too short for {n_bands} envelope bands")
    bins = n // 8 + 1
    # the low bins' real and imaginary parts side by side (float32 pairs): a band's power is the
    # sum of its pairs' squares, one call where re² + im² and the band sums took five
    parts = _rfft()(w)[:, :bins].view(np.float32)
    starts, widths = _band_edges(bins, n_bands)
    if _vecdot is not _rowdot and (bins - 1) % n_bands == 0:  # equal bands: one dot product per band
        run = parts[:, 2:].reshape(len(parts), n_bands, -1)
        sums = _vecdot(run, run)  # float32 sums of 128 squares: within 2e-7 of float64 ones
    else:
        sums = np.add.reduceat(np.square(parts), 2 * starts, axis=1, dtype=np.float64)
    out: np.ndarray = sums / widths  # float64 (the int64 widths promote): a new array, then in place
    out += 1e-12
    np.log(out, out=out)
    return out


@functools.cache
def _rfft() -> Callable[[np.ndarray], np.ndarray]:
    """The real FFT of each row of a float32 (N, W) array, as ``scipy.fft.rfft(w, axis=1)`` gives it,
    imported on first use (scipy is a core dependency; imported late like runtime/signals does, and
    once: an import statement per batch showed on the inference thread).

    Why the transform scipy.fft.rfft calls itself, where scipy has it (``pypocketfft.r2c``, no
    normalisation, one thread): the public function's backend dispatch and argument handling cost
    about 5 us per call in a tight loop, and far more on the daemon's inference thread right after
    the model call, where every first step is cold: the transform's thread time per batch fell from
    80-90 to 50-65 us there (docs/results/novelty/daemon_cost/share-2026-11-28). The result is the
    same array (tests/novelty/test_envelope_score.py). A scipy without it, or with another
    signature, gets the public function."""
    from scipy.fft import rfft

    def public(w: np.ndarray) -> np.ndarray:
        out: np.ndarray = rfft(w, axis=1, overwrite_x=True)
        return out

    try:
        from scipy.fft._pocketfft.pypocketfft import r2c

        probe = np.arange(8, dtype=np.float32)[None, :]
        if not np.array_equal(r2c(probe, (1,), True, 0, None, 1), public(probe.copy())):
            return public
    except Exception:  # any failure of the private module means: the public function
        return public

    local = threading.local()

    def direct(w: np.ndarray) -> np.ndarray:
        # into this thread's buffer (the caller reads it before its next call): no new 130 kB per batch
        shape, dtype = (len(w), w.shape[1] // 2 + 1), np.result_type(w.dtype, np.complex64)
        out: np.ndarray | None = getattr(local, "out", None)
        if out is None or out.shape != shape or out.dtype != dtype:
            out = local.out = np.empty(shape, dtype=dtype)
        r2c(w, (1,), True, 0, out, 1)
        return out

    return direct


@functools.lru_cache(maxsize=16)
def _band_edges(bins: int, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """First bin and width of each band over bins 1 .. ``bins`` - 1 (made once per window length:
    the daemon asks per batch, and building them cost as much as summing the bands)."""
    edges = np.linspace(1, bins, n_bands + 1).astype(np.int64)
    starts, widths = edges[:-1], np.diff(edges)
    starts.flags.writeable = widths.flags.writeable = False  # shared by every call
    return starts, widths


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
        # [x, 1] @ proj = [Wx, ||W mu_k||² - 2 (Wx).(W mu_k)]: the whitened row and every class's
        # terms but ||Wx||² in one product (the trailing 1 of the row carries the constant)
        f = self.w.shape[0]
        proj = np.zeros((f + 1, f + len(self.wm)))
        proj[:f, :f] = self.w.T
        proj[:f, f:] = -2.0 * (self.w.T @ self.wm.T)
        proj[f, f:] = self.wm_sq
        self._proj = proj

    def nearest_unclamped(self, x1: np.ndarray) -> np.ndarray:
        """(N,) squared distance of each row of ``x1`` (N, F + 1), float64 rows ending in a 1, to its
        nearest mean, as :meth:`squared` computes it (``||Wx||² - 2 (Wx).(W mu_k) + ||W mu_k||²``)
        in four numpy calls: the daemon's per-batch score. Not clamped at 0 (rounding can take a
        row at a mean a hair below): the caller clamps."""
        a = x1 @ self._proj
        f = self.w.shape[0]
        wf = a[:, :f]
        out: np.ndarray = a[:, f:].min(axis=1) + _vecdot(wf, wf)
        return out

    def squared(self, features: np.ndarray) -> np.ndarray:
        """(N, K) squared distances of the rows of ``features`` (N, F)."""
        wf = np.asarray(features, dtype=np.float64) @ self.w.T
        d2 = (wf * wf).sum(axis=1)[:, None] - 2.0 * wf @ self.wm.T + self.wm_sq[None, :]
        out: np.ndarray = np.maximum(d2, 0.0)
        return out


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.einsum("...i,...i->...", a, b)
    return out


#: row-wise dot product: numpy's ``vecdot`` (2.0 and later), or the same by einsum
_vecdot = getattr(np, "vecdot", _rowdot)
