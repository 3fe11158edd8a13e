"""Class-conditional feature statistics: fitted on the host, stored in the metadata, scored on the device.

The host fits per-class means and one shared Ledoit-Wolf covariance of the training windows'
features (:func:`fit_novelty`), then sets thresholds at the 99th and 99.9th percentile of the
validation windows' scores (:func:`calibrate`). The result travels in the model metadata under
``novelty`` as plain JSON; :meth:`NoveltyStats.from_dict` is a total parser (a value or
:class:`NoveltyStatsError` naming the model and the fix) and :class:`NoveltyScorer` factorises the
covariance once at load, so a covariance that cannot be inverted is found before serving.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from runtime.errors import DataError, ModelFileError
from runtime.novelty.covariance import SingularCovarianceError, cholesky_factor, ledoit_wolf
from runtime.novelty.scores import (
    DEFAULT_FEATURE_SCORE,
    ENVELOPE_BANDS,
    FLOAT_DTYPES,
    NOVELTY_SCORES,
    ROOT_SCORES,
    WINDOW_SCORES,
    FeatureScore,
    Mahalanobis,
    transform,
    window_bands,
)

log = logging.getLogger(__name__)

STATS_VERSION = 1
#: threshold names the config may use, and the percentile of validation scores behind each
PERCENTILES: dict[str, float] = {"p99": 99.0, "p99.9": 99.9}
FEATURES_OUTPUT = "features"


class NoveltyStatsError(ModelFileError):
    """A model's novelty statistics are missing pieces, malformed or unusable."""


@dataclass(frozen=True)
class NoveltyStats:
    """Everything the device needs to turn a feature vector into a novelty score."""

    score: FeatureScore
    classes: list[str]
    means: np.ndarray  # (K, F), in the score's feature space (see scores.transform)
    covariance: np.ndarray  # (F, F), shared, shrunk, in the same space
    shrinkage: float
    n_train: int
    background_mean: np.ndarray | None = None  # (F,), for relative_mahalanobis
    background_covariance: np.ndarray | None = None  # (F, F)
    thresholds: dict[str, float] = field(default_factory=dict)
    n_calibration: int = 0
    #: envelope bands appended to the features (``sqrt_envelope_mahalanobis``), 0 for the others
    envelope_bands: int = 0

    @property
    def feature_dim(self) -> int:
        """Width of the network's features (the means also carry ``envelope_bands`` after them)."""
        return int(self.means.shape[1]) - self.envelope_bands

    @property
    def needs_windows(self) -> bool:
        """Whether the score needs the model's input windows beside the features."""
        return self.envelope_bands > 0

    def threshold(self, name: str | float) -> float:
        """A named threshold (``p99``, ``p99.9``) or a number passed through."""
        if isinstance(name, (int, float)) and not isinstance(name, bool):
            return float(name)
        if name not in self.thresholds:
            raise NoveltyStatsError(
                f"novelty threshold {name!r} is not calibrated (have {sorted(self.thresholds) or 'none'}); "
                "use one of them or a number, or calibrate the model with `drsn-edge calibrate`"
            )
        return self.thresholds[name]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for the metadata's ``novelty`` section and the checkpoint."""
        doc: dict[str, Any] = {
            "version": STATS_VERSION,
            "score": self.score,
            "features_output": FEATURES_OUTPUT,
            "classes": list(self.classes),
            "means": self.means.tolist(),
            "covariance": self.covariance.tolist(),
            "shrinkage": self.shrinkage,
            "n_train": self.n_train,
            "thresholds": dict(self.thresholds),
            "n_calibration": self.n_calibration,
        }
        if self.envelope_bands:
            doc["envelope_bands"] = self.envelope_bands
        if self.background_mean is not None and self.background_covariance is not None:
            doc["background_mean"] = self.background_mean.tolist()
            doc["background_covariance"] = self.background_covariance.tolist()
        return doc

    @classmethod
    def from_dict(cls, doc: object, source: str = "model") -> NoveltyStats:
        """Parse :meth:`to_dict`; anything wrong raises :class:`NoveltyStatsError` naming ``source``."""
        fix = (
            "re-calibrate the checkpoint with `drsn-edge calibrate CKPT` and export it again, "
            "or turn novelty off for this sensor"
        )
        try:
            return _parse(doc)
        except (KeyError, TypeError, ValueError) as exc:
            what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise NoveltyStatsError(f"{source}: novelty statistics are malformed ({what}); {fix}") from exc


