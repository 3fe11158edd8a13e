"""Ledoit-Wolf shrinkage covariance, batch and streaming, and a precision that is always usable.

A novelty score needs the inverse of a feature covariance. With 16-100 features and a few hundred
windows per class, the sample covariance is noisy and often near-singular (post-ReLU features
that are zero on every training window make it exactly singular), so its inverse amplifies noise
in exactly the directions the training data never explored. Ledoit and Wolf (2004) shrink it
towards ``mu * I`` by the amount that minimises the expected Frobenius error, computed from the
data alone: no hyper-parameter, and the result is positive definite whenever ``mu > 0``.

The streaming form (:class:`MomentAccumulator`) keeps the five sums the estimator needs
(count, sum x, sum x x^T, sum |x|^2 x, sum |x|^4), each taken about a fixed reference point to
avoid cancellation, so a device can learn a baseline window by window in constant memory and get
exactly the batch estimate. numpy only: this runs on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.errors import DataError

#: relative jitter ladder tried when a Cholesky factorisation fails (share of the mean variance)
JITTERS = (0.0, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2)


class SingularCovarianceError(DataError):
    """A covariance that no jitter makes positive definite (all-zero or non-finite features)."""


@dataclass(frozen=True)
class ShrunkCovariance:
    """A shrunk covariance and how much it was shrunk (0: sample covariance, 1: ``mu * I``)."""

    covariance: np.ndarray
    shrinkage: float
    n: int


def _shrink(emp: np.ndarray, sum_fourth: float, n: int) -> ShrunkCovariance:
    """Ledoit-Wolf from the (biased) empirical covariance and sum_i |x_i - mean|^4."""
    p = emp.shape[0]
    mu = float(np.trace(emp)) / p
    emp_sq = float(np.sum(emp * emp))
    delta = (emp_sq - 2.0 * mu * float(np.trace(emp)) + p * mu * mu) / p
    beta = (sum_fourth / n - emp_sq) / (p * n)
    beta = min(max(beta, 0.0), delta)
    shrinkage = 0.0 if delta <= 0.0 else beta / delta
    cov = (1.0 - shrinkage) * emp + shrinkage * mu * np.eye(p)
    return ShrunkCovariance(cov, float(shrinkage), n)


def ledoit_wolf(x: np.ndarray, *, assume_centered: bool = False) -> ShrunkCovariance:
    """Ledoit-Wolf covariance of the rows of ``x`` (n, p); ``assume_centered`` skips the mean."""
    a = _finite_2d(x, "features")
    if len(a) < 2:
        raise DataError(f"a covariance needs at least 2 feature vectors, got {len(a)}; use more windows")
    centred = a if assume_centered else a - a.mean(axis=0)
    n = len(centred)
    emp = centred.T @ centred / n
    fourth = float(np.sum(np.sum(centred * centred, axis=1) ** 2))
    return _shrink(emp, fourth, n)


def cholesky_factor(cov: np.ndarray, what: str = "covariance") -> tuple[np.ndarray, float]:
    """Lower Cholesky factor of ``cov``, adding the smallest jitter that makes it work.

    Returns ``(L, jitter)``; raises :class:`SingularCovarianceError` naming ``what`` when even a
    jitter of 1% of the mean variance fails (an all-zero or non-finite matrix).
    """
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise DataError(f"{what} must be a square (F, F) matrix, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise SingularCovarianceError(f"{what} holds NaN or infinite values; refit it from finite features")
    c = (c + c.T) / 2.0
    scale = float(np.trace(c)) / c.shape[0]
    if scale <= 0.0:
        raise SingularCovarianceError(
            f"{what} is zero (every feature constant): it cannot be inverted; the features carry no "
            "information, so check that the model's feature output is connected and the windows differ"
        )
    for jitter in JITTERS:
        try:
            return np.linalg.cholesky(c + jitter * scale * np.eye(c.shape[0])), jitter * scale
        except np.linalg.LinAlgError:
            continue
    raise SingularCovarianceError(
        f"{what} cannot be inverted even with a jitter of {JITTERS[-1]:g} x its mean variance; "
        "it is not a covariance (negative eigenvalues): refit it with `drsn-edge calibrate`"
    )


def whiten(diff: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """``L^-1 diff^T`` row-wise: squared norms of the result are squared Mahalanobis distances."""
    out: np.ndarray = np.asarray(diff, dtype=np.float64) @ whitening_matrix(chol).T
    return out


def whitening_matrix(chol: np.ndarray) -> np.ndarray:
    """``L^-1`` of a lower Cholesky factor, computed once so that scoring is a matrix product.

    A triangular solve per window costs far more than the product (and dominated the novelty
    path's cost when it was done per call); the inverse of a well-conditioned factor (jitter
    already applied) is accurate to float64 rounding.
    """
    c = np.asarray(chol, dtype=np.float64)
    inv: np.ndarray = np.linalg.solve(c, np.eye(c.shape[0]))
    return inv


class MomentAccumulator:
    """Streaming sums for an exact Ledoit-Wolf estimate of feature vectors seen one batch at a time.

    Sums are kept about ``reference`` (the first vector seen) so that large feature means do not
    cancel the small variances in float64.
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise DataError(f"feature dimension must be >= 1, got {dim}")
        self.dim = dim
        self.n = 0
        self.reference = np.zeros(dim)
        self.s1 = np.zeros(dim)
        self.s2 = np.zeros((dim, dim))
        self.s3 = np.zeros(dim)  # sum |y|^2 y
        self.s4 = 0.0  # sum |y|^4

    def add(self, x: np.ndarray) -> None:
        """Add rows of ``x`` (n, dim) or one vector (dim,)."""
        a = _finite_2d(x, "features")
        if a.shape[1] != self.dim:
            raise DataError(
                f"feature vectors of width {a.shape[1]} do not fit an accumulator of width {self.dim}"
            )
        if self.n == 0 and len(a):
            self.reference = a[0].copy()
        y = a - self.reference
        sq = np.sum(y * y, axis=1)
        self.n += len(a)
        self.s1 += y.sum(axis=0)
        self.s2 += y.T @ y
        self.s3 += (sq[:, None] * y).sum(axis=0)
        self.s4 += float(np.sum(sq * sq))

    @property
    def mean(self) -> np.ndarray:
        return self.reference + (self.s1 / self.n if self.n else 0.0)

    def covariance(self) -> ShrunkCovariance:
        """The Ledoit-Wolf estimate of everything added so far (same as :func:`ledoit_wolf`)."""
        if self.n < 2:
            raise DataError(f"a covariance needs at least 2 feature vectors, got {self.n}; learn for longer")
        n = self.n
        m = self.s1 / n  # mean of y
        emp = self.s2 / n - np.outer(m, m)
        mm = float(m @ m)
        # sum |y - m|^4 expanded in the kept sums: (a - 2b + c)^2 with a=|y|^2, b=y.m, c=|m|^2
        sum_a2 = self.s4
        sum_b2 = float(m @ self.s2 @ m)
        sum_ab = float(self.s3 @ m)
        sum_a = float(np.trace(self.s2))
        sum_b = float(self.s1 @ m)
        fourth = sum_a2 + 4 * sum_b2 + n * mm * mm - 4 * sum_ab + 2 * mm * sum_a - 4 * mm * sum_b
        return _shrink(emp, max(fourth, 0.0), n)

    def state(self) -> dict[str, object]:
        """JSON-able sums (for persisting a baseline being learned)."""
        return {
            "dim": self.dim,
            "n": self.n,
            "reference": self.reference.tolist(),
            "s1": self.s1.tolist(),
            "s2": self.s2.tolist(),
            "s3": self.s3.tolist(),
            "s4": self.s4,
        }

    @classmethod
    def from_state(cls, doc: object, source: str) -> MomentAccumulator:
        """Rebuild from :meth:`state`; anything malformed raises :class:`DataError` naming ``source``."""
        if not isinstance(doc, dict):
            raise DataError(f"{source}: accumulator state is not an object")
        try:
            dim, n = int(doc["dim"]), int(doc["n"])
            acc = cls(dim)
            acc.n = n
            acc.reference = _vector(doc["reference"], dim)
            acc.s1 = _vector(doc["s1"], dim)
            acc.s2 = np.asarray(doc["s2"], dtype=np.float64)
            acc.s3 = _vector(doc["s3"], dim)
            acc.s4 = float(doc["s4"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: accumulator state is malformed ({exc})") from exc
        if (
            acc.s2.shape != (dim, dim)
            or n < 0
            or not all(
                np.isfinite(v).all() for v in (acc.reference, acc.s1, acc.s2, acc.s3, np.asarray(acc.s4))
            )
        ):
            raise DataError(f"{source}: accumulator state has wrong shapes or non-finite sums")
        return acc


def _vector(value: object, dim: int) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64)
    if v.shape != (dim,):
        raise ValueError(f"expected {dim} numbers, got shape {v.shape}")
    return v


def _finite_2d(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise DataError(f"{what} must be (N, F), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DataError(f"{what} contain NaN or infinite values; check the model input")
    return a
