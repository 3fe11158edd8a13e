"""The result router steps whole batches through the shared state arrays and publishes the same
events, in the same order, as each sensor's own per-window state machine would."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from runtime.batching import BatchResult
from runtime.config import validate_config_dict
from runtime.fault_state import FaultStateConfig, FaultStateTracker
from runtime.metrics import Metrics
from runtime.pipeline import SensorPipeline
from runtime.results_router import ResultRouter
from runtime.windowing import Window

CLASSES = ["normal", "ball", "inner_race", "outer_race"]
MODEL = Path(__file__).resolve().parents[2] / "drsn_edge" / "assets" / "drsn_cw_sim.onnx"


class FakePublisher:
    """The MQTT boundary: records the events and states it is handed, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.states: list[str] = []

    def publish_events(self, events: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        self.events.extend(events)
        return []

    def publish_state(self, sensor: str, payload: Any) -> None:
        self.states.append(sensor)


def _sensor(sid: str, model: Any, cfg: FaultStateConfig) -> SensorPipeline:
    tracker = FaultStateTracker(sid, CLASSES, "normal", cfg)
    return SensorPipeline(sid, 12000.0, model, windower=None, tracker=tracker,  # type: ignore[arg-type]
                          local_clock=False)


def test_batches_with_two_configs_and_repeated_sensors_give_the_per_window_events() -> None:
    config = validate_config_dict({"model": str(MODEL), "sources": [
        {"type": "replay", "files": [{"id": "x", "path": str(MODEL)}]}]})
    identity = {"name": "m", "version": "1", "sha256": "0" * 64, "precision": "fp32", "backend": "null"}
    model = SimpleNamespace(identity=identity, scorer=None, metadata=SimpleNamespace(classes=CLASSES))
    quick = FaultStateConfig(history=3, min_windows=2, enter_threshold=0.5, exit_threshold=0.4)
    slow = FaultStateConfig(history=5, min_windows=5, min_duration_s=0.25)
    sensors = {f"s{i}": _sensor(f"s{i}", model, quick if i % 2 else slow) for i in range(5)}
    alone = {sid: FaultStateTracker(sid, CLASSES, "normal", quick if int(sid[1:]) % 2 else slow)
             for sid in sensors}
    pub = FakePublisher()
    router = ResultRouter(config, Metrics(), sensors, threading.Lock(), lambda: pub)  # type: ignore[arg-type,return-value]
    rng = np.random.default_rng(11)
    expected: list[tuple[str, int, str]] = []
    for b in range(150):
        # each batch: every sensor twice (two rounds), shuffled, one class drifting per sensor
        order = [f"s{i}" for i in range(5)] * 2
        rng.shuffle(order)
        windows, rows = [], []
        for k, sid in enumerate(order):
            cls = ((b + 3 * int(sid[1:])) // 4 + int(sid[1:])) % len(CLASSES)
            p = np.full(len(CLASSES), 0.1, dtype=np.float32)
            p[cls] = 0.7 + 0.2 * rng.random()
            p /= p.sum()
            ts = 100.0 + b * 0.1 + k * 0.001
            windows.append(Window(sid, b * 10 + k, np.zeros((1, 8), np.float32), None, time.monotonic(), ts))
            rows.append(p)
            change = alone[sid].update(p, ts)
            if change is not None:
                expected.append((sid, change.seq, change.to_state))
        probs = np.stack(rows)
        router.on_batch(BatchResult(windows, np.log(probs), probs, 0.001, time.monotonic()))
    got = [(sid, e["seq"], e["to"]) for sid, e in pub.events]
    assert len(expected) > 10
    assert got == expected  # same events, in window order across the batch
    assert len({id(sp.tracker.array) for sp in sensors.values()}) == 2  # one array per config
    router.flush_counts()
    assert router.metrics.snapshot()["windows"]["total"] == 150 * 10


def test_changes_leave_in_window_order_not_in_round_order() -> None:
    config = validate_config_dict({"model": str(MODEL), "sources": [
        {"type": "replay", "files": [{"id": "x", "path": str(MODEL)}]}]})
    identity = {"name": "m", "version": "1", "sha256": "0" * 64, "precision": "fp32", "backend": "null"}
    model = SimpleNamespace(identity=identity, scorer=None, metadata=SimpleNamespace(classes=CLASSES))
    now = FaultStateConfig(history=1, min_windows=1, enter_threshold=0.5, exit_threshold=0.5)
    sensors = {sid: _sensor(sid, model, now) for sid in ("a", "b")}
    pub = FakePublisher()
    router = ResultRouter(config, Metrics(), sensors, threading.Lock(), lambda: pub)  # type: ignore[arg-type,return-value]
    normal = np.array([0.97, 0.01, 0.01, 0.01], np.float32)
    ball = np.array([0.01, 0.97, 0.01, 0.01], np.float32)

    def batch(*rows: tuple[str, np.ndarray]) -> BatchResult:
        ws = [Window(sid, i, np.zeros((1, 8), np.float32), None, time.monotonic(), 10.0 + i)
              for i, (sid, _) in enumerate(rows)]
        probs = np.stack([p for _, p in rows])
        return BatchResult(ws, np.log(probs), probs, 0.001, time.monotonic())

    router.on_batch(batch(("a", normal), ("b", normal)))
    # a's change comes from its second window (round 2) at row 1, b's from its first (round 1) at row 2
    router.on_batch(batch(("a", normal), ("a", ball), ("b", ball)))
    assert [(sid, e["to"]) for sid, e in pub.events] == [
        ("a", "normal"), ("b", "normal"), ("a", "ball"), ("b", "ball")]


@pytest.mark.parametrize("counts", ["mixed", "equal"])
def test_sensors_whose_windows_change_nothing_advance_in_one_pass_as_window_by_window(counts: str) -> None:
    # one config (the one-pass path applies): several windows per sensor and batch, mostly quiet
    # stretches with jumps between them, against each sensor's own per-window state machine;
    # "equal": every sensor as many windows in a batch (the grid pass, StateArray.advance_quiet_grid)
    config = validate_config_dict({"model": str(MODEL), "sources": [
        {"type": "replay", "files": [{"id": "x", "path": str(MODEL)}]}]})
    identity = {"name": "m", "version": "1", "sha256": "0" * 64, "precision": "fp32", "backend": "null"}
    model = SimpleNamespace(identity=identity, scorer=None, metadata=SimpleNamespace(classes=CLASSES))
    cfg = FaultStateConfig(history=4, min_windows=3, enter_threshold=0.6, exit_threshold=0.45,
                           min_duration_s=0.02)
    sensors = {f"s{i}": _sensor(f"s{i}", model, cfg) for i in range(6)}
    alone = {sid: FaultStateTracker(sid, CLASSES, "normal", cfg) for sid in sensors}
    pub = FakePublisher()
    router = ResultRouter(config, Metrics(), sensors, threading.Lock(), lambda: pub)  # type: ignore[arg-type,return-value]
    rng = np.random.default_rng(5)
    cls = {sid: 0 for sid in sensors}
    expected: list[tuple[str, int, str, float]] = []
    t = 100.0
    for b in range(300):
        each = int(rng.integers(1, 4))  # 1 to 3 windows each
        order = [sid for sid in sensors
                 for _ in range(each if counts == "equal" else int(rng.integers(1, 4)))]
        rng.shuffle(order)
        windows, rows = [], []
        for k, sid in enumerate(order):
            if rng.random() < 0.03:
                cls[sid] = int(rng.integers(len(CLASSES)))
            p = rng.dirichlet(np.ones(len(CLASSES))).astype(np.float32) * 0.4
            p[cls[sid]] += 0.6
            t += 0.004
            windows.append(Window(sid, b * 10 + k, np.zeros((1, 8), np.float32), None, time.monotonic(), t))
            rows.append(p)
            change = alone[sid].update(p, t)
            if change is not None:
                expected.append((sid, change.seq, change.to_state, round(change.confidence, 6)))
        probs = np.stack(rows)
        router.on_batch(BatchResult(windows, np.log(probs), probs, 0.001, time.monotonic()))
    got = [(sid, e["seq"], e["to"], e["confidence"]) for sid, e in pub.events]
    assert len(expected) > 20
    assert got == expected
    for sid, sp in sensors.items():  # the numbers the one pass left behind match too
        mine, theirs = sp.tracker.snapshot(), alone[sid].snapshot()
        assert (mine.state, mine.windows, mine.seq) == (theirs.state, theirs.windows, theirs.seq)
        assert mine.confidence == pytest.approx(theirs.confidence, abs=1e-9)


@pytest.mark.parametrize("layout", ["shuffled", "rounds", "blocks"])
def test_novelty_flags_and_the_one_pass_give_the_per_window_events(layout: str) -> None:
    # sensors flagged before a batch go round by round, the others take the one pass; familiar and
    # unfamiliar stretches of features, one to three windows per sensor and batch (rounds, blocks: as
    # many for every sensor, in sensor order or each sensor's side by side, the shapes whose novelty
    # flags step in one pass while none moves)
    even = layout != "shuffled"
    from runtime.novelty.route import window_novelty
    from runtime.novelty.sensor import NoveltyConfig, SensorNovelty
    from runtime.novelty.stats import NoveltyScorer, fit_novelty

    rng = np.random.default_rng(8)
    centres = np.eye(len(CLASSES), 6) * 5.0 + 1.0
    y = rng.integers(0, len(CLASSES), 400)
    scorer = NoveltyScorer(fit_novelty(centres[y] + rng.normal(size=(400, 6)), y, CLASSES))
    config = validate_config_dict({"model": str(MODEL), "sources": [
        {"type": "replay", "files": [{"id": "x", "path": str(MODEL)}]}]})
    identity = {"name": "m", "version": "1", "sha256": "0" * 64, "precision": "fp32", "backend": "null"}
    model = SimpleNamespace(identity=identity, scorer=scorer, metadata=SimpleNamespace(classes=CLASSES))
    cfg = FaultStateConfig(history=3, min_windows=2, enter_threshold=0.6, exit_threshold=0.45)
    ncfg = NoveltyConfig(threshold=6.0, history=3, min_windows=2)

    def pipeline(sid: str) -> SensorPipeline:
        sp = _sensor(sid, model, cfg)
        sp.novelty = SensorNovelty(sid, scorer, ncfg, model_sha256="0" * 64)
        return sp

    sensors = {f"s{i}": pipeline(f"s{i}") for i in range(5)}
    alone = {sid: pipeline(sid) for sid in sensors}
    pub = FakePublisher()
    metrics = Metrics()
    router = ResultRouter(config, metrics, sensors, threading.Lock(), lambda: pub)  # type: ignore[arg-type,return-value]
    scored = 0
    cls = {sid: 0 for sid in sensors}
    strange = {sid: False for sid in sensors}
    expected: list[tuple[str, int, str, float]] = []
    t = 50.0
    for b in range(250):
        if layout == "rounds":
            order = [sid for _ in range(int(rng.integers(1, 4))) for sid in sensors]
        elif layout == "blocks":
            k = int(rng.integers(1, 4))
            order = [sid for sid in sensors for _ in range(k)]
        else:
            order = [sid for sid in sensors for _ in range(int(rng.integers(1, 4)))]
            rng.shuffle(order)
        windows, rows, feats = [], [], []
        for k, sid in enumerate(order):
            if rng.random() < 0.04:
                cls[sid] = int(rng.integers(len(CLASSES)))
            if rng.random() < (0.01 if even else 0.05):  # even: longer familiar spells
                strange[sid] = not strange[sid]
            p = rng.dirichlet(np.ones(len(CLASSES))).astype(np.float32) * 0.35
            p[cls[sid]] += 0.65
            f = centres[cls[sid]] + rng.normal(size=6) + (12.0 if strange[sid] else 0.0)
            t += 0.003
            windows.append(Window(sid, b * 10 + k, np.zeros((1, 8), np.float32), None, time.monotonic(), t))
            rows.append(p)
            feats.append(f)
            sp = alone[sid]
            for change in (sp.tracker.update(p, t),
                           window_novelty(sp, f.astype(np.float32), p, float(scorer.score(f[None])[0]), t)):
                if change is not None:
                    expected.append((sid, change.seq, change.to_state, round(change.confidence, 6)))
        probs = np.stack(rows)
        router.on_batch(BatchResult(windows, np.log(probs), probs, 0.001, time.monotonic(),
                                    np.stack(feats).astype(np.float32)))
        scored += len(windows)
    got = [(sid, e["seq"], e["to"], e["confidence"]) for sid, e in pub.events]
    assert sum(to == "unfamiliar" for _, _, to, _ in expected) >= 5
    assert got == expected
    # every window's score is in the histogram once the router's periodic flush has run
    router.flush_counts()
    assert metrics.registry.get_sample_value("drsn_edge_novelty_score_count") == scored
    # the benchmark's account of the novelty path's CPU saw it run; a router without novelty adds none
    assert router.novelty_cpu_s > 0
    for sp in sensors.values():
        sp.novelty = None
    before = router.novelty_cpu_s
    router.on_batch(BatchResult(windows, np.log(probs), probs, 0.001, time.monotonic(),
                                np.stack(feats).astype(np.float32)))
    assert router.novelty_cpu_s == before


def test_a_rebuilt_sensor_is_picked_up_and_a_sensor_no_longer_served_is_skipped() -> None:
    config = validate_config_dict({"model": str(MODEL), "sources": [
        {"type": "replay", "files": [{"id": "x", "path": str(MODEL)}]}]})
    identity = {"name": "m", "version": "1", "sha256": "0" * 64, "precision": "fp32", "backend": "null"}
    model = SimpleNamespace(identity=identity, scorer=None, metadata=SimpleNamespace(classes=CLASSES))
    cfg = FaultStateConfig(history=2, min_windows=1, enter_threshold=0.5, exit_threshold=0.4)
    sensors = {sid: _sensor(sid, model, cfg) for sid in ("a", "b", "c")}
    pub = FakePublisher()
    router = ResultRouter(config, Metrics(), sensors, threading.Lock(), lambda: pub)  # type: ignore[arg-type,return-value]
    normal = np.array([0.97, 0.01, 0.01, 0.01], np.float32)

    def batch(*ids: str) -> BatchResult:
        ws = [Window(sid, i, np.zeros((1, 8), np.float32), None, time.monotonic(), 10.0 + i)
              for i, sid in enumerate(ids)]
        probs = np.stack([normal] * len(ids))
        return BatchResult(ws, np.log(probs), probs, 0.001, time.monotonic())

    router.on_batch(batch("a", "b", "c", "a"))
    old = sensors["b"]
    sensors["b"] = _sensor("b", model, cfg)  # a reload builds a new pipeline and tracker
    del sensors["c"]  # and a sensor may leave
    router.on_batch(batch("b", "c", "a", "b"))
    assert old.tracker.snapshot().windows == 1  # the old tracker saw only the first batch
    assert sensors["b"].tracker.snapshot().windows == 2  # the new one took both of its windows
    assert sensors["a"].tracker.snapshot().windows == 3
    assert sensors["b"].tracker.array is sensors["a"].tracker.array  # moved into the shared array
    router.flush_counts()
    by_sensor = router.metrics.snapshot()["windows"]["by_sensor"]
    assert by_sensor == {"a": 3.0, "b": 3.0, "c": 1.0}  # c's window of the second batch was not served


class _Model:
    """A served model as the router sees it (identity, scorer, metadata); weak-referenceable."""

    def __init__(self, version: str) -> None:
        self.identity = {"name": "m", "version": version, "sha256": "0" * 64, "precision": "fp32",
                         "backend": "null"}
        self.scorer = None
        self.metadata = SimpleNamespace(classes=CLASSES)


def test_after_a_reload_the_new_models_arrays_are_used_and_the_old_model_is_let_go() -> None:
    import gc
    import weakref

    config = validate_config_dict({"model": str(MODEL), "sources": [
        {"type": "replay", "files": [{"id": "x", "path": str(MODEL)}]}]})
    cfg = FaultStateConfig(history=2, min_windows=1, enter_threshold=0.5, exit_threshold=0.4)
    old_model = _Model("1")
    sensors = {sid: _sensor(sid, old_model, cfg) for sid in ("a", "b", "c")}
    pub = FakePublisher()
    router = ResultRouter(config, Metrics(), sensors, threading.Lock(), lambda: pub)  # type: ignore[arg-type,return-value]
    ball = np.array([0.01, 0.97, 0.01, 0.01], np.float32)

    def batch(*ids: str) -> BatchResult:
        ws = [Window(sid, i, np.zeros((1, 8), np.float32), None, time.monotonic(), 10.0 + i)
              for i, sid in enumerate(ids)]
        probs = np.stack([ball] * len(ids))
        return BatchResult(ws, np.log(probs), probs, 0.001, time.monotonic())

    router.on_batch(batch("a", "b", "c"))
    old_array = weakref.ref(sensors["a"].tracker.array)
    gone = weakref.ref(old_model)
    # the daemon's reload: every user of the old model gets a new pipeline on the new model (same
    # fault-state config, so the same array key), and a sensor may leave with it
    new_model = _Model("2")
    sensors.update({sid: _sensor(sid, new_model, cfg) for sid in ("a", "b")})
    del sensors["c"], old_model
    router.on_batch(batch("a", "b", "a", "c"))
    arrays = {id(sp.tracker.array) for sp in sensors.values()}
    assert len(arrays) == 1 and sensors["a"].tracker.array is not old_array()  # the new model's array
    assert [sp.tracker.snapshot().windows for sp in sensors.values()] == [2, 1]  # c's window skipped
    assert router.arrays.models() == [new_model]
    gc.collect()
    assert gone() is None and old_array() is None  # nothing in the router holds the old model
    router.on_batch(batch("b", "a"))  # and the router keeps stepping the new array
    assert [sp.tracker.snapshot().windows for sp in sensors.values()] == [3, 2]
    # the new trackers start from unknown (the daemon's reload leaves the old state with an event)
    assert [(sid, e["to"]) for sid, e in pub.events] == [("a", "ball"), ("b", "ball"), ("c", "ball"),
                                                         ("a", "ball"), ("b", "ball")]


def test_a_repeated_batch_shape_still_notices_rebuilt_and_departed_sensors_and_counts_every_window() -> None:
    # the router keeps a batch shape's rounds and columns while the same sensors arrive in the same
    # order (SensorTable.rows_of); a rebuilt or departed sensor between two such batches must still
    # be picked up, and the window counters must count every batch of a kept shape
    config = validate_config_dict({"model": str(MODEL), "sources": [
        {"type": "replay", "files": [{"id": "x", "path": str(MODEL)}]}]})
    identity = {"name": "m", "version": "1", "sha256": "0" * 64, "precision": "fp32", "backend": "null"}
    model = SimpleNamespace(identity=identity, scorer=None, metadata=SimpleNamespace(classes=CLASSES))
    cfg = FaultStateConfig(history=3, min_windows=1, enter_threshold=0.5, exit_threshold=0.4)
    sensors = {sid: _sensor(sid, model, cfg) for sid in ("a", "b", "c")}
    pub = FakePublisher()
    router = ResultRouter(config, Metrics(), sensors, threading.Lock(), lambda: pub)  # type: ignore[arg-type,return-value]
    normal = np.array([0.97, 0.01, 0.01, 0.01], np.float32)
    ball = np.array([0.01, 0.97, 0.01, 0.01], np.float32)

    def batch(p: np.ndarray) -> BatchResult:
        ids = ("a", "a", "b", "b", "c", "c")  # the same shape every time
        ws = [Window(sid, i, np.zeros((1, 8), np.float32), None, time.monotonic(), 10.0 + i)
              for i, sid in enumerate(ids)]
        probs = np.stack([p] * len(ids))
        return BatchResult(ws, np.log(probs), probs, 0.001, time.monotonic())

    for _ in range(3):
        router.on_batch(batch(normal))
    router.flush_counts()  # in the middle of a kept shape's run
    old = sensors["b"]
    sensors["b"] = _sensor("b", model, cfg)  # a reload between two batches of the same shape
    router.on_batch(batch(normal))
    del sensors["c"]
    for _ in range(2):
        router.on_batch(batch(ball))
    assert old.tracker.snapshot().windows == 6
    assert [sp.tracker.snapshot().windows for sp in sensors.values()] == [12, 6]
    assert [(sid, e["to"]) for sid, e in pub.events] == [("a", "normal"), ("b", "normal"), ("c", "normal"),
                                                         ("b", "normal"), ("a", "ball"), ("b", "ball")]
    router.flush_counts()
    by_sensor = router.metrics.snapshot()["windows"]["by_sensor"]
    assert by_sensor == {"a": 12.0, "b": 12.0, "c": 8.0}  # c's windows after it left are not counted


def test_a_sensor_served_after_its_batch_shape_was_kept_gets_its_windows() -> None:
    # a kept shape holds a sensor that is not served (yet): once a pipeline serves it, the next
    # batch of the same shape must step and count it, not replay the kept shape that skipped it
    config = validate_config_dict({"model": str(MODEL), "sources": [
        {"type": "replay", "files": [{"id": "x", "path": str(MODEL)}]}]})
    identity = {"name": "m", "version": "1", "sha256": "0" * 64, "precision": "fp32", "backend": "null"}
    model = SimpleNamespace(identity=identity, scorer=None, metadata=SimpleNamespace(classes=CLASSES))
    cfg = FaultStateConfig(history=3, min_windows=1, enter_threshold=0.5, exit_threshold=0.4)
    sensors = {"a": _sensor("a", model, cfg)}
    router = ResultRouter(config, Metrics(), sensors, threading.Lock(), lambda: FakePublisher())  # type: ignore[arg-type,return-value]
    normal = np.array([0.97, 0.01, 0.01, 0.01], np.float32)

    def batch() -> BatchResult:
        ws = [Window(sid, i, np.zeros((1, 8), np.float32), None, time.monotonic(), 10.0 + i)
              for i, sid in enumerate(("a", "a", "x", "x"))]
        probs = np.stack([normal] * 4)
        return BatchResult(ws, np.log(probs), probs, 0.001, time.monotonic())

    for _ in range(3):
        router.on_batch(batch())
    sensors["x"] = _sensor("x", model, cfg)
    for _ in range(2):
        router.on_batch(batch())
    assert [sp.tracker.snapshot().windows for sp in sensors.values()] == [10, 4]
    router.flush_counts()
    assert router.metrics.snapshot()["windows"]["by_sensor"] == {"a": 10.0, "x": 4.0}
