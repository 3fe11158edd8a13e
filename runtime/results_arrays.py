"""The state arrays the result router steps: one per model and fault-state config, one flag array per
model and novelty smoothing.

Why apart from the router: which array a sensor's numbers live in changes only when a sensor is
first seen or rebuilt (a reload), while the router's job is the per-batch step. A reload replaces
the model object: the arrays made for the old one are dropped here as soon as the new one gets
its own, so nothing keeps the old model (its backend, scorer, metadata) alive.

No locks: the daemon's state lock covers every caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.novelty.smoothing import FlagArray, SmoothingSpec
from runtime.pipeline import SensorPipeline
from runtime.state_array import StateArray


class SharedArrays:
    """Every sensor's fault-state tracker and novelty flag, moved into arrays shared per model.

    Each state array has a group number (what :class:`~runtime.results_table.SensorTable` keeps per
    sensor); numbers are never reused, so a sensor recorded under a forgotten group cannot reach
    another array.
    """

    def __init__(self) -> None:
        #: (id of the model, config key) -> (the model, its array); the model is kept to tell a new
        #: model that got a freed model's id from the old one
        self._arrays: dict[tuple[int, str, int], tuple[Any, StateArray]] = {}
        self._flags: dict[tuple[int, SmoothingSpec], tuple[Any, FlagArray]] = {}
        #: group number -> its StateArray, and StateArray id -> group number
        self.by_group: dict[int, StateArray] = {}
        self._groups: dict[int, int] = {}
        self._next_group = 0

    def models(self) -> list[Any]:
        """The models that have arrays here, once each (for tests and checks)."""
        return list({id(m): m for m, _ in self._arrays.values()}.values())

    def attach(self, sp: SensorPipeline, sensors: Mapping[str, SensorPipeline]) -> tuple[int, bool]:
        """Move ``sp``'s tracker (and novelty flag) into the arrays of its model and config, once per
        tracker; its group number, and whether arrays of models no longer served were just dropped
        (a reload: the caller forgets its own records of the old pipelines)."""
        tracker = sp.tracker
        key = (id(sp.model), *tracker.array_key)
        found = self._arrays.get(key)
        forgot = False
        if found is None or found[0] is not sp.model:
            forgot = self._forget_unused(sensors)  # a new model (a reload): let the one it replaced go
            found = (sp.model, tracker.new_array(capacity=len(sensors)))
            self._arrays[key] = found
        array = found[1]
        if tracker.array is not array:
            tracker.move_to(array)
        flag = sp.novelty.flag if sp.novelty is not None else None
        if flag is not None:  # the novelty flags of a model's sensors step together too
            fkey = (id(sp.model), flag.spec)
            flags = self._flags.get(fkey)
            if flags is None or flags[0] is not sp.model:
                flags = self._flags[fkey] = (sp.model, FlagArray(flag.spec, len(sensors)))
            if flag.array is not flags[1]:
                flag.move_to(flags[1])
        group = self._groups.get(id(array))
        if group is None:
            group = self._groups[id(array)] = self._next_group
            self._next_group += 1
        self.by_group[group] = array
        return group, forgot

    def _forget_unused(self, sensors: Mapping[str, SensorPipeline]) -> bool:
        """Drop the arrays of models no served sensor uses; whether any were dropped."""
        live = {id(sp.model) for sp in sensors.values()}
        stale = [k for k, (model, _) in self._arrays.items() if id(model) not in live]
        for key in stale:
            group = self._groups.pop(id(self._arrays.pop(key)[1]), None)
            if group is not None:
                del self.by_group[group]
        for fkey in [k for k, (model, _) in self._flags.items() if id(model) not in live]:
            del self._flags[fkey]
        return bool(stale)
