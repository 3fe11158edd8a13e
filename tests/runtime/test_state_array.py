"""The per-batch fault state (one StateArray shared by many sensors) decides exactly as each
sensor's own per-window state machine: same events, same order, same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.fault_state import FaultStateConfig, FaultStateTracker, StateChange, step_rows

CLASSES = ["normal", "ball", "inner_race", "outer_race"]
CONFIGS = [
    FaultStateConfig(history=5, min_windows=5),
    FaultStateConfig(history=3, min_windows=2, enter_threshold=0.5, exit_threshold=0.4, min_duration_s=0.3),
    FaultStateConfig(smoothing="vote", history=5, votes=3, min_windows=4, exit_threshold=0.4),
    FaultStateConfig(smoothing="vote", history=4, min_windows=1, min_duration_s=0.2),
]


def _stream(rng: np.random.Generator, n: int) -> np.ndarray:
    """Probabilities that stay on one class for a while, then jump, with noisy windows between."""
    out = np.empty((n, len(CLASSES)), dtype=np.float32)
    cls = 0
    for i in range(n):
        if rng.random() < 0.08:
            cls = int(rng.integers(len(CLASSES)))
        logits = rng.normal(0, 1.0, len(CLASSES))
        logits[cls] += rng.uniform(0.0, 4.0)
        e = np.exp(logits - logits.max())
        out[i] = e / e.sum()
    return out


def _reference(cfg: FaultStateConfig, probs: np.ndarray, ts: list[float]) -> list[tuple[str, str, float]]:
    """The per-window rules written out plainly, without arrays: (from, to, ts) of every change."""
    state: int | None = None
    pending: int | None = None
    pending_since = 0.0
    hist: list[np.ndarray] = []
    out: list[tuple[str, str, float]] = []
    for n, (p, t) in enumerate(zip(probs, ts, strict=True), start=1):
        hist = [*hist, p][-cfg.history:]
        if n < cfg.min_windows:
            continue
        h = np.array(hist)
        if cfg.smoothing == "mean":
            scores = h.astype(np.float64).mean(axis=0)
        else:
            scores = np.bincount(h.argmax(axis=1), minlength=h.shape[1]) / len(h)
        top = int(scores.argmax())
        if top == state or (state is not None and scores[state] >= cfg.exit_threshold):
            target = None
        elif cfg.smoothing == "mean":
            target = top if scores[top] >= cfg.enter_threshold else None
        else:
            target = top if round(scores[top] * len(h)) >= cfg.required_votes else None
        if target is None:
            pending = None
            continue
        if pending != target:
            pending, pending_since = target, t
        if t - pending_since < cfg.min_duration_s:
            continue
        out.append(("unknown" if state is None else CLASSES[state], CLASSES[target], t))
        state, pending = target, None
    return out


@pytest.mark.parametrize("cfg", CONFIGS)
def test_the_array_follows_the_plain_rules(cfg: FaultStateConfig) -> None:
    probs = _stream(np.random.default_rng(5), 400)
    ts = [100.0 + 0.1 * i for i in range(len(probs))]
    t = FaultStateTracker("pump", CLASSES, "normal", cfg)
    got = [(c.from_state, c.to_state, c.ts) for p, w in zip(probs, ts, strict=True) if (c := t.update(p, w))]
    assert len(got) > 5
    assert got == _reference(cfg, probs, ts)


def _key(c: StateChange) -> tuple[object, ...]:
    return (c.sensor_id, c.seq, c.from_state, c.to_state, c.class_index, c.fault, c.confidence, c.ts, c.since,
            c.reason)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_batched_rounds_match_the_per_window_machine(cfg: FaultStateConfig) -> None:
    rng = np.random.default_rng(3)
    sensors, windows = 7, 300
    probs = {s: _stream(rng, windows) for s in range(sensors)}
    alone = [FaultStateTracker(f"s{s}", CLASSES, "normal", cfg) for s in range(sensors)]
    shared = [FaultStateTracker(f"s{s}", CLASSES, "normal", cfg) for s in range(sensors)]
    array = shared[0].new_array()
    for t in shared:
        t.move_to(array)
    expected: list[StateChange] = []
    got: list[StateChange] = []
    for w in range(windows):
        ts = 1000.0 + 0.1 * w
        for s in range(sensors):
            if s == 2 and w in (100, 200):  # a silence and its return, in the middle of the stream
                before, after = alone[s].mark_no_data(ts), shared[s].mark_no_data(ts)
                assert before is not None and after is not None
                expected.append(before)
                got.append(after)
            c = alone[s].update(probs[s][w], ts)
            if c is not None:
                expected.append(c)
        # the batch path: every sensor's window of this instant in one array step
        stacked = np.stack([probs[s][w] for s in range(sensors)])
        got.extend(c for _, c in step_rows(shared, stacked, [ts] * sensors, [ts] * sensors))
    assert len(expected) > 10  # the stream really changes state, or the comparison proves nothing
    assert sorted(map(_key, got)) == sorted(map(_key, expected))
    for a, b in zip(alone, shared, strict=True):
        assert a.snapshot() == b.snapshot()


def test_moving_a_tracker_keeps_its_history_and_the_array_grows() -> None:
    cfg = FaultStateConfig(history=3, min_windows=3)
    t = FaultStateTracker("pump", CLASSES, "normal", cfg)
    for _ in range(2):
        assert t.update([0.9, 0.05, 0.03, 0.02], 1.0) is None
    array = t.new_array(capacity=1)
    others = [FaultStateTracker(f"o{i}", CLASSES, "normal", cfg) for i in range(4)]
    for o in others:
        o.move_to(array)
    t.move_to(array)  # the array doubles beyond its capacity; the two windows come along
    change = t.update([0.9, 0.05, 0.03, 0.02], 1.2)
    assert change is not None and change.to_state == "normal" and t.row == 4
    assert all(o.snapshot().windows == 0 for o in others)
