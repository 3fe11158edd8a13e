"""`drsn-edge bench novelty`: what the novelty path costs next to the inference it rides on.

Two loops over the same batches on ONNX Runtime's CPU provider: the daemon's inference today
(the logits output only) and the same call returning logits and features followed by everything
the novelty path adds per window: the training-data score, one sensor's smoothed flag and the
score against a learned baseline. The difference over the first is the novelty path's share of
the inference time; the daemon spends more than inference per window (windowing, batching,
publishing), so its share of the daemon's throughput is smaller still.

On a shared machine one run says as much about the neighbours as about the code: every run
records the load average before and after it, and ``runs=N`` repeats the measurement and reports
each run beside the medians.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from runtime.artifact import read_onnx_metadata
from runtime.errors import ConfigError
from runtime.novelty.baseline import BaselineLearner, min_baseline_windows
from runtime.novelty.envelope_cache import EnvelopeCache
from runtime.novelty.scores import ENVELOPE_BANDS, envelope_bands
from runtime.novelty.sensor import NoveltyConfig, SensorNovelty
from runtime.novelty.stats import scorer_of
from runtime.onnx_tools.ort_run import cpu_session


def run_novelty_bench(
    model: str | Path, *, batch: int = 32, seconds: float = 5.0, threads: int = 1
) -> dict[str, Any]:
    """Measure both loops; returns the figures (also what :func:`write_report` writes)."""
    load_before = _load()
    meta = read_onnx_metadata(model)
    scorer = scorer_of(meta, str(model))
    if scorer is None or meta.features_name is None or meta.golden is None:
        raise ConfigError(
            f"{model} has no calibrated features output; export it with `drsn-edge calibrate` first"
        )
    session = cpu_session(model, threads=threads)
    inp = session.get_inputs()[0].name
    x = np.resize(meta.golden.arrays()[0], (batch, *meta.golden.shape[1:])).astype(np.float32)
    feats = session.run([meta.features_name], {inp: x})[0]
    learner = BaselineLearner(feats.shape[1], "bench")
    rng = np.random.default_rng(0)
    reps = max(10, -(-min_baseline_windows(feats.shape[1]) // batch))  # enough windows to learn from
    learner.add(np.repeat(feats, reps, axis=0) + rng.normal(scale=0.05, size=(reps * batch, feats.shape[1])))
    sensors = [SensorNovelty(f"s{i}", scorer, NoveltyConfig(), model_sha256="bench") for i in range(batch)]
    baseline = learner.finish()
    for s in sensors:
        s.set_baseline(baseline)

    reuse = _ReuseStream(batch, x.shape[-1], meta.signal.hop if meta.signal else x.shape[-1] // 4,
                          meta.signal.sample_rate if meta.signal else 12000.0)

    def novelty_part(logits: np.ndarray, f: np.ndarray) -> None:
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        scores = scorer.score(f, x)  # one call per batch, as the daemon would (x read if the score needs it)
        for i, sensor in enumerate(sensors):
            sensor.update(f[i], p[i], score=float(scores[i]))

    # interleaved, so that load from other processes hits all three measures alike
    bare_t: list[float] = []
    both_t: list[float] = []
    novelty_t: list[float] = []
    envelope_t: list[float] = []  # the envelope bands of the batch alone (sqrt_envelope_mahalanobis)
    reused_t: list[float] = []  # the same with the daemon's reuse across a sensor's windows
    for _ in range(3):
        session.run([meta.output_name], {inp: x})
    start = time.perf_counter()
    # whole periods of the reuse pattern only, so that its computed share is the steady state's
    while time.perf_counter() - start < seconds or len(bare_t) < 10 or len(bare_t) % reuse.period:
        t0 = time.perf_counter()
        session.run([meta.output_name], {inp: x})
        t1 = time.perf_counter()
        logits, f = session.run([meta.output_name, meta.features_name], {inp: x})
        t2 = time.perf_counter()
        novelty_part(logits, f)
        t3 = time.perf_counter()
        envelope_bands(x)
        t4 = time.perf_counter()
        reuse(x)
        reused_t.append(time.perf_counter() - t4)
        envelope_t.append(t4 - t3)
        bare_t.append(t1 - t0)
        both_t.append(t2 - t1)
        novelty_t.append(t3 - t2)
    t_bare, t_both, t_nov = (float(np.median(v)) for v in (bare_t, both_t, novelty_t))
    return {
        "model": str(model),
        "batch": batch,
        "threads": threads,
        "inference_ms_per_batch": 1e3 * t_bare,
        "inference_with_features_ms_per_batch": 1e3 * t_both,
        "novelty_ms_per_batch": 1e3 * t_nov,
        "novelty_us_per_window": 1e6 * t_nov / batch,
        "novelty_share_of_inference": (t_nov + max(t_both - t_bare, 0.0)) / t_bare,
        "score": scorer.stats.score,
        "envelope_bands_ms_per_batch": 1e3 * float(np.median(envelope_t)),
        "envelope_bands_share_of_inference": float(np.median(envelope_t)) / t_bare,
        "envelope_reused_ms_per_batch": 1e3 * reuse.per_batch(reused_t),
        "envelope_reused_share_of_inference": reuse.per_batch(reused_t) / t_bare,
        "envelope_reused_computed_share": reuse.computed_share(),
        "rounds": len(bare_t),
        "features": int(feats.shape[1]),
        "load_1m_before": load_before,
        "load_1m_after": _load(),
    }


class _ReuseStream:
    """Batches as the daemon's fast replay forms them: ``batch / 2`` sensors, two consecutive windows
    each, every batch the next two; their bands through an :class:`EnvelopeCache` with the default
    ``envelope_every`` (window / hop, rounded up). The windows' data repeat (timing, not values)."""

    def __init__(self, batch: int, window: int, hop: int, rate: float) -> None:
        sensors = max(batch // 2, 1)
        self.cache = EnvelopeCache(sensors)
        for j in range(sensors):
            self.cache.configure(j, math.ceil(window / hop), hop / rate, window / rate)
        self.sensor = np.repeat(np.arange(sensors), 2)[:batch]
        self.step = np.tile(np.arange(2), sensors)[:batch]
        self.counter = 0
        self.hop_s = hop / rate
        #: batches after which the pattern repeats (k windows of a sensor, two per batch): the cost
        #: is taken per period, as a median of one kind of batch (all computed, none) would mislead
        self.period = max(1, math.ceil(math.ceil(window / hop) / 2))

    def per_batch(self, times: list[float]) -> float:
        """Median over whole periods of the mean time per batch."""
        p = self.period
        whole = len(times) // p * p
        return float(np.median(np.asarray(times[:whole]).reshape(-1, p).mean(axis=1)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        index = self.counter + self.step
        self.counter += 2
        return self.cache.bands(self.sensor, index, 100.0 + index * self.hop_s, x, ENVELOPE_BANDS)

    def computed_share(self) -> float:
        total = self.cache.computed + self.cache.reused
        return self.cache.computed / total if total else math.nan


def _load() -> float:
    """The 1-minute load average (NaN where the platform has none)."""
    try:
        return float(os.getloadavg()[0])
    except OSError:
        return math.nan


#: the figures of a run that the repeated report takes medians of
MEDIAN_KEYS = (
    "inference_ms_per_batch",
    "inference_with_features_ms_per_batch",
    "novelty_ms_per_batch",
    "novelty_us_per_window",
    "novelty_share_of_inference",
    "envelope_bands_ms_per_batch",
    "envelope_bands_share_of_inference",
    "envelope_reused_ms_per_batch",
    "envelope_reused_share_of_inference",
)


def run_repeated(model: str | Path, runs: int, **kw: Any) -> dict[str, Any]:
    """``runs`` runs of :func:`run_novelty_bench` one after another: each run, and the medians."""
    if runs < 1:
        raise ConfigError(f"--runs {runs}: give at least 1 run")
    each = [run_novelty_bench(model, **kw) for _ in range(runs)]
    median = {k: float(np.median([r[k] for r in each])) for k in MEDIAN_KEYS}
    return {**each[0], **median, "rounds": sum(r["rounds"] for r in each), "runs": each}


def report_text(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| what | figure |",
            "|---|---|",
            f"| model | {Path(r['model']).name} ({r['features']} features) |",
            f"| inference, logits only (ms per batch of {r['batch']}, {r['threads']} thread) | "
            f"{r['inference_ms_per_batch']:.3f} |",
            "| inference, logits and features (ms per batch) | "
            f"{r['inference_with_features_ms_per_batch']:.3f} |",
            f"| novelty path: score, smoothing, baseline for every window (ms per batch) | "
            f"{r['novelty_ms_per_batch']:.3f} ({r['novelty_us_per_window']:.1f} µs per window) |",
            "| novelty path and features output / inference time | "
            f"{100 * r['novelty_share_of_inference']:.1f} % |",
            f"| score of the model's statistics | {r.get('score', '?')} |",
            f"| envelope bands of the batch alone (sqrt_envelope_mahalanobis; ms per batch, "
            f"share of inference) | {r.get('envelope_bands_ms_per_batch', float('nan')):.3f} "
            f"({100 * r.get('envelope_bands_share_of_inference', float('nan')):.1f} %) |",
            f"| the same reused across a sensor's windows as the daemon does (envelope_every auto; "
            f"{r['batch'] // 2} sensors x 2 consecutive windows per batch; ms per batch, share of "
            f"inference) | {r.get('envelope_reused_ms_per_batch', float('nan')):.3f} "
            f"({100 * r.get('envelope_reused_share_of_inference', float('nan')):.1f} %; bands computed "
            f"for {100 * r.get('envelope_reused_computed_share', float('nan')):.0f} % of the windows) |",
            f"| rounds (medians, interleaved) | {r['rounds']} |",
            f"| load average (1 min) before / after | {_loads(r)} |",
        ]
    ) + (_runs_table(r["runs"]) if len(r.get("runs", ())) > 1 else "")


def _loads(r: dict[str, Any]) -> str:
    each = r.get("runs") or [r]
    return ", ".join(
        f"{x.get('load_1m_before', math.nan):.2f} / {x.get('load_1m_after', math.nan):.2f}" for x in each
    )


def _runs_table(runs: list[dict[str, Any]]) -> str:
    """One line per run: the medians above are taken over these."""
    lines = [
        "",
        "",
        f"Figures above: medians of {len(runs)} runs. Each run:",
        "",
        "| run | load before / after | inference (ms) | envelope bands (ms) | bands / inference "
        "| bands reused (ms) | reused / inference | novelty path (ms) "
        "| novelty path and features / inference |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, x in enumerate(runs, 1):
        bands, share = x["envelope_bands_ms_per_batch"], 100 * x["envelope_bands_share_of_inference"]
        lines.append(
            f"| {i} | {x['load_1m_before']:.2f} / {x['load_1m_after']:.2f} "
            f"| {x['inference_ms_per_batch']:.3f} | {bands:.3f} | {share:.1f} % "
            f"| {x.get('envelope_reused_ms_per_batch', math.nan):.3f} "
            f"| {100 * x.get('envelope_reused_share_of_inference', math.nan):.1f} % "
            f"| {x['novelty_ms_per_batch']:.3f} | {100 * x['novelty_share_of_inference']:.1f} % |"
        )
    return "\n".join(lines)


def write_report(r: dict[str, Any], out: Path, command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_novelty.json").write_text(json.dumps(r, indent=1))
    (out / "bench_novelty.md").write_text(f"# Cost of the novelty path\n\n`{command}`\n\n{report_text(r)}\n")
