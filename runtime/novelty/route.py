"""The novelty path of the daemon's result router: one batch's features -> per-sensor verdicts -> states.

Kept beside :mod:`runtime.novelty.sensor` so the router (:mod:`runtime.results_router`) adds two
calls, not the scoring and state rules: the training-data score is computed once per batch (one
matrix product for every window of the model's batch), each sensor's :class:`SensorNovelty` smooths
its own scores, and the verdict lays ``unfamiliar`` or ``anomalous`` over the sensor's fault state
(:meth:`runtime.fault_state.FaultStateTracker.set_novelty`), which makes the event and the state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from runtime.fault_state import ANOMALOUS, UNFAMILIAR, StateChange
from runtime.novelty.smoothing import FlagArray

if TYPE_CHECKING:
    from runtime.batching import BatchResult
    from runtime.metrics import Metrics
    from runtime.novelty.envelope_cache import EnvelopeCache
    from runtime.novelty.stats import NoveltyScorer
    from runtime.pipeline import SensorPipeline

log = logging.getLogger(__name__)


def batch_scores(
    batch: BatchResult, sensors: Mapping[str, SensorPipeline], metrics: Metrics
) -> np.ndarray | None:
    """The training-data novelty score of every window of ``batch`` (observed in the score
    histogram), or None when the batch has no features, its model no statistics or none of its
    sensors novelty configured."""
    if batch.features is None:
        return None
    scorer = None
    for w in batch.windows:  # a batch holds one model's windows; score it when a sensor uses novelty
        sp = sensors.get(w.sensor_id)
        if sp is not None and sp.novelty is not None:
            scorer = sp.model.scorer
            break
    if scorer is None:  # no sensor of the batch scores novelty (off unless configured): nothing to do
        return None
    return score_batch(batch, scorer, metrics)


def score_batch(batch: BatchResult, scorer: NoveltyScorer | None, metrics: Metrics,
                envelopes: EnvelopeCache | None = None,
                sensor: np.ndarray | None = None) -> np.ndarray | None:
    """The novelty score of every window of ``batch`` by ``scorer`` (observed in the score histogram);
    None without features or scorer. The router calls it once it knows a sensor of the batch scores.
    With ``envelopes`` and ``sensor`` (each row's dense sensor index), a score that reads the windows
    reuses a sensor's envelope bands across its overlapping windows (:mod:`.envelope_cache`)."""
    if batch.features is None or scorer is None:
        return None
    stats = scorer.stats
    # a score that reads the windows too gets the batch's model inputs (the raw Window.data is not)
    if stats.needs_windows and envelopes is not None and sensor is not None:
        bands = envelopes.bands(sensor, batch.index, batch.t_wall, batch.inputs, stats.envelope_bands)
        scores = scorer.score(batch.features, bands=bands)
    else:
        scores = scorer.score(batch.features, batch.inputs if stats.needs_windows else None)
    metrics.observe_novelty(scores)  # buffered: in the histogram with the router's periodic flush
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


@dataclass
class NoveltyPlan:
    """How each sensor of a batch scores novelty, by the router's dense sensor index: ``group`` is
    the index of its shared :class:`FlagArray` in ``arrays`` (``NONE``: no novelty, ``WINDOWED``:
    learns or scores a baseline, window by window) and ``row`` its row there. Made once per batch
    (:func:`plan_novelty`): a sensor can start learning between batches."""

    group: np.ndarray
    row: np.ndarray
    arrays: list[FlagArray]
    #: every served sensor in the one flag array (group 0): a batch's sensors need no group check
    uniform: bool = False

    def busy(self, sensor: np.ndarray) -> np.ndarray | None:
        """Per window (dense sensor indices ``sensor``): its sensor goes window by window or its flag
        is up before the batch, so the novelty rounds may lift an overlay with the class state of
        that window: its class must go round by round too. None when no window is busy."""
        groups = self.group[sensor]
        out = groups == WINDOWED
        for g, a in enumerate(self.arrays):
            mine = groups == g
            out[mine] |= a.flagged[self.row[sensor[mine]]]
        return out if out.any() else None

NONE, WINDOWED = -1, -2


def plan_novelty(pipes: Sequence[SensorPipeline | None], distinct: Sequence[int], size: int) -> NoveltyPlan:
    """The :class:`NoveltyPlan` of the sensors ``distinct`` (dense indices into ``pipes``, < ``size``)."""
    group = np.full(size, NONE, dtype=np.int64)
    row = np.zeros(size, dtype=np.int64)
    arrays: list[FlagArray] = []
    known: dict[int, int] = {}  # id(FlagArray) -> its index in arrays
    for j in distinct:
        sp = pipes[j]
        nov = sp.novelty if sp is not None else None
        if nov is None:
            continue
        flag = nov.flag if nov.batchable else None
        if flag is None:
            group[j] = WINDOWED
            continue
        g = known.setdefault(id(flag.array), len(arrays))
        if g == len(arrays):
            arrays.append(flag.array)
        group[j], row[j] = g, flag.row
    served = [j for j in distinct if pipes[j] is not None]
    uniform = len(arrays) == 1 and not group[served].any()
    return NoveltyPlan(group, row, arrays, uniform)


def quiet_rounds(plan: NoveltyPlan, pos: np.ndarray, sensor: np.ndarray, members: Sequence[np.ndarray],
                 scores: np.ndarray) -> bool:
    """Every round of a batch through the sensors' novelty flags in one pass, when that changes no
    flag (:meth:`FlagArray.step_quiet`): True, and the rounds need no :func:`round_novelty`. False,
    with nothing changed, when a flag is up or may rise, or the batch is not the plain shape this
    pass takes: every sensor of the batch in one shared flag array, the same number of windows each,
    in the same order in every round. Call it under the daemon's state lock, before the rounds.

    ``pos``, ``sensor``: the batch's served windows (batch row, dense sensor index); ``members[r]``:
    round r's positions into them (:class:`runtime.results_table.BatchRows`).
    """
    if len(plan.arrays) != 1:
        return False
    first = members[0]
    n, m = len(first), len(members)
    if any(len(r) != n for r in members):
        return False
    who: np.ndarray | None = None
    if len(pos) == len(scores):  # every window served: pos is 0 .. n m - 1, scores need no gather
        if m == 1:
            who, windows = sensor, scores[None, :]
        else:
            blocks = sensor.reshape(n, m)
            if (blocks[:, 1:] == blocks[:, :1]).all():  # each sensor's windows side by side
                who, windows = blocks[:, 0], scores.reshape(n, m).T
    if who is None:
        grid = np.concatenate(members).reshape(m, n) if m > 1 else first[None, :]
        on = sensor[grid]  # (rounds, sensors): the same sensors in every round, or not this pass
        if m > 1 and not (on[1:] == on[0]).all():
            return False
        who, windows = on[0], scores[pos[grid]]
    if not plan.uniform and plan.group[who].any():  # a sensor without novelty, or window by window
        return False
    return plan.arrays[0].step_quiet(plan.row[who], windows)


def round_novelty(batch: BatchResult, pos: np.ndarray, sensor: np.ndarray,
                  pipes: Sequence[SensorPipeline | None], plan: NoveltyPlan, scores: np.ndarray,
                  t_wall: np.ndarray) -> list[tuple[int, SensorPipeline, StateChange]]:
    """One round of a batch (at most one window per sensor: batch rows ``pos``, dense sensor indices
    ``sensor``) through the sensors' novelty trackers: ``(row, sensor, change)`` for each state
    change. Call it under the daemon's state lock, after the round's class update.

    Sensors that share a flag array (:meth:`runtime.novelty.smoothing.NoveltyFlag.move_to`) are stepped
    in one call; a window costs Python work only while its sensor is flagged or the flag moves.
    Sensors that learn or score a baseline go window by window (:func:`window_novelty`).
    """
    assert batch.features is not None
    out: list[tuple[int, SensorPipeline, StateChange]] = []
    groups = plan.group[sensor]
    for m in np.flatnonzero(groups == WINDOWED).tolist():
        i, sp = int(pos[m]), pipes[int(sensor[m])]
        assert sp is not None
        change = window_novelty(sp, batch.features[i], batch.probs[i], scores[i], float(t_wall[i]))
        if change is not None:
            out.append((i, sp, change))
    for g, array in enumerate(plan.arrays):
        sel = groups == g if len(plan.arrays) > 1 or (groups < 0).any() else slice(None)
        at, who = pos[sel], sensor[sel]
        rows = plan.row[who]
        was = array.flagged[rows].any()
        up_now = array.step(rows, scores[at])
        if not (was or up_now.any()):
            # no flag was up or is up: a batchable sensor's overlay is its flag (lifted when the
            # flag dropped), so nothing is laid over any state and nothing lifted; no Python per window
            continue
        smoothed = array.smoothed[rows].tolist()
        for i, j, up, level in zip(at.tolist(), who.tolist(), up_now.tolist(), smoothed, strict=True):
            sp = pipes[j]
            assert sp is not None
            tracker = sp.tracker
            if not up and tracker.novel is None:
                continue  # nothing to lay over the state or to lift
            p = batch.probs[i]
            top = int(p.argmax())
            change = tracker.set_novelty(UNFAMILIAR if up else None, top, float(p[top]), level,
                                         float(t_wall[i]))
            if change is not None:
                out.append((i, sp, change))
    return out


def relearn(sensor: object, sensors: Mapping[str, SensorPipeline], lock: threading.Lock) -> bool:
    """The ``relearn`` command: learn the sensor's baseline again from its next windows (the old one
    keeps scoring until the new one is saved). False, with a log line saying why, when it cannot."""
    sp = sensors.get(sensor) if isinstance(sensor, str) else None
    if sp is None:
        log.warning('relearn: no sensor %r served here; send {"action": "relearn", "sensor": ID} with '
                    "one of %s", str(sensor)[:70], sorted(sensors)[:20])
        return False
    tracker = sp.novelty
    if tracker is None or tracker.learn_windows is None:
        log.warning("relearn: sensor %s has no baseline configured; set sensors.%s.baseline.learn (and "
                    "state_dir) first", sp.sensor_id, sp.sensor_id)
        return False
    with lock:
        tracker.learn(tracker.learn_windows)
    log.info("sensor %s: relearning its baseline over the next %d windows; it must run healthy",
             sp.sensor_id, tracker.learn_windows)
    return True
