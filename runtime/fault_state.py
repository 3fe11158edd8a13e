"""Turn noisy per-window predictions into a stable per-sensor fault state.

A single window is a weak witness: one impact or a cable knock can make it look like a fault.
What gets alerted is a *state*, kept per sensor:

* **Smoothing** over the last N windows: the mean of the class probabilities, or k-of-n votes of
  each window's top class.
* **Hysteresis**: a class is *entered* when its smoothed score reaches ``enter_threshold`` (or it
  wins k of the last n votes), and the current state is *held* while its score stays at or above
  the lower ``exit_threshold``. A score hovering at one threshold therefore cannot flap.
* **Minimum duration**: a change must be indicated continuously for ``min_duration_s`` before it
  is published, measured on the clock the caller passes as ``now``: the daemon passes the local
  monotonic time a window arrived, so a sender whose clock steps back an hour cannot hold a real
  fault back, nor a step forward skip the minimum (sender timestamps only label the events).
* **Warm-up**: the state is ``"unknown"`` until ``min_windows`` windows have been seen.
* **No data**: a sensor that delivers no windows for ``no_data_after_s`` is put in the state
  ``"no_data"`` by the daemon's watchdog (:meth:`FaultStateTracker.mark_no_data`); its first window
  afterwards leaves it (to ``"unknown"``, then the warm-up decides as after a start).
* **Novelty**: the daemon's novelty path (:mod:`runtime.novelty.sensor`) can lay ``"unfamiliar"``
  (far from the training data) or ``"anomalous"`` (drifted from the machine's learned baseline)
  over the class state with :meth:`FaultStateTracker.set_novelty`. The class decision goes on
  underneath without events, since a class the model is not entitled to judge must not alert, and
  the state carries the closest class and its probability instead; when the flag drops, the state
  returns to the class decided meanwhile.

Each change is a :class:`StateChange` event with a per-sensor sequence number that only grows
(``start_seq`` continues it after a restart) and a unique id, so consumers can de-duplicate and
detect loss.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from runtime.errors import ConfigError, DataError
from runtime.fault_state_config import FaultStateConfig
from runtime.state_array import StateArray

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
NO_DATA = "no_data"
UNFAMILIAR = "unfamiliar"
ANOMALOUS = "anomalous"


@dataclass(frozen=True, slots=True)
class StateChange:
    """A published state change (an MQTT event; its payload is built in :mod:`runtime.results`)."""

    sensor_id: str
    seq: int
    id: str
    from_state: str
    to_state: str
    class_index: int | None
    fault: bool | None
    confidence: float
    ts: float
    since: float | None
    reason: str
    closest_class: str | None = None
    closest_probability: float | None = None
    novelty_score: float | None = None


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """The current state of one sensor (the retained state topic; payload: :mod:`runtime.results`)."""

    sensor_id: str
    state: str
    class_index: int | None
    fault: bool | None
    confidence: float
    since: float | None
    seq: int
    windows: int
    closest_class: str | None = None
    closest_probability: float | None = None
    novelty_score: float | None = None


class FaultStateTracker:
    """The state machine of one sensor; call :meth:`update` with each window's probabilities."""

    def __init__(
        self,
        sensor_id: str,
        classes: Sequence[str],
        healthy_class: str,
        config: FaultStateConfig | None = None,
        start_seq: int = 0,
    ) -> None:
        if healthy_class not in classes:
            raise ConfigError(
                f"healthy class {healthy_class!r} is not one of the model's classes {list(classes)}; "
                "use a class name from the model metadata"
            )
        self.sensor_id = sensor_id
        self.classes = list(classes)
        self.healthy_index = self.classes.index(healthy_class)
        self.config = config if config is not None else FaultStateConfig()
        #: the numbers live in a row of a StateArray (its own until the daemon moves it into the
        #: array its model's sensors share: runtime.state_array, updated per batch)
        self._a = self.new_array()
        self._r = self._a.add_row()
        self._seq = int(start_seq)
        self._since: float | None = None
        #: novelty overlay (UNFAMILIAR/ANOMALOUS) and the closest class, probability and smoothed score
        self._novel: str | None = None
        self._closest: tuple[int, float, float] | None = None
        self._novel_since: float | None = None

    # -- the row of the state array ----------------------------------------------------------------

    @property
    def array(self) -> StateArray:
        """The :class:`StateArray` holding this sensor's numbers (shared once the daemon moved it)."""
        return self._a

    @property
    def row(self) -> int:
        return self._r

    @property
    def array_key(self) -> tuple[str, int]:
        """Trackers with equal keys can share one :class:`StateArray` (same config, class count)."""
        return self.config.model_dump_json(), len(self.classes)

    def new_array(self, capacity: int = 1) -> StateArray:
        """An empty :class:`StateArray` for trackers with this one's :attr:`array_key`."""
        c = self.config
        return StateArray(len(self.classes), c.smoothing, c.history, c.enter_threshold, c.exit_threshold,
                          c.min_duration_s, c.min_windows, c.required_votes, capacity=capacity)

    def move_to(self, array: StateArray) -> None:
        """Carry this tracker's numbers into a new row of ``array`` (built with the same key)."""
        row = array.add_row()
        array.copy_row(self._a, self._r, row)
        self._a, self._r = array, row

    @property
    def _state(self) -> int | None:
        v = int(self._a.state[self._r])
        return None if v < 0 else v

    @property
    def _no_data(self) -> bool:
        return bool(self._a.no_data[self._r])

    @property
    def _windows(self) -> int:
        return int(self._a.windows[self._r])

    @property
    def _confidence(self) -> float:
        return float(self._a.confidence[self._r])

    def _set(self, state: int | None, since: float | None, confidence: float) -> None:
        """Set the class state (None: unknown) and clear the pending change."""
        a, r = self._a, self._r
        a.state[r] = -1 if state is None else state
        a.confidence[r] = confidence
        a.pending[r] = -1
        self._since = since

    @property
    def seq(self) -> int:
        """Sequence number of the last event (persist it; pass it back as ``start_seq``)."""
        return self._seq

    @property
    def state(self) -> str:
        if self._no_data:
            return NO_DATA
        if self._novel is not None:
            return self._novel
        return UNKNOWN if self._state is None else self.classes[self._state]

    @property
    def novel(self) -> str | None:
        """The novelty label laid over the class state (UNFAMILIAR, ANOMALOUS), or None."""
        return self._novel

    @property
    def no_data(self) -> bool:
        """True while the sensor is in the ``no_data`` state."""
        return self._no_data

    def snapshot(self) -> StateSnapshot:
        if self._novel is not None and not self._no_data and self._closest is not None:
            k, p, score = self._closest
            return StateSnapshot(self.sensor_id, self._novel, None, None, p, self._novel_since, self._seq,
                                 self._windows, self.classes[k], p, score)
        idx = self._state
        return StateSnapshot(
            self.sensor_id, self.state, idx, None if idx is None else idx != self.healthy_index,
            self._confidence, self._since, self._seq, self._windows,
        )

    def set_novelty(self, label: str | None, closest: int, probability: float, score: float,
                    ts: float) -> StateChange | None:
        """Lay ``label`` (UNFAMILIAR, ANOMALOUS) over the class state, or lift it with None; a change
        when the overlay changes. ``closest``/``probability``: the window's top class and its
        probability, ``score``: the smoothed novelty score (all carried in the state while flagged)."""
        if self._no_data:
            return None
        if label is not None:
            self._closest = (int(closest), float(probability), float(score))
        if label == self._novel:
            return None
        self._seq += 1
        if label is not None:
            event = StateChange(
                self.sensor_id, self._seq, str(uuid.uuid4()), self.state, label, None, None,
                float(probability), ts, self._novel_since if self._novel is not None else self._since,
                f"{label}: novelty score {score:.3g} past its threshold",
                self.classes[int(closest)], float(probability), float(score),
            )
            self._novel, self._novel_since = label, ts
        else:
            idx = self._state
            event = StateChange(
                self.sensor_id, self._seq, str(uuid.uuid4()), self.state, UNKNOWN if idx is None
                else self.classes[idx], idx, None if idx is None else idx != self.healthy_index,
                self._confidence, ts, self._novel_since,
                f"novelty score {score:.3g} back below its threshold",
            )
            self._novel, self._closest = None, None
            self._since = ts
        log.info("sensor %s: %s -> %s (novelty score %.3g)", self.sensor_id, event.from_state, event.to_state,
                 score)
        return event

    def update(
        self, probs: np.ndarray | Sequence[float], ts: float, now: float | None = None
    ) -> StateChange | None:
        """Feed one window's class probabilities; return a change or None.

        ``ts`` (Unix seconds) labels the events; ``now`` is the clock that ``min_duration_s`` is
        measured on (the daemon passes local monotonic time; default: ``ts``). The daemon feeds
        whole batches through :func:`step_rows` instead; both run the same array code.
        """
        p = self._checked(probs)
        outcome = self._a.step(np.array([self._r]), p[None, :], np.array([ts if now is None else now]))
        if outcome.resumed.size:
            return self.resume(ts)
        if outcome.fired.size:
            return self.fire(int(outcome.target[0]), float(outcome.score[0]), ts)
        return None

    def resume(self, ts: float) -> StateChange:
        """The first window after a silence (the array saw it): data is back, the warm-up starts over."""
        self._a.no_data[self._r] = False
        return self._change(None, 0.0, ts, "data resumed", from_state=NO_DATA)

    def fire(self, target: int, score: float, ts: float) -> StateChange | None:
        """A change to ``target`` is due (the array decided it): the event, or a silent change of the
        class under the novelty overlay."""
        if self._novel is not None:  # under the novelty overlay the class changes without an event
            self._set(target, ts, score)
            return None
        return self._change(target, score, ts, self.config.smoothing)

    def reset(self, ts: float, reason: str = "reset") -> StateChange | None:
        """Forget the history and return to 'unknown' (e.g. a new model will judge)."""
        previous = self.state
        self._forget()
        if self._state is None and not self._no_data and previous == UNKNOWN:
            return None
        self._a.no_data[self._r] = False
        return self._change(None, 0.0, ts, reason, from_state=previous)

    def mark_no_data(self, ts: float, reason: str = "no data") -> StateChange | None:
        """Enter ``no_data`` (the watchdog saw no windows for too long); None when already there."""
        if self._no_data:
            return None
        previous = self.state
        self._forget()
        change = self._change(None, 0.0, ts, reason, from_state=previous, to_label=NO_DATA)
        self._a.no_data[self._r] = True
        return change

    def _forget(self) -> None:
        self._novel = self._closest = None
        self._a.forget(self._r)

    def _checked(self, probs: np.ndarray | Sequence[float]) -> np.ndarray:
        p = np.asarray(probs, dtype=np.float32)
        if p.shape != (len(self.classes),) or not np.isfinite(p).all():
            raise DataError(
                f"sensor {self.sensor_id!r}: expected {len(self.classes)} finite class probabilities, got "
                f"shape {p.shape}; the model's output does not match its metadata classes"
            )
        return p

    def _change(self, to: int | None, confidence: float, ts: float, reason: str,
                from_state: str | None = None, to_label: str | None = None) -> StateChange:
        """Record and return a change to class ``to`` (None: unknown, or ``to_label`` when given)."""
        self._seq += 1
        event = StateChange(
            sensor_id=self.sensor_id,
            seq=self._seq,
            id=str(uuid.uuid4()),
            from_state=self.state if from_state is None else from_state,
            to_state=to_label or (UNKNOWN if to is None else self.classes[to]),
            class_index=to,
            fault=None if to is None else to != self.healthy_index,
            confidence=confidence,
            ts=ts,
            since=self._since,
            reason=reason,
        )
        self._set(to, ts, confidence)
        log.info("sensor %s: %s -> %s (confidence %.2f)", self.sensor_id, event.from_state, event.to_state,
                 confidence)
        return event


def step_rows(trackers: Sequence[FaultStateTracker], probs: np.ndarray, ts: Sequence[float],
              now: Sequence[float]) -> list[tuple[int, StateChange]]:
    """Advance several trackers of one :class:`StateArray` by one window each, in one array step.

    ``trackers`` must be distinct and share one array (see :meth:`FaultStateTracker.move_to`);
    ``probs`` (n, K) finite float32, one row per tracker. Returns ``(position, change)`` for the
    trackers whose state changed; the others cost no Python work beyond this call.
    """
    array = trackers[0].array
    rows = np.fromiter((t.row for t in trackers), dtype=np.int64, count=len(trackers))
    outcome = array.step(rows, probs, np.asarray(now, dtype=np.float64))
    changes: list[tuple[int, StateChange]] = []
    for i in outcome.resumed.tolist():
        changes.append((i, trackers[i].resume(ts[i])))
    for i, target, score in zip(outcome.fired.tolist(), outcome.target.tolist(), outcome.score.tolist(),
                                strict=True):
        change = trackers[i].fire(target, score, ts[i])
        if change is not None:
            changes.append((i, change))
    return changes
