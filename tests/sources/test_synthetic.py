"""The simulated source: exact counts when fast, the declared rate in real time, faults on schedule."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from runtime.signals.simulator import BearingSimulator
from runtime.sources.schedule import FaultPlan, SeverityRamp
from runtime.sources.synthetic import SyntheticSource, SyntheticSourceConfig
from tests.sources.collector import Collector


def _run_to_end(config: SyntheticSourceConfig) -> Collector:
    source = SyntheticSource(config)
    got = Collector()
    source.start(got.emit, got.on_error)
    try:
        assert source.finished.wait(10), "a budgeted fast source must finish"
    finally:
        source.stop()
    assert not source.running
    return got


def _config(**kw: Any) -> SyntheticSourceConfig:
    kw.setdefault("sensors", [{"id": "m1"}])
    kw.setdefault("pacing", "fast")
    return SyntheticSourceConfig.model_validate(kw)


def test_fast_mode_delivers_exact_counts_and_consecutive_seq() -> None:
    got = _run_to_end(_config(sensors=[{"id": "m1"}, {"id": "m2"}], chunk=1024, max_samples=5000,
                              sample_rate=8000))
    for sid in ("m1", "m2"):
        chunks = got.of(sid)
        assert [c.samples.size for c in chunks] == [1024] * 4 + [904]
        assert [c.seq for c in chunks] == [0, 1, 2, 3, 4]
        assert all(c.sample_rate == 8000 and c.samples.dtype == np.float32 for c in chunks)
        np.testing.assert_allclose(np.diff([c.t0 for c in chunks]), 1024 / 8000, atol=1e-6)
    assert got.errors == []


def test_duration_budget_and_seamless_stream() -> None:
    """The chunks, joined, are exactly what one simulator produces in one call."""
    got = _run_to_end(_config(sensors=[{"id": "a"}, {"id": "b", "rpm": 1500}], duration_s=0.5,
                              sample_rate=6000, chunk=700, seed=11))
    assert got.samples("a").size == got.samples("b").size == 3000
    expected = BearingSimulator(sample_rate=6000, rpm=1500, seed=12).generate(3000)
    np.testing.assert_array_equal(got.samples("b"), expected)


def test_schedule_switches_condition_at_the_exact_sample() -> None:
    spec = {"id": "m", "schedule": [{"at_s": 0.1, "condition": "outer", "severity": 0.7}]}
    got = _run_to_end(_config(sensors=[spec], sample_rate=12000, chunk=1000, max_samples=3000, seed=3))
    sim = BearingSimulator(sample_rate=12000, seed=3)
    head = sim.generate(1200)
    sim.condition, sim.severity = "outer_race", 0.7
    np.testing.assert_array_equal(got.samples("m"), np.concatenate([head, sim.generate(1800)]))
    # the fault shows up as impacts: much more energy after the switch than before
    x = got.samples("m")
    assert np.std(x[1500:]) > 2 * np.std(x[:1200])


def test_truth_follows_the_schedule() -> None:
    source = SyntheticSource(_config(sensors=[{"id": "m", "schedule": [{"at_s": 0.05, "condition": "ball"}]}],
                                     sample_rate=1000, max_samples=100))
    assert source.truth() == {"m": ("normal", 1.0)}
    got = Collector()
    source.start(got.emit, got.on_error)
    assert source.finished.wait(5)
    source.stop()
    assert source.truth() == {"m": ("ball", 1.0)}


def test_ramp_plan_grows_linearly_then_holds() -> None:
    ramp = SeverityRamp(condition="inner", start_s=1.0, end_s=3.0, from_severity=0.2, to_severity=0.6)
    plan = FaultPlan.build("normal", 0.0, [], ramp, sample_rate=100.0)
    assert plan.state_at(99) == ("normal", 0.0)
    for sample, severity in [(100, 0.2), (200, 0.4), (10_000, 0.6)]:
        condition, got = plan.state_at(sample)
        assert condition == "inner_race" and got == pytest.approx(severity)
    assert plan.next_boundary(0) == 100 and plan.next_boundary(100) is None


def test_realtime_mode_keeps_the_declared_rate() -> None:
    source = SyntheticSource(_config(pacing="realtime", sample_rate=4000, chunk=200))
    got = Collector()
    start = time.monotonic()
    source.start(got.emit, got.on_error)
    assert got.wait_for(lambda c: len(c.chunks) >= 15, timeout=5)
    elapsed = time.monotonic() - start
    source.stop()
    delivered = 15 * 200
    # chunk k is released when its last sample is due: 15 chunks take 0.75 s at 4 kHz
    assert delivered / 4000 * 0.9 <= elapsed <= delivered / 4000 + 0.4
    assert not source.finished.is_set()


def test_stop_interrupts_the_wait_for_a_chunk_deadline() -> None:
    source = SyntheticSource(_config(pacing="realtime", sample_rate=1000, chunk=5000))
    source.start(Collector().emit, Collector().on_error)
    time.sleep(0.1)
    start = time.monotonic()
    source.stop()
    assert time.monotonic() - start < 0.5 and not source.running


@pytest.mark.parametrize(
    ("sensor", "message"),
    [
        ({"id": "m", "condition": "cracked"}, "unknown bearing condition 'cracked'"),
        ({"id": "m", "severity": 1.5}, "less than or equal to 1"),
        ({"id": "m/1"}, "should match pattern"),
        ({"id": "m", "schedule": [{"at_s": 2, "condition": "ball"}, {"at_s": 1, "condition": "normal"}]},
         "increasing at_s order"),
        ({"id": "m", "schedule": [{"at_s": 1, "condition": "ball"}],
          "ramp": {"condition": "ball", "end_s": 5}}, "either schedule or ramp"),
        ({"id": "m", "ramp": {"condition": "ball", "start_s": 5, "end_s": 5}}, "must be after start_s"),
    ],
)
def test_invalid_sensor_configs_name_the_problem(sensor: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _config(sensors=[sensor])


def test_duplicate_sensor_ids_are_refused() -> None:
    with pytest.raises(ValidationError, match="'m' appears twice"):
        _config(sensors=[{"id": "m"}, {"id": "m"}])
