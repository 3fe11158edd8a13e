"""Labelled recordings from the bearing simulator, for tests, demos and users without data.

Each recording is a different simulated machine: its own seed, shaft speed, fault severity and
structural resonance, so a model has to learn the fault signature rather than one machine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from drsn_edge.data.recordings import Recording
from runtime.errors import ConfigError
from runtime.signals.simulator import BearingSimulator, canonical_condition

log = logging.getLogger(__name__)

DEFAULT_CLASSES: tuple[str, ...] = ("normal", "inner_race", "outer_race", "ball")


def synthetic_recordings(
    classes: Sequence[str] = DEFAULT_CLASSES,
    n_per_class: int = 4,
    seconds: float = 4.0,
    sample_rate: float = 12000,
    seed: int = 0,
    rpm_range: tuple[float, float] = (1700.0, 1800.0),
    severity_range: tuple[float, float] = (0.5, 1.0),
    resonance_range: tuple[float, float] = (2600.0, 3400.0),
) -> list[Recording]:
    """``n_per_class`` simulated recordings of ``seconds`` each for every condition in ``classes``.

    The same arguments always give the same recordings (each machine's parameters and noise are
    drawn from ``seed``). The resonance is drawn from ``(min(low, 0.6 * top), top)`` with ``top =
    min(high, 0.4 * sample_rate)``: below Nyquist at low sample rates, and at 12 kHz with the default
    range that is 2.04-3.4 kHz, not 2.6-3.4 kHz (the packaged simulator model was trained on exactly
    these draws, so the rule stays as it is for reproducibility).
    """
    if n_per_class < 1 or seconds <= 0:
        raise ConfigError(f"need n_per_class >= 1 and seconds > 0, got {n_per_class} and {seconds}")
    for lo, hi, name in (*rpm_range, "rpm_range"), (*severity_range, "severity_range"):
        if not 0 <= lo <= hi:
            raise ConfigError(f"{name} must be (low, high) with 0 <= low <= high, got ({lo}, {hi})")
    if severity_range[1] > 1:
        raise ConfigError(f"severity_range must lie in [0, 1], got {severity_range}")
    conditions = [canonical_condition(c) for c in classes]
    n = round(seconds * sample_rate)
    top = min(resonance_range[1], 0.4 * sample_rate)
    resonances = (min(resonance_range[0], 0.6 * top), top)
    children = np.random.SeedSequence(seed).spawn(len(conditions) * n_per_class)
    out = []
    for i, ss in enumerate(children):
        condition = conditions[i // n_per_class]
        rng = np.random.default_rng(ss)
        params = _machine(rng, rpm_range, severity_range, resonances)
        machine_seed = int(rng.integers(2**31))
        if condition == "normal":
            params["severity"] = 0.0  # a healthy bearing has no fault to be severe
        sim = BearingSimulator(condition, params["severity"], sample_rate, params["rpm"], machine_seed,
                               resonance_hz=params["resonance_hz"])
        meta = {"dataset": "synthetic", "fault": condition, "seed": machine_seed,
                "source": f"simulator:{condition}#{i % n_per_class}", **params}
        out.append(Recording(sim.generate(n), float(sample_rate), condition, meta))
    log.info("simulated %d recordings (%d classes x %d, %.1f s each)",
             len(out), len(conditions), n_per_class, seconds)
    return out


def _machine(
    rng: np.random.Generator,
    rpm_range: tuple[float, float],
    severity_range: tuple[float, float],
    resonance_range: tuple[float, float],
) -> dict[str, float]:
    """One simulated machine's operating point, drawn from the given ranges."""
    return {
        "rpm": float(rng.uniform(*rpm_range)),
        "severity": float(rng.uniform(*severity_range)),
        "resonance_hz": float(rng.uniform(*resonance_range)),
    }
