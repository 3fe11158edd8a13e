"""`bench daemon --slices N`: each daemon slice against the bare slices either side of it."""

from __future__ import annotations

import pytest

from runtime.bench.runs import PhaseResult
from runtime.bench.slices import run_sliced, slice_figures


def test_each_daemon_slice_is_compared_with_the_mean_of_its_two_bare_neighbours() -> None:
    # the bare backend drifts from 1000 to 600 windows/s; the daemon stays at 0.9 of its neighbours
    bare = [1000.0, 800.0, 600.0, 1000.0]
    daemon = [0.9 * 900.0, 0.9 * 700.0, 0.5 * 800.0]  # the last slice hit by other load
    fig = slice_figures(bare, daemon, daemon_cpu_us=[10.0, 11.0, 19.0])
    assert fig["count"] == 3 and fig["ratios"] == [0.9, 0.9, 0.5]
    assert fig["median_ratio"] == 0.9 and fig["min_ratio"] == 0.5 and fig["max_ratio"] == 0.9
    assert fig["spread"] == pytest.approx(0.4) and fig["bare_spread"] == pytest.approx(400 / 850, abs=1e-4)
    assert fig["daemon_cpu_us_per_window"] == [10.0, 11.0, 19.0] and "novelty_costs" not in fig
    assert "cpu_ratios" not in fig  # only with the bare slices' CPU too
    cpu = slice_figures(bare, daemon, daemon_cpu_us=[10.0, 12.0, None], bare_cpu_us=[9.0, 9.0, 9.0, 9.0])
    # a slice without CPU figures is left out
    assert cpu["cpu_ratios"] == [0.9, 0.75] and cpu["median_cpu_ratio"] == 0.825
    with_novelty = slice_figures(bare, daemon, [0.8 * d for d in daemon])
    assert with_novelty["novelty_costs"] == [0.2, 0.2, 0.2] and with_novelty["median_novelty_cost"] == 0.2
    with pytest.raises(ValueError, match="N \\+ 1 bare"):
        slice_figures([1.0, 2.0], [1.0, 2.0])


def _phase(label: str, rate: float) -> PhaseResult:
    return PhaseResult(label, 1.0, int(rate), rate, cpu_s=0.5)


def test_slices_alternate_bare_and_daemon_and_the_novelty_order_between_slices() -> None:
    ran: list[str] = []

    def bare(label: str) -> PhaseResult:
        ran.append("bare")
        return _phase(label, 100.0)

    def daemon(novelty: bool, label: str) -> PhaseResult:
        ran.append("on" if novelty else "off")
        return _phase(label, 80.0 if novelty else 90.0)

    sliced = run_sliced(3, bare, daemon, both=True)
    assert ran == ["bare", "off", "on", "bare", "on", "off", "bare", "off", "on", "bare"]
    plain, scored = sliced.merged()
    assert len(sliced.bare) == 4 and plain.windows == 270 and plain.seconds == 3.0
    assert scored is not None and scored.windows_per_s == 80.0
    ran.clear()
    assert run_sliced(2, bare, daemon, both=False).merged()[1] is None
    assert ran == ["bare", "off", "bare", "off", "bare"]