def _parse(doc: object) -> NoveltyStats:
    if not isinstance(doc, dict):
        raise TypeError(f"expected an object, got {type(doc).__name__}")
    version = int(doc["version"])
    if version > STATS_VERSION:
        raise ValueError(f"statistics v{version} are newer than this drsn-edge reads (v{STATS_VERSION})")
    score = doc["score"]
    if score not in NOVELTY_SCORES:
        raise ValueError(f"score {score!r} is not one of {', '.join(NOVELTY_SCORES)}")
    classes = doc["classes"]
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes) or len(classes) < 1:
        raise ValueError("classes must be a non-empty list of names")
    means = _matrix(doc["means"], "means")
    k, f = means.shape
    if k != len(classes):
        raise ValueError(f"{k} class means for {len(classes)} classes")
    cov = _matrix(doc["covariance"], "covariance", (f, f))
    bands = 0
    if score in WINDOW_SCORES:
        bands = doc["envelope_bands"]
        if not isinstance(bands, int) or isinstance(bands, bool) or not 1 <= bands < f:
            raise ValueError(f"envelope_bands must be a whole number from 1 to {f - 1}, got {bands!r}")
    thresholds = doc.get("thresholds", {})
    if not isinstance(thresholds, dict) or not all(
        isinstance(v, (int, float)) and math.isfinite(v) for v in thresholds.values()
    ):
        raise ValueError("thresholds must map names to finite numbers")
    bg_mean = bg_cov = None
    if score == "relative_mahalanobis":
        bg_mean = _matrix([doc["background_mean"]], "background_mean", (1, f))[0]
        bg_cov = _matrix(doc["background_covariance"], "background_covariance", (f, f))
    return NoveltyStats(
        score=score,
        classes=list(classes),
        means=means,
        covariance=cov,
        shrinkage=float(doc.get("shrinkage", 0.0)),
        n_train=int(doc.get("n_train", 0)),
        background_mean=bg_mean,
        background_covariance=bg_cov,
        thresholds={str(key): float(v) for key, v in thresholds.items()},
        n_calibration=int(doc.get("n_calibration", 0)),
        envelope_bands=bands,
    )


