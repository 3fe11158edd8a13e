"""Per-window novelty scores -> a stable flag, with the fault state's smoothing and hysteresis.

A single window far from the training data can be a cable knock; a machine that is really
unfamiliar stays far. The flag therefore follows the mean score of the last ``history`` windows
(the same window history the class probabilities use), is raised when that mean reaches ``enter``
for ``min_windows`` windows in a row, and lowered only when it falls below ``exit`` (<= enter), so a
score hovering at the threshold cannot flap.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from runtime.errors import ConfigError


@dataclass(frozen=True)
class SmoothingSpec:
    """Window history, thresholds and how many windows a change must persist."""

    enter: float
    exit: float
    history: int = 5
    min_windows: int = 1

    def __post_init__(self) -> None:
        if self.history < 1 or self.min_windows < 1:
            raise ConfigError(f"history ({self.history}) and min_windows ({self.min_windows}) must be >= 1")
        if self.exit > self.enter:
            raise ConfigError(
                f"novelty exit threshold {self.exit} above enter threshold {self.enter} would flap; "
                "set exit <= enter"
            )


class NoveltyFlag:
    """Streaming flag for one sensor: feed it one score per window."""

    def __init__(self, spec: SmoothingSpec) -> None:
        self.spec = spec
        self._recent: deque[float] = deque(maxlen=spec.history)
        self._pending = 0
        self.flagged = False
        self.smoothed = float("nan")

    def update(self, score: float) -> bool:
        """Add one window's score; return whether the sensor is flagged after it."""
        self._recent.append(float(score))
        self.smoothed = sum(self._recent) / len(self._recent)
        if len(self._recent) < self.spec.history:
            return self.flagged
        wants = self.smoothed >= self.spec.enter if not self.flagged else self.smoothed >= self.spec.exit
        if wants == self.flagged:
            self._pending = 0
            return self.flagged
        self._pending += 1
        if self._pending >= self.spec.min_windows:
            self.flagged, self._pending = wants, 0
        return self.flagged


def flags(scores: np.ndarray, spec: SmoothingSpec) -> np.ndarray:
    """The flag after each window of one sensor's score sequence (bool array)."""
    flag = NoveltyFlag(spec)
    return np.fromiter(
        (flag.update(s) for s in np.asarray(scores, dtype=np.float64)), dtype=bool, count=len(scores)
    )


def episodes(flagged: np.ndarray) -> int:
    """How many times the flag was raised (rising edges): the alarms a plant would receive."""
    f = np.asarray(flagged, dtype=bool)
    return int(f[0]) + int(np.sum(f[1:] & ~f[:-1])) if len(f) else 0
