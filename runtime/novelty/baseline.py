"""A machine's own healthy normal: learned while it runs, persisted, and scored against.

Most plants have no labelled faults but do have the machine running healthy today. A
:class:`BaselineLearner` accumulates that machine's feature vectors (streaming Ledoit-Wolf sums,
constant memory) and holds back every ``holdout_every``-th window; :meth:`BaselineLearner.finish`
fits mean and covariance on the rest and puts the thresholds at the 99th / 99.9th percentile of
the held-back windows' distances, so the thresholds are honest out-of-sample figures rather than
the optimistic in-sample ones.

Files are JSON in a state directory, written atomically (temp file, fsync, rename), and carry the
model's weights sha256: features of another model live in another space, so a baseline of
another model is refused with :class:`BaselineFileError` and the fix, as is a corrupt file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import DataError
from runtime.novelty.covariance import (
    MomentAccumulator,
    SingularCovarianceError,
    cholesky_factor,
)
from runtime.novelty.scores import Mahalanobis
from runtime.novelty.stats import PERCENTILES

log = logging.getLogger(__name__)

FORMAT = "drsn-edge/baseline"
VERSION = 1
#: held-back windows kept for the thresholds (the earliest ones beyond it are replaced at random)
MAX_HELD = 4000
#: fit windows per feature: a (F, F) covariance has F(F+1)/2 entries, and below ~10 windows per
#: feature even the Ledoit-Wolf estimate is mostly shrinkage and its thresholds do not hold (3 s of
#: learning at 16 features, 70 windows, flagged 12 of 230 later healthy windows; 6 s flagged none)
MIN_FIT_PER_FEATURE = 10
#: held-back windows below which the p99 / p99.9 thresholds are just the largest few distances
MIN_HELD = 40


def min_baseline_windows(dim: int, holdout_every: int = 5) -> int:
    """Healthy windows a baseline of ``dim`` features needs: 10 x dim to fit, plus the held-back share.

    200 for the 16 features of DRSN-CW (8.5 s at hop 512 and 12 kHz), 1,250 for WDCNN's 100.
    """
    fit = MIN_FIT_PER_FEATURE * dim
    return max(math.ceil(fit * holdout_every / (holdout_every - 1)), MIN_HELD * holdout_every)


class BaselineFileError(DataError):
    """A baseline file is corrupt, foreign (another model) or not a baseline at all."""


def baseline_path(state_dir: str | Path, sensor: str) -> Path:
    """``<state_dir>/baselines/<sensor>.json`` with the sensor name made file-safe."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", sensor) or "_"
    return Path(state_dir) / "baselines" / f"{safe}.json"


