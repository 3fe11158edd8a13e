"""The shared arrays: one per model and fault-state config; a reload's new model gets new ones, the
old model's are dropped, and group numbers are never handed out twice."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from runtime.fault_state import FaultStateConfig, FaultStateTracker
from runtime.pipeline import SensorPipeline
from runtime.results_arrays import SharedArrays

CLASSES = ["normal", "ball", "inner_race", "outer_race"]
QUICK = FaultStateConfig(history=2, min_windows=1)
SLOW = FaultStateConfig(history=5, min_windows=5)


def _sensor(sid: str, model: Any, cfg: FaultStateConfig) -> SensorPipeline:
    tracker = FaultStateTracker(sid, CLASSES, "normal", cfg)
    return SensorPipeline(sid, 12000.0, model, windower=None, tracker=tracker,  # type: ignore[arg-type]
                          local_clock=False)


def test_arrays_per_model_and_config_and_a_reload_drops_the_old_models() -> None:
    arrays = SharedArrays()
    old = SimpleNamespace(name="old")
    sensors = {"a": _sensor("a", old, QUICK), "b": _sensor("b", old, QUICK), "c": _sensor("c", old, SLOW)}
    got = {sid: arrays.attach(sp, sensors) for sid, sp in sensors.items()}
    assert got == {"a": (0, False), "b": (0, False), "c": (1, False)}
    assert sensors["a"].tracker.array is sensors["b"].tracker.array is arrays.by_group[0]
    assert sensors["c"].tracker.array is arrays.by_group[1] and arrays.models() == [old]
    assert arrays.attach(sensors["a"], sensors) == (0, False)  # once per tracker: nothing moves again

    new = SimpleNamespace(name="new")  # a reload: every user of the old model rebuilt on the new one
    sensors.update({sid: _sensor(sid, new, sp.tracker.config) for sid, sp in sensors.items()})
    assert arrays.attach(sensors["c"], sensors) == (2, True)  # the old model's arrays dropped here
    assert arrays.attach(sensors["a"], sensors) == (3, False)  # numbers 0 and 1 are not reused
    assert sorted(arrays.by_group) == [2, 3] and arrays.models() == [new]