def _matrix(value: object, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not a matrix of numbers ({exc})") from exc
    if a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"{name} must be a non-empty matrix, got shape {a.shape}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return a


class NoveltyScorer:
    """Scores feature vectors against :class:`NoveltyStats`; factorises the covariance once.

    Raises :class:`NoveltyStatsError` at construction when a covariance cannot be inverted, so a
    broken model is refused at load, not on the first window.
    """

    def __init__(self, stats: NoveltyStats, source: str = "model") -> None:
        self.stats = stats
        self._local = threading.local()  # per thread: the reused row buffer of _fast_score
        try:
            chol, self.jitter = cholesky_factor(stats.covariance, f"{source}: the novelty covariance")
            self._classes = Mahalanobis(stats.means, chol)
            self._background = None
            if stats.background_covariance is not None and stats.background_mean is not None:
                bg_chol, _ = cholesky_factor(
                    stats.background_covariance, f"{source}: the novelty background covariance"
                )
                self._background = Mahalanobis(stats.background_mean[None, :], bg_chol)
        except SingularCovarianceError as exc:
            raise NoveltyStatsError(f"{exc}; re-calibrate with `drsn-edge calibrate CKPT`") from exc

    def distances(self, features: np.ndarray, windows: np.ndarray | None = None, *,
                  bands: np.ndarray | None = None) -> np.ndarray:
        """Squared Mahalanobis distance to every class mean, (N, K), in the score's feature space."""
        return self._classes.squared(_space(self.stats, features, windows, bands))

    def score(self, features: np.ndarray, windows: np.ndarray | None = None, *,
              bands: np.ndarray | None = None) -> np.ndarray:
        """One novelty score per window (N,): higher is less familiar.

        ``windows`` are the model's input windows of the same rows, (N, W) or (N, 1, W); only a score
        with ``stats.needs_windows`` reads them, and it refuses to score without them. ``bands``
        (N, ``stats.envelope_bands``) are those windows' :func:`envelope_bands` computed already
        (the daemon reuses a sensor's bands across its overlapping windows,
        :mod:`runtime.novelty.envelope_cache`); given, the windows are not read.
        """
        fast = self._fast_score(features, windows, bands)
        if fast is not None:
            return fast
        f = _space(self.stats, features, windows, bands)
        nearest = self._classes.squared(f).min(axis=1)
        if self.stats.score != "relative_mahalanobis" or self._background is None:
            out: np.ndarray = np.sqrt(nearest)
            return out
        rel: np.ndarray = nearest - self._background.squared(f)[:, 0]
        return rel

    def _fast_score(self, features: np.ndarray, windows: np.ndarray | None,
                    bands: np.ndarray | None) -> np.ndarray | None:
        """:meth:`score` in about ten numpy calls (the daemon scores every batch): the features'
        roots and the bands written into a reused buffer, one product for the distances to every
        class (:meth:`Mahalanobis.nearest_unclamped`), no per-call validation. Shapes are checked
        in Python; NaN or inf anywhere reaches every product and makes a non-finite score, which
        sends the call to the checked way, which names the problem. None: the checked way must run
        (that, a negative feature, whose signed root it takes, a score with a background, or
        unusual inputs). Why not a ``np.errstate`` around a root that may be NaN: entering and
        leaving it cost more than the rest of the score on the daemon's inference thread."""
        stats = self.stats
        if self._background is not None or not isinstance(features, np.ndarray) or features.ndim != 2:
            return None
        n, dim = features.shape
        if dim != stats.feature_dim or features.dtype not in FLOAT_DTYPES:
            return None
        x = self._rows(n)
        if stats.needs_windows:
            if bands is None:
                if windows is None:
                    return None
                bands = window_bands(windows, n, stats.envelope_bands)
            if not isinstance(bands, np.ndarray) or bands.shape != (n, stats.envelope_bands):
                return None
            x[:, dim:-1] = bands
        if stats.score in ROOT_SCORES:  # transform(): sign(f) sqrt(|f|), which is sqrt(f) for f >= 0
            if features.min() < 0:  # (NaN passes, and makes a NaN score)
                return None
            np.sqrt(features, out=x[:, :dim], dtype=np.float64)
        else:
            x[:, :dim] = features
        d2 = self._classes.nearest_unclamped(x)
        out: np.ndarray = np.sqrt(np.maximum(d2, 0.0, out=d2), out=d2)
        return out if math.isfinite(float(out.sum())) else None

    def _rows(self, n: int) -> np.ndarray:
        """This thread's (n, F + bands + 1) float64 buffer of :meth:`_fast_score`, last column 1."""
        buf: np.ndarray | None = getattr(self._local, "rows", None)
        if buf is None or len(buf) < n:
            buf = np.empty((max(n, 64), self.stats.means.shape[1] + 1))
            buf[:, -1] = 1.0
            self._local.rows = buf
        return buf[:n]


def _space(stats: NoveltyStats, features: np.ndarray, windows: np.ndarray | None,
           bands: np.ndarray | None = None) -> np.ndarray:
    """The rows the statistics measure: transformed features, then envelope bands if the score has them."""
    f = transform(_features(features, stats.feature_dim), stats.score)
    if not stats.needs_windows:
        return f
    if bands is not None:
        return np.hstack([f, _given_bands(bands, len(f), stats.envelope_bands)])
    return np.hstack([f, window_bands(windows, len(f), stats.envelope_bands)])


def _given_bands(bands: np.ndarray, n: int, width: int) -> np.ndarray:
    b = np.asarray(bands, dtype=np.float64)
    if b.shape != (n, width):
        raise DataError(f"envelope bands of shape {b.shape} do not fit {n} feature rows of statistics with "
                        f"{width} bands; pass one row of envelope_bands(windows, {width}) per feature row")
    if not np.isfinite(b).all():
        raise DataError("envelope bands contain NaN or infinite values; compute them from finite windows")
    return b


def _features(features: np.ndarray, dim: int) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim == 1:
        f = f[None, :]
    if f.ndim != 2 or f.shape[1] != dim:
        raise DataError(f"features of shape {f.shape} do not fit statistics of width {dim}")
    if not np.isfinite(f).all():
        raise DataError("features contain NaN or infinite values; check the model input")
    return f


def fit_novelty(
    features: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    score: FeatureScore = DEFAULT_FEATURE_SCORE,
    windows: np.ndarray | None = None,
) -> NoveltyStats:
    """Per-class means and the shared Ledoit-Wolf covariance of the within-class residuals.

    Fitted in the score's feature space (the signed square root for ``sqrt_mahalanobis``; with the
    envelope bands of ``windows`` appended for ``sqrt_envelope_mahalanobis``, which needs them).
    The default is the best score of the features alone; `drsn-edge calibrate` and the end of
    training pass their own default, the envelope score, with the windows.
    """
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    if f.ndim != 2 or len(f) != len(y):
        raise DataError(f"{len(y)} labels for features of shape {f.shape}; pass one label per feature vector")
    if score not in NOVELTY_SCORES:
        raise DataError(f"unknown novelty score {score!r}; use one of {', '.join(NOVELTY_SCORES)}")
    missing = [classes[c] for c in range(len(classes)) if not np.any(y == c)]
    if missing:
        raise DataError(f"no training windows of class(es) {missing}; every class needs windows for a mean")
    f = transform(f, score)
    bands = ENVELOPE_BANDS if score in WINDOW_SCORES else 0
    if bands:
        f = np.hstack([f, window_bands(windows, len(f), bands)])
    means = np.stack([f[y == c].mean(axis=0) for c in range(len(classes))])
    shared = ledoit_wolf(f - means[y], assume_centered=True)
    bg_mean = bg_cov = None
    if score == "relative_mahalanobis":
        bg = ledoit_wolf(f)
        bg_mean, bg_cov = f.mean(axis=0), bg.covariance
    return NoveltyStats(
        score=score,
        classes=list(classes),
        means=means,
        covariance=shared.covariance,
        shrinkage=shared.shrinkage,
        n_train=len(f),
        background_mean=bg_mean,
        background_covariance=bg_cov,
        envelope_bands=bands,
    )


def calibrate(stats: NoveltyStats, features: np.ndarray, windows: np.ndarray | None = None) -> NoveltyStats:
    """Thresholds at the 99th and 99.9th percentile of ``features``' scores (validation windows)."""
    scores = NoveltyScorer(stats).score(features, windows)
    if len(scores) < 10:
        raise DataError(f"{len(scores)} calibration windows are too few for a p99 threshold; use at least 10")
    thresholds = {name: float(np.percentile(scores, q)) for name, q in PERCENTILES.items()}
    if len(scores) < 1000:
        log.info("p99.9 from %d windows sits near their maximum; more windows make it sharper", len(scores))
    return replace(stats, thresholds=thresholds, n_calibration=len(scores))


def scorer_of(meta: Any, source: str) -> NoveltyScorer | None:
    """The novelty scorer a model's metadata describes, or None (one warning) when it has none.

    ``meta`` is a :class:`runtime.artifact.ModelMetadata`. A model exported before novelty existed
    (no features output, or never calibrated) keeps working with novelty off; statistics that are
    present but malformed, of the wrong width or classes, or not invertible raise
    :class:`NoveltyStatsError` naming ``source`` and the fix.
    """
    if meta.features_name is None or meta.novelty is None:
        missing = "a features output" if meta.features_name is None else "novelty statistics"
        log.warning(
            "%s has no %s: novelty scoring is off for it; re-export it with `drsn-edge calibrate` and "
            "`drsn-edge export onnx` to turn it on",
            source,
            missing,
        )
        return None
    stats = NoveltyStats.from_dict(meta.novelty, source)
    if stats.classes != list(meta.classes):
        raise NoveltyStatsError(
            f"{source}: novelty statistics are for classes {stats.classes}, the model has {meta.classes}; "
            "re-calibrate with `drsn-edge calibrate CKPT` and export again"
        )
    return NoveltyScorer(stats, source)
