"""The novelty path of the daemon's result router: one batch's features -> per-sensor verdicts -> states.

Kept beside :mod:`runtime.novelty.sensor` so the router (:mod:`runtime.results_router`) adds two
calls, not the scoring and state rules: the training-data score is computed once per batch (one
matrix product for every window of the model's batch), each sensor's :class:`SensorNovelty` smooths
its own scores, and the verdict lays ``unfamiliar`` or ``anomalous`` over the sensor's fault state
(:meth:`runtime.fault_state.FaultStateTracker.set_novelty`), which makes the event and the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from runtime.fault_state import ANOMALOUS, UNFAMILIAR, StateChange

if TYPE_CHECKING:
    from runtime.batching import BatchResult
    from runtime.metrics import Metrics
    from runtime.pipeline import SensorPipeline


def batch_scores(
    batch: BatchResult, sensors: Mapping[str, SensorPipeline], metrics: Metrics
) -> np.ndarray | None:
    """The training-data novelty score of every window of ``batch`` (observed in the score
    histogram), or None when the batch has no features or its model no statistics."""
    if batch.features is None:
        return None
    scorer = None
    for w in batch.windows:  # a batch holds one model's windows: the first served sensor names it
        sp = sensors.get(w.sensor_id)
        if sp is not None:
            scorer = sp.model.scorer
            break
    if scorer is None:
        return None
    scores = scorer.score(batch.features)
    observe = metrics.novelty_score.observe
    for v in scores.tolist():
        observe(v)
    return scores


def window_novelty(sp: SensorPipeline, features: np.ndarray, probs: np.ndarray, score: float,
                   ts: float) -> StateChange | None:
    """Feed one window to the sensor's novelty tracker; the state change it causes, if any.
    Call it under the daemon's state lock, after the window's class update."""
    tracker = sp.novelty
    if tracker is None:
        return None
    verdict = tracker.update(features, probs, score=score)
    if verdict is None:
        return None
    if verdict.unfamiliar:
        label, shown = UNFAMILIAR, verdict.smoothed
    elif verdict.anomalous:
        label, shown = ANOMALOUS, float(verdict.baseline_score or 0.0)
    else:
        label, shown = None, verdict.smoothed
    return sp.tracker.set_novelty(label, verdict.closest_class, verdict.closest_probability, shown, ts)
