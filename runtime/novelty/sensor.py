"""One sensor's novelty: the training-data score (``unfamiliar``) and its own baseline (``anomalous``).

The daemon holds one :class:`SensorNovelty` per sensor and feeds it each window's features and
class probabilities after inference. It answers with a :class:`NoveltyVerdict`: the window's
scores, whether the sensor is unfamiliar (far from everything the model was trained on) or
anomalous (drifted from this machine's learned normal), and the closest class with its
probability, so a state can say "unfamiliar, closest IR021 0.99". Baseline learning runs here
too: ``learn(windows)`` accumulates the next windows and saves the baseline when done.
numpy only; no MQTT, no threads: the daemon wires it.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from runtime.config_base import StrictModel
from runtime.errors import ConfigError, DrsnEdgeError
from runtime.novelty.baseline import (
    Baseline,
    BaselineFileError,
    BaselineLearner,
    baseline_path,
    min_baseline_windows,
)
from runtime.novelty.smoothing import NoveltyFlag, SmoothingSpec
from runtime.novelty.stats import NoveltyScorer

log = logging.getLogger(__name__)

ThresholdName = Literal["p99", "p99.9"]


class NoveltyConfig(StrictModel):
    """Per-sensor novelty settings."""

    threshold: ThresholdName | float | Literal["off"] = Field(
        "p99.9",
        description="Score above which a window counts as unfamiliar: a calibrated percentile of the "
        "model's validation windows (p99, p99.9), a number, or off. A novelty block that omits it gets "
        "p99.9, and so does a sensor without a block when its model carries novelty statistics (off turns "
        "it off).",
    )
    history: int | None = Field(
        None, ge=1, le=10_000,
        description="Windows the score is averaged over; default: the fault state's history, so the "
        "novelty and the class probabilities are smoothed over the same windows.",
    )
    exit_ratio: float = Field(
        0.9, gt=0, le=1, description="The flag drops when the smoothed score falls below threshold x this."
    )
    min_windows: int = Field(3, ge=1, description="Windows a change must persist before it is reported.")
    min_duration_s: float | None = Field(
        None, ge=0,
        description="A change must also persist this long (converted to windows at the sensor's hop); "
        "default: the fault state's min_duration_s.",
    )
    baseline_threshold: ThresholdName = Field(
        "p99.9", description="Which of the baseline's held-back percentiles makes a window anomalous."
    )
    envelope_every: Annotated[int, Field(ge=1, le=64, strict=True)] | Literal["auto"] = Field(
        "auto",
        description="For a score that reads the window's envelope (sqrt_envelope_mahalanobis): compute "
        "the envelope bands on every n-th window of the sensor and score the windows between with "
        "the last ones (overlapping windows share most samples). auto: window / hop rounded up "
        "(4 at window 2048, hop 512), so every sample is in one computed window; 1: every window, "
        "as calibrated; at most 64. A gap, a reset, or windows dropped past the n-th compute them afresh.",
    )

    def resolved(self, history: int, min_duration_s: float, window_period_s: float) -> NoveltyConfig:
        """This config with the fault state's defaults filled in: ``history`` windows unless set, and
        ``min_windows`` raised to cover the minimum duration at one window per ``window_period_s``."""
        duration = self.min_duration_s if self.min_duration_s is not None else min_duration_s
        windows = math.ceil(duration / window_period_s - 1e-9) if window_period_s > 0 else 1
        return self.model_copy(update={
            "history": self.history if self.history is not None else history,
            "min_windows": max(self.min_windows, windows),
            "min_duration_s": duration,
        })


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds of ``90``, ``"90s"``, ``"30m"`` or ``"2h"``; anything else is a ValueError naming it."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(value) if isinstance(value, str) else None
        if m is None:
            raise ValueError(f"{str(value)[:40]!r} is not a duration; write e.g. 90s, 30m or 2h")
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration {str(value)[:40]!r} must be positive; write e.g. 30m")
    return seconds


class BaselineConfig(StrictModel):
    """A sensor's own baseline (commissioning): learned while the machine runs healthy, then scored."""

    learn: float = Field(
        ..., description="How long to learn the machine's healthy features when no baseline is stored "
        "yet (90s, 30m, 2h or seconds); learn across the operating range (loads, speeds). Stored in "
        "<state_dir>/baselines/<sensor>.json, tied to the model; the MQTT command "
        '{"action": "relearn", "sensor": ID} learns it again.',
    )

    _duration = field_validator("learn", mode="before")(lambda v: parse_duration(v))


@dataclass(frozen=True)
class NoveltyVerdict:
    """What the novelty path says about one window of one sensor."""

    score: float
    smoothed: float
    unfamiliar: bool
    closest_class: int
    closest_probability: float
    baseline_score: float | None = None
    anomalous: bool | None = None


def _spec(threshold: float, cfg: NoveltyConfig) -> SmoothingSpec:
    return SmoothingSpec(
        enter=threshold, exit=threshold * cfg.exit_ratio, history=cfg.history or 5,
        min_windows=cfg.min_windows,
    )


