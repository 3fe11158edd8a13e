"""The simulator half of the novelty study: a second machine, and a machine's own baseline.

The training machine is the simulator's default family (SKF 6205 geometry, 1700-1800 rpm,
resonance 2.6-3.4 kHz). The second machine has another bearing (8 balls, 6.75 mm on a 28.5 mm
pitch, a 6203-like part), runs at 1100-1300 rpm and rings at 4.5 kHz.

The baseline experiment runs that second machine healthy: a :class:`BaselineLearner` learns its
features for ``LEARN_S`` seconds (across its speed range, or at one speed only), then it runs
healthy for ``HEALTHY_S`` seconds (false alarms per hour, smoothed as the daemon does) and finally
an outer-race fault appears (delay until the flag rises). The training-data score is measured on
the same stream, which is the trade-off the baseline exists for; it is the features-only
``sqrt_mahalanobis`` (the study's score functions see features, not windows).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drsn_edge.novelty.features import model_outputs
from drsn_edge.study.novelty_metrics import ALL_SCORES, HISTORY, auroc
from runtime.artifact import Normalization
from runtime.novelty import BaselineLearner
from runtime.novelty.scores import DEFAULT_FEATURE_SCORE
from runtime.novelty.smoothing import SmoothingSpec, episodes, flags
from runtime.signals.normalize import normalize_windows
from runtime.signals.simulator import BearingGeometry, BearingSimulator

RATE = 12000.0
WINDOW = 2048
SECOND_GEOMETRY = BearingGeometry(n_balls=8, ball_diameter_mm=6.75, pitch_diameter_mm=28.5)
SECOND_RESONANCE_HZ = 4500.0
SPEED_RANGE = (1100.0, 1300.0)
SPEED_STEP_S = 20.0
LEARN_S = 600.0
HEALTHY_S = 1800.0
FAULT_S = 60.0
FAULT_SEVERITY = 0.3
CONDITIONS = ("normal", "inner_race", "outer_race", "ball")


def _machine(seed: int, condition: str = "normal", severity: float = 0.0) -> BearingSimulator:
    return BearingSimulator(
        condition,
        severity,
        RATE,
        rpm=1200.0,
        seed=seed,
        geometry=SECOND_GEOMETRY,
        resonance_hz=SECOND_RESONANCE_HZ,
    )


def _windows(signal: np.ndarray, hop: int = WINDOW) -> np.ndarray:
    n = (len(signal) - WINDOW) // hop + 1
    idx = np.arange(WINDOW)[None, :] + hop * np.arange(max(n, 0))[:, None]
    return normalize_windows(signal[idx][:, None, :], Normalization(kind="zscore"))


def simulator_windows(seed: int, seconds: float = 20.0) -> np.ndarray:
    """Windows of the second machine in every condition (severity 0.6), for AUROC against familiar ones."""
    out = []
    for i, cond in enumerate(CONDITIONS):
        sim = _machine(10_000 + 97 * seed + i, cond, 0.0 if cond == "normal" else 0.6)
        out.append(_windows(sim.generate(int(seconds * RATE)), WINDOW // 2))
    return np.concatenate(out)


def _stream(sim: BearingSimulator, seconds: float, rng: np.random.Generator, vary: bool) -> np.ndarray:
    """Windows of ``seconds`` of running; with ``vary`` the speed moves inside SPEED_RANGE."""
    chunks = []
    left = seconds
    while left > 0:
        if vary:
            sim.rpm = float(rng.uniform(*SPEED_RANGE))
        step = min(SPEED_STEP_S, left)
        chunks.append(_windows(sim.generate(int(step * RATE))))
        left -= step
    return np.concatenate(chunks)


def run_sim_job(seed: int, study: Any) -> dict[str, Any]:
    """Train on the simulator, then the second-machine AUROC and the baseline experiment."""
    from drsn_edge.study.novelty import fitted, train_model
    from drsn_edge.training.datasource import DataSpec
    from drsn_edge.training.pipeline import prepare

    spec = DataSpec(
        source="synthetic",
        window=WINDOW,
        hop=512,
        test_hop=256,
        seed=seed,
        synthetic_per_class=4,
        synthetic_seconds=8.0,
        synthetic_severity=(0.25, 1.0),
    )
    data, _ = prepare(spec)
    model = train_model(data, spec, study, seed, study.work_dir / "runs" / f"sim_s{seed}")
    scorers, test = fitted(model, data)
    familiar = scorers.scores(test)
    second = simulator_windows(seed)
    labels = np.repeat(np.arange(len(CONDITIONS)), len(second) // len(CONDITIONS))
    out2 = model_outputs(model, second)
    scores2 = scorers.scores(out2)
    wrong = out2.logits.argmax(1) != labels  # the windows a plant would get a wrong answer for
    row: dict[str, Any] = {
        "accuracy": float(np.mean(test.logits.argmax(1) == data.test.y)),
        "n_familiar": len(test),
        "n_second": len(second),
        "second_accuracy": float(np.mean(out2.logits.argmax(1) == labels)),
        "second_accuracy_per_condition": {
            c: float(np.mean(out2.logits.argmax(1)[labels == i] == i)) for i, c in enumerate(CONDITIONS)
        },
        "n_second_wrong": int(np.sum(wrong)),
        "second_machine": {
            m: {
                "auroc": auroc(familiar[m], scores2[m]),
                "flagged": scorers.flagged(m, scores2[m]),
                "auroc_wrong": auroc(familiar[m], scores2[m][wrong]),
                "per_condition": {
                    c: auroc(familiar[m], scores2[m][labels == i]) for i, c in enumerate(CONDITIONS)
                },
            }
            for m in ALL_SCORES
        },
    }
    row["baseline"] = {
        mode: _baseline_run(model, scorers, seed, vary)
        for mode, vary in (("learned_across_speeds", True), ("learned_at_one_speed", False))
    }
    return row


def _baseline_run(model: Any, scorers: Any, seed: int, vary_learning: bool) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 7])
    sim = _machine(20_000 + seed)
    learn = model_outputs(model, _stream(sim, LEARN_S, rng, vary_learning))
    learner = BaselineLearner(learn.features.shape[1], "study", seed=seed)
    learner.add(learn.features)
    base = learner.finish()
    healthy = model_outputs(model, _stream(sim, HEALTHY_S, rng, True))
    sim.condition, sim.severity = "outer_race", FAULT_SEVERITY
    fault = model_outputs(model, _stream(sim, FAULT_S, rng, True))
    window_s = WINDOW / RATE
    result: dict[str, Any] = {
        "learn_windows": learner.windows,
        "healthy_windows": len(healthy),
        "healthy_hours": HEALTHY_S / 3600.0,
        "window_s": window_s,
        "fault_severity": FAULT_SEVERITY,
    }
    scores = {
        "baseline": (base.score(healthy.features), base.score(fault.features), base.thresholds),
        "training_data": (
            scorers.score_fns[DEFAULT_FEATURE_SCORE](healthy),
            scorers.score_fns[DEFAULT_FEATURE_SCORE](fault),
            {"p99": scorers.thresholds[DEFAULT_FEATURE_SCORE]},
        ),
    }
    for name, (h, f, thresholds) in scores.items():
        for level, t in thresholds.items():
            spec = SmoothingSpec(enter=t, exit=t, history=HISTORY)
            stream = flags(np.concatenate([h, f]), spec)
            healthy_flags, fault_flags = stream[: len(h)], stream[len(h) :]
            first = np.flatnonzero(fault_flags)
            result[f"{name}@{level}"] = {
                "healthy_flagged": float(np.mean(healthy_flags[HISTORY - 1 :])),
                "false_alarms": episodes(healthy_flags),
                "false_alarms_per_hour": episodes(healthy_flags) / (HEALTHY_S / 3600.0),
                "fault_detected": float(np.mean(fault_flags)),
                "delay_s": float((first[0] + 1) * window_s) if len(first) else None,
                "flagged_at_fault_start": bool(healthy_flags[-1]) if len(healthy_flags) else False,
            }
    return result
