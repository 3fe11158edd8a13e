"""`bench daemon --slices N`: the fast phase as N short daemon slices between N + 1 bare slices.

Why: on a shared machine the bare backend alone can differ by a third between two phases a few
seconds apart, so one bare, daemon, bare sequence gives a ratio that swings with whatever else
ran meanwhile. Alternating short slices (bare, daemon, bare, daemon, ..., bare) and taking the
ratio of each daemon slice to the mean of the two bare slices beside it makes every ratio compare
neighbours in time; the median of the N ratios drops a slice that a burst of other load hit, and
their spread says how far one run can be trusted. The total measured seconds stay those of
``--seconds`` per side; each daemon slice starts the daemon afresh after its own warm-up.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.bench.runs import PhaseResult, merge_phases


@dataclass
class SlicedFast:
    """The phases of a sliced fast phase, in the order they ran."""

    bare: list[PhaseResult] = field(default_factory=list)  # N + 1
    daemon: list[PhaseResult] = field(default_factory=list)  # N, novelty off (or as configured)
    novelty: list[PhaseResult] = field(default_factory=list)  # N with --novelty both, else empty

    def merged(self) -> tuple[PhaseResult, PhaseResult | None]:
        """The daemon slices as one phase each side (sums of windows, seconds and CPU)."""
        on = merge_phases("daemon fast, novelty on", self.novelty) if self.novelty else None
        return merge_phases("daemon fast", self.daemon), on


def run_sliced(n: int, bare: Callable[[str], PhaseResult],
               daemon: Callable[[bool, str], PhaseResult], both: bool) -> SlicedFast:
    """``bare(label)`` and ``daemon(novelty, label)`` each measure one slice; with ``both`` every
    slice runs the daemon without and with novelty, the order alternating between slices (off, on,
    then on, off) so drift weighs on both sides alike."""
    out = SlicedFast()
    for k in range(n):
        out.bare.append(bare(f"bare, slice {k + 1} of {n}"))
        order = ((False, True) if k % 2 == 0 else (True, False)) if both else (False,)
        for novelty in order:
            label = f"daemon fast{', novelty on' if novelty else ''}, slice {k + 1} of {n}"
            (out.novelty if novelty else out.daemon).append(daemon(novelty, label))
    out.bare.append(bare(f"bare, slice {n + 1} of {n + 1}"))
    return out


def slice_figures(bare: list[float], daemon: list[float], novelty: list[float] | None = None,
                  daemon_cpu_us: list[float | None] | None = None,
                  bare_cpu_us: list[float | None] | None = None) -> dict[str, Any]:
    """Per-slice windows/s -> each daemon slice over the mean of the bare slices either side, their
    median, range and spread (max - min), for result.json; ``novelty``: the novelty-on slices.

    With both CPU lists (process CPU per window of each slice) the same pairing of CPU per window,
    bare over daemon: the ratio a core of its own would give, which other processes' share of the
    core does not move (the machine's speed still does)."""
    if len(bare) != len(daemon) + 1 or not daemon:
        raise ValueError(f"slices need N daemon and N + 1 bare figures, got {len(daemon)} and {len(bare)}")
    ratios = [d / ((a + b) / 2) if a + b > 0 else 0.0
              for d, a, b in zip(daemon, bare, bare[1:], strict=False)]
    out: dict[str, Any] = {
        "count": len(daemon),
        "bare_windows_per_s": [round(v, 1) for v in bare],
        "daemon_windows_per_s": [round(v, 1) for v in daemon],
        "ratios": [round(r, 4) for r in ratios],
        "median_ratio": round(statistics.median(ratios), 4),
        "min_ratio": round(min(ratios), 4),
        "max_ratio": round(max(ratios), 4),
        "spread": round(max(ratios) - min(ratios), 4),
        # the bare slices' own swing within the run, the noise the pairing is there to cancel
        "bare_spread": round((max(bare) - min(bare)) / statistics.mean(bare), 4) if sum(bare) else None,
    }
    if daemon_cpu_us is not None:
        out["daemon_cpu_us_per_window"] = daemon_cpu_us
    if daemon_cpu_us is not None and bare_cpu_us is not None:
        out["bare_cpu_us_per_window"] = bare_cpu_us
        cpu = [(a + b) / 2 / d for d, a, b in zip(daemon_cpu_us, bare_cpu_us, bare_cpu_us[1:], strict=False)
               if d and a and b]
        if cpu:
            out["cpu_ratios"] = [round(r, 4) for r in cpu]
            out["median_cpu_ratio"] = round(statistics.median(cpu), 4)
    if novelty:
        costs = [1.0 - on / off if off > 0 else 0.0 for on, off in zip(novelty, daemon, strict=True)]
        out["novelty_windows_per_s"] = [round(v, 1) for v in novelty]
        out["novelty_costs"] = [round(c, 4) for c in costs]
        out["median_novelty_cost"] = round(statistics.median(costs), 4)
    return out