class SensorNovelty:
    """Novelty tracking of one sensor; ``scorer`` None (model without statistics) scores nothing."""

    #: counts the changes of any sensor's :attr:`batchable` (a learn starts, a baseline is set), so
    #: the daemon's result router re-plans its batches' novelty only when one happened
    changes: ClassVar[int] = 0

    def __init__(
        self,
        sensor: str,
        scorer: NoveltyScorer | None,
        cfg: NoveltyConfig,
        *,
        model_sha256: str,
        state_dir: str | Path | None = None,
        learn_windows: int | None = None,
    ) -> None:
        self.sensor, self.cfg, self.scorer = sensor, cfg, scorer
        self.model_sha256 = model_sha256
        self.state_dir = None if state_dir is None else Path(state_dir)
        self._flag: NoveltyFlag | None = None
        if scorer is not None and cfg.threshold != "off":
            self._flag = NoveltyFlag(_spec(scorer.stats.threshold(cfg.threshold), cfg))
        self.baseline: Baseline | None = None
        self._base_w: np.ndarray | None = None
        self._base_wm = np.zeros(0)
        self._base_flag: NoveltyFlag | None = None
        self._learner: BaselineLearner | None = None
        self._learn_left = 0
        #: windows a (re)learn takes (from the sensor's ``baseline.learn``); None: no learning configured
        self.learn_windows = learn_windows
        self._load_baseline()

    @property
    def learning(self) -> bool:
        return self._learn_left > 0

    @property
    def flag(self) -> NoveltyFlag | None:
        """The training-data flag (None: threshold off or no scorer); the daemon shares its array."""
        return self._flag

    @property
    def batchable(self) -> bool:
        """True while a batch can step this sensor's flag with the others' (:func:`runtime.novelty.route.
        round_novelty`): it scores, is not learning and has no baseline (those go window by window)."""
        return self._flag is not None and self._learn_left == 0 and self._base_flag is None

    def _path(self) -> Path | None:
        return None if self.state_dir is None else baseline_path(self.state_dir, self.sensor)

    def _load_baseline(self) -> None:
        path = self._path()
        if path is None or not path.exists():
            return
        try:
            self.set_baseline(Baseline.load(path, self.model_sha256))
        except BaselineFileError as exc:  # a bad baseline costs the anomalous state, not the sensor
            log.warning("sensor %s: baseline not used: %s", self.sensor, exc)

    def set_baseline(self, baseline: Baseline) -> None:
        if baseline.feature_dim != (self.scorer.stats.feature_dim if self.scorer else baseline.feature_dim):
            raise ConfigError(
                f"sensor {self.sensor}: the baseline has {baseline.feature_dim} features, the model "
                f"{self.scorer.stats.feature_dim if self.scorer else '?'}; learn the baseline again"
            )
        self.baseline = baseline
        self._base_w = baseline.whitening
        self._base_wm = baseline.mean @ baseline.whitening.T
        self._base_flag = NoveltyFlag(_spec(baseline.thresholds[self.cfg.baseline_threshold], self.cfg))
        SensorNovelty.changes += 1

    def learn(self, windows: int) -> None:
        """Learn this machine's baseline from the next ``windows`` windows (it must run healthy)."""
        dim = self.scorer.stats.feature_dim if self.scorer else None
        need = min_baseline_windows(dim) if dim else 50
        if windows < need:
            reason = f"{dim} features need {need} healthy windows" if dim else f"at least {need} are needed"
            raise ConfigError(
                f"sensor {self.sensor}: baseline learning over {windows} windows is too short ({reason}); "
                "learn for longer"
            )
        self._learner, self._learn_left = None, windows
        SensorNovelty.changes += 1

    def update(
        self, features: np.ndarray, probabilities: np.ndarray, *, score: float | None = None
    ) -> NoveltyVerdict | None:
        """One window: its feature vector (F,) and class probabilities (K,) as float arrays; None
        without a scorer. Called once per window on the daemon's hot path, so it checks nothing:
        the arrays come straight from the backend's checked output.

        ``score`` is the window's training-data score when the caller scored a whole batch at once
        (one matrix product per batch instead of one per window).
        """
        if self._learn_left > 0:
            self._learn_step(np.asarray(features, dtype=np.float64).reshape(1, -1))
        if self.scorer is None:
            return None
        if score is None:
            score = float(self.scorer.score(features)[0])
        unfamiliar = self._flag.update(score) if self._flag is not None else False
        base_score = anomalous = None
        if self._base_flag is not None and self._base_w is not None:
            # one small matrix product on the hot path (Baseline.score validates; this cannot fail)
            d = features @ self._base_w.T - self._base_wm
            base_score = float(np.sqrt(d @ d))
            anomalous = self._base_flag.update(base_score)
        top = int(probabilities.argmax())
        smoothed = self._flag.smoothed if self._flag is not None else score
        return NoveltyVerdict(
            score, smoothed, unfamiliar, top, float(probabilities[top]), base_score, anomalous
        )

    def _learn_step(self, f: np.ndarray) -> None:
        if self._learn_left <= 0:
            return
        if self._learner is None:
            self._learner = BaselineLearner(f.shape[1], self.model_sha256, sensor=self.sensor)
        self._learner.add(f)
        self._learn_left -= 1
        if self._learn_left == 0:
            learner, self._learner = self._learner, None
            try:  # on the inference thread: a failure costs this baseline, not the batch
                baseline = learner.finish()
                path = self._path()
                if path is not None:
                    baseline.save(path)
                self.set_baseline(baseline)
            except (DrsnEdgeError, OSError) as exc:
                log.error("sensor %s: baseline not learned (%s); fix it and send the relearn command",
                          self.sensor, exc)
                return
            log.info(
                "sensor %s: baseline learned from %d windows", self.sensor, baseline.n + baseline.n_holdout
            )