@dataclass(frozen=True)
class Baseline:
    """Mean, shrunk covariance and thresholds of one machine's healthy features."""

    model_sha256: str
    mean: np.ndarray
    covariance: np.ndarray
    shrinkage: float
    n: int
    thresholds: dict[str, float]
    n_holdout: int
    created: float = field(default_factory=time.time)
    sensor: str = ""
    _distance: Mahalanobis = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            chol, _ = cholesky_factor(self.covariance, "the baseline covariance")
        except SingularCovarianceError as exc:
            raise BaselineFileError(
                f"{exc}; learn the baseline again (`drsn-edge baseline` or the daemon's relearn command)"
            ) from exc
        object.__setattr__(self, "_distance", Mahalanobis(self.mean[None, :], chol))

    @property
    def feature_dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def whitening(self) -> np.ndarray:
        """``L^-1`` of the covariance's Cholesky factor: ``|W (f - mean)|`` is the distance."""
        return self._distance.w

    def score(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of ``features`` to this machine's own normal."""
        f = np.asarray(features, dtype=np.float64)
        if f.ndim == 1:
            f = f[None, :]
        if f.ndim != 2 or f.shape[1] != self.feature_dim:
            raise DataError(f"features of shape {f.shape} do not fit a baseline of width {self.feature_dim}")
        out: np.ndarray = np.sqrt(self._distance.squared(f)[:, 0])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "status": "ready",
            "sensor": self.sensor,
            "model_sha256": self.model_sha256,
            "created": self.created,
            "n": self.n,
            "n_holdout": self.n_holdout,
            "shrinkage": self.shrinkage,
            "thresholds": dict(self.thresholds),
            "mean": self.mean.tolist(),
            "covariance": self.covariance.tolist(),
        }

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path, model_sha256: str) -> Baseline:
        """Read a ready baseline for the model with weights ``model_sha256``; refuse anything else."""
        doc = _read(path, model_sha256)
        if doc.get("status") != "ready":
            raise BaselineFileError(
                f"{path} is a baseline still being learned ({doc.get('n', '?')} windows); let the learning "
                "finish, or learn it on the host with `drsn-edge baseline`"
            )
        try:
            mean = np.asarray(doc["mean"], dtype=np.float64)
            cov = np.asarray(doc["covariance"], dtype=np.float64)
            thresholds = {str(k): float(v) for k, v in dict(doc["thresholds"]).items()}
            if mean.ndim != 1 or cov.shape != (len(mean), len(mean)):
                raise ValueError(f"mean of shape {mean.shape} and covariance of shape {cov.shape}")
            if not (np.isfinite(mean).all() and all(math.isfinite(v) for v in thresholds.values())):
                raise ValueError("non-finite mean or thresholds")
            return cls(
                model_sha256=str(doc["model_sha256"]),
                mean=mean,
                covariance=cov,
                shrinkage=float(doc.get("shrinkage", 0.0)),
                n=int(doc["n"]),
                thresholds=thresholds,
                n_holdout=int(doc.get("n_holdout", 0)),
                created=float(doc.get("created", 0.0)),
                sensor=str(doc.get("sensor", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineFileError(
                f"{path} is a corrupt baseline ({exc}); delete it and learn the baseline again"
            ) from exc


class BaselineLearner:
    """Accumulates a machine's healthy features; :meth:`finish` turns them into a :class:`Baseline`."""

    def __init__(
        self, dim: int, model_sha256: str, *, holdout_every: int = 5, sensor: str = "", seed: int = 0
    ) -> None:
        if holdout_every < 2:
            raise DataError(f"holdout_every must be >= 2, got {holdout_every}")
        self.model_sha256 = model_sha256
        self.sensor = sensor
        self.holdout_every = holdout_every
        self.acc = MomentAccumulator(dim)
        self.held: list[np.ndarray] = []
        self.seen = 0
        self._rng = np.random.default_rng(seed)

    @property
    def windows(self) -> int:
        return self.seen

    def add(self, features: np.ndarray) -> None:
        """Add feature vectors (N, F) of windows the machine ran healthy through."""
        f = np.asarray(features, dtype=np.float64)
        f = f[None, :] if f.ndim == 1 else f
        if f.ndim != 2 or f.shape[1] != self.acc.dim or not np.isfinite(f).all():
            raise DataError(f"baseline features must be finite (N, {self.acc.dim}), got shape {f.shape}")
        idx = self.seen + np.arange(len(f))
        held = idx % self.holdout_every == self.holdout_every - 1
        if (~held).any():
            self.acc.add(f[~held])
        for row, count in zip(f[held], idx[held] // self.holdout_every, strict=True):
            if len(self.held) < MAX_HELD:
                self.held.append(row)
            else:  # reservoir sampling keeps a uniform sample of every held window
                j = int(self._rng.integers(0, count + 1))
                if j < MAX_HELD:
                    self.held[j] = row
        self.seen += len(f)

    def finish(self) -> Baseline:
        """Fit mean/covariance and the held-back thresholds; needs :func:`min_baseline_windows` windows."""
        dim = self.acc.dim
        need = min_baseline_windows(dim, self.holdout_every)
        if self.seen < need:
            raise DataError(
                f"a baseline of {dim} features needs at least {need} healthy windows ({MIN_FIT_PER_FEATURE} "
                f"per feature to fit its {dim}x{dim} covariance, and every {self.holdout_every}th held back "
                f"for the thresholds), got {self.seen}; learn for longer"
            )
        shrunk = self.acc.covariance()
        log.info("baseline%s: fitted on %d windows (%.1f per feature, Ledoit-Wolf shrinkage %.3f), "
                 "thresholds from %d held-back windows", f" of {self.sensor}" if self.sensor else "",
                 self.acc.n, self.acc.n / dim, shrunk.shrinkage, len(self.held))
        base = Baseline(
            self.model_sha256,
            self.acc.mean,
            shrunk.covariance,
            shrunk.shrinkage,
            self.acc.n,
            {},
            len(self.held),
            sensor=self.sensor,
        )
        scores = base.score(np.stack(self.held))
        thresholds = {name: float(np.percentile(scores, q)) for name, q in PERCENTILES.items()}
        return Baseline(
            base.model_sha256,
            base.mean,
            base.covariance,
            base.shrinkage,
            base.n,
            thresholds,
            len(self.held),
            sensor=self.sensor,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "status": "learning",
            "sensor": self.sensor,
            "model_sha256": self.model_sha256,
            "n": self.seen,
            "holdout_every": self.holdout_every,
            "accumulator": self.acc.state(),
            "held": [h.tolist() for h in self.held],
        }

    def save(self, path: str | Path) -> Path:
        """Persist learning progress, so a restart continues instead of starting over."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path, model_sha256: str) -> BaselineLearner:
        doc = _read(path, model_sha256)
        if doc.get("status") != "learning":
            raise BaselineFileError(f"{path} holds a finished baseline, not one being learned")
        try:
            acc = MomentAccumulator.from_state(doc["accumulator"], str(path))
            learner = cls(
                acc.dim,
                model_sha256,
                holdout_every=int(doc["holdout_every"]),
                sensor=str(doc.get("sensor", "")),
            )
            learner.acc = acc
            learner.held = [np.asarray(h, dtype=np.float64) for h in doc["held"]]
            learner.seen = int(doc["n"])
            if any(h.shape != (acc.dim,) or not np.isfinite(h).all() for h in learner.held):
                raise ValueError("held windows of the wrong width or non-finite")
        except (KeyError, TypeError, ValueError, DataError) as exc:
            raise BaselineFileError(
                f"{path} is a corrupt baseline being learned ({exc}); delete it and start learning again"
            ) from exc
        return learner


def _read(path: str | Path, model_sha256: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise BaselineFileError(
            f"no baseline at {p}; learn one with `drsn-edge baseline` or the daemon's baseline learning"
        )
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineFileError(f"{p} is not a readable baseline ({exc}); delete it and learn again") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BaselineFileError(f"{p} is not a drsn-edge baseline file (format {FORMAT!r} missing)")
    if not isinstance(doc.get("version"), int) or doc["version"] > VERSION:
        raise BaselineFileError(f"{p} is baseline format v{doc.get('version')}; upgrade drsn-edge or relearn")
    if doc.get("model_sha256") != model_sha256:
        raise BaselineFileError(
            f"{p} was learned with another model (weights sha256 {str(doc.get('model_sha256'))[:12]}..., "
            f"this model {model_sha256[:12]}...); features of different models are not comparable: "
            "learn the baseline again with this model"
        )
    return doc


def atomic_write_json(path: str | Path, doc: dict[str, Any]) -> Path:
    """Write JSON so that a crash leaves either the old file or the new one, never half of one."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)
    try:
        fd = os.open(p.parent, os.O_RDONLY)
    except OSError:
        return p
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return p
