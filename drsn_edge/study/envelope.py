"""`drsn-edge study envelope`: how far envelope analysis goes on CWRU, beside DRSN and combined.

Three experiments, each written as a table and a figure by :mod:`drsn_edge.study.envelope_report`:

1. **records**: every CWRU fault record at 0-3 HP analysed whole (about 10 s), and in 8192-sample
   segments (0.68 s, the length the resolution rule asks for at these speeds with margin): the
   verdict, the evidence for the true fault type, and a diagnosability grade in the spirit of
   Smith & Randall (2015): ``Y`` the true type is named with strong evidence, ``P`` its fundamental
   is found but it is not (strongly) named, ``N`` no evidence for it.
2. **grid**: on the same 8192-sample segments, the fault type (normal / ball / inner / outer) from
   the packaged DRSN model alone (mean of its class probabilities over the 2048-sample windows of
   the segment, hop 1024, mapped to the fault type), from the envelope alone (``none`` reads as
   normal) and combined, clean and with Gaussian, Laplacian or pink noise at several SNRs (noise
   drawn per recording, several seeds). Two test sets: 0 HP, the last 20 % of each record that
   the model never trained on (it trained on the first 70 %), and 1-3 HP, the load shift.
3. **simulator**: envelope verdicts on simulated bearings of other geometries and speeds, where
   the true fault frequencies are known.

The combination rule (:class:`CombineRule`): DRSN's fault type, unless the envelope strongly
names a race fault that DRSN does not, and DRSN is not sure of its own answer. Which member of
the rule family is used is chosen by :func:`choose_rule` on the noise seed 0 alone (and the
clean segments), and reported on seeds 1 and 2, which the choice never saw.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.data.cwru import load_cwru
from drsn_edge.data.noise import add_noise
from drsn_edge.data.recordings import Recording
from runtime.artifact import read_onnx_metadata
from runtime.diagnostics.bearings import Bearing, lookup_bearing
from runtime.diagnostics.envelope import EnvelopeReport, EnvelopeSettings, analyse
from runtime.signals.normalize import normalize_windows
from runtime.signals.simulator import BearingGeometry, BearingSimulator

log = logging.getLogger(__name__)

#: Envelope verdicts and CWRU fault names as the four fault types compared.
TYPE_OF_VERDICT = {"none": "normal", "inner_race": "inner", "outer_race": "outer", "ball": "ball"}
SEGMENT = 8192
DRSN_HOP = 1024
TRAIN_SPAN = (0.7, 0.1, 0.2)  # the packaged model's time split (train, validation, test)


@dataclass(frozen=True)
class EnvelopeStudy:
    """What to run; defaults are the committed study."""

    data_dir: Path
    model: Path
    out_dir: Path
    snrs: tuple[float, ...] = (10.0, 4.0, 0.0, -4.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    noise_kinds: tuple[str, ...] = ("gaussian",)
    settings: EnvelopeSettings = field(default_factory=EnvelopeSettings)
    sim_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    command: str = ""


@dataclass(frozen=True)
class CombineRule:
    """When the envelope overrules DRSN's fault type.

    Always needed: the envelope names a race fault (inner or outer) with ``strong`` evidence that
    DRSN does not name. Then DRSN is overruled when it says normal or the other race (and ball,
    when ``ball``), unless its probability for its own fault type is at least ``guard``: a
    classifier that is sure keeps its answer. ``guard`` above 1 is no guard.
    """

    guard: float = 1.01
    ball: bool = False

    def apply(self, drsn: str, drsn_prob: float, env: str, env_strength: str) -> str:
        if env_strength != "strong" or env not in ("inner", "outer") or env == drsn:
            return drsn
        overrulable = ("normal", "inner", "outer", "ball") if self.ball else ("normal", "inner", "outer")
        return env if drsn in overrulable and drsn_prob < self.guard else drsn

    @property
    def name(self) -> str:
        guard = "no guard" if self.guard > 1 else f"guard {self.guard:g}"
        return f"{guard}, {'ball overruled too' if self.ball else 'ball kept'}"


#: the rule of the first study round (fixed before its grid ran): no guard, ball predictions kept
FIRST_RULE = CombineRule()
#: the family :func:`choose_rule` picks from, on the selection seed only
CANDIDATE_RULES: tuple[CombineRule, ...] = tuple(
    CombineRule(g, b) for b in (False, True) for g in (1.01, 0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5)
)
SELECTION_SEED = 0


def combine(
    drsn: str, envelope: EnvelopeReport, drsn_prob: float = 0.0, rule: CombineRule = FIRST_RULE
) -> str:
    """The combined fault type of one segment (see :class:`CombineRule`)."""
    return rule.apply(drsn, drsn_prob, TYPE_OF_VERDICT[envelope.verdict], envelope.strength)


def choose_rule(
    rows: Sequence[dict[str, Any]], candidates: Sequence[CombineRule] = CANDIDATE_RULES
) -> tuple[CombineRule, list[dict[str, Any]]]:
    """The rule to report, chosen on the selection part of the grid only (seed 0 and clean).

    Criterion: never below DRSN alone at any study point of the selection part; among the rules
    that meet it, the most segments right; ties go to the earlier (more conservative) candidate.
    Returns the rule and one row per candidate (what the selection saw).
    """
    part = [r for r in rows if r["seed"] == SELECTION_SEED]
    table = []
    for rule in candidates:
        points: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        overrides = 0
        for r in part:
            combined = rule.apply(r["drsn"], r["drsn_prob"], r["envelope"], r["envelope_strength"])
            tally = points[(r["test_set"], r["noise"], r["snr_db"])]
            tally[0] += r["drsn"] == r["fault"]
            tally[1] += combined == r["fault"]
            overrides += combined != r["drsn"]
        worse = sum(c < d for d, c in points.values())
        table.append({"rule": rule.name, "guard": rule.guard, "ball": rule.ball, "segments": len(part),
                      "correct": sum(c for _, c in points.values()), "overrides": overrides,
                      "points_worse": worse, "points": len(points)})
    feasible = [i for i, t in enumerate(table) if t["points_worse"] == 0] or list(range(len(table)))
    best = max(feasible, key=lambda i: (table[i]["correct"], -i))
    for i, t in enumerate(table):
        t["chosen"] = i == best
    return candidates[best], table


def apply_rules(rows: list[dict[str, Any]], rule: CombineRule) -> None:
    """Add ``combined`` (the chosen rule) and ``combined_first`` (the first round's) to every row."""
    for r in rows:
        args = (r["drsn"], r["drsn_prob"], r["envelope"], r["envelope_strength"])
        r["combined"] = rule.apply(*args)
        r["combined_first"] = FIRST_RULE.apply(*args)


def drsn_fault_types(session: Any, meta: Any, segments: np.ndarray) -> list[str]:
    """DRSN's fault type per segment: mean class probability over the segment's windows."""
    return [fault for fault, _ in drsn_decisions(session, meta, segments)]


def drsn_decisions(session: Any, meta: Any, segments: np.ndarray) -> list[tuple[str, float]]:
    """DRSN's fault type per segment and its probability: the segment-mean probabilities of the
    classes of that type, summed (the argmax class decides the type)."""
    window = meta.signal.window
    starts = range(0, segments.shape[1] - window + 1, DRSN_HOP)
    windows = np.stack([segments[:, s : s + window] for s in starts], axis=1)  # (segments, k, window)
    flat = normalize_windows(windows.reshape(-1, window), meta.normalization)[:, None, :]
    logits = session.run(None, {meta.input.name: flat})[0]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    mean = probs.reshape(len(segments), len(starts), -1).mean(axis=1)
    types = [_fault_of_class(c) for c in meta.classes]
    out = []
    for row in mean:
        fault = types[int(row.argmax())]
        out.append((fault, float(sum(p for p, t in zip(row, types, strict=True) if t == fault))))
    return out


def _fault_of_class(name: str) -> str:
    for prefix, fault in (("IR", "inner"), ("OR", "outer"), ("B", "ball")):
        if name.upper().startswith(prefix):
            return fault
    return "normal"


def segments_of(rec: Recording, test_span_only: bool) -> tuple[np.ndarray, int]:
    """Non-overlapping segments (overlapping by half inside the short 0 HP test span); (segments, first)."""
    x = rec.signal
    first, hop = 0, SEGMENT
    if test_span_only:  # the packaged model's test span: the last 20 % after two 2048-sample gaps
        usable = x.size - 2 * 2048
        first = math.floor(TRAIN_SPAN[0] * usable) + math.floor(TRAIN_SPAN[1] * usable) + 2 * 2048
        hop = SEGMENT // 2
    starts = list(range(first, x.size - SEGMENT + 1, hop)) or [max(x.size - SEGMENT, 0)]
    return np.stack([x[s : s + SEGMENT] for s in starts]), first


def load_recordings(data_dir: Path) -> list[Recording]:
    """Every CWRU recording at 12 kHz (the 48 kHz baseline resampled), 4-class labels."""
    return load_cwru(data_dir, sample_rate=12000, labels="4class")


def grade(report: EnvelopeReport, truth: str) -> str:
    """Y / P / N diagnosability of the true fault type (see the module docstring)."""
    verdict = TYPE_OF_VERDICT[report.verdict]
    if verdict == truth and report.strength == "strong":
        return "Y"
    key = {v: k for k, v in TYPE_OF_VERDICT.items()}[truth]
    return "P" if report.evidence[key].harmonics[0].found else "N"


def record_rows(recs: list[Recording], bearing: Bearing, settings: EnvelopeSettings) -> list[dict[str, Any]]:
    """Experiment 1: one row per fault record (whole record and its segments)."""
    rows = []
    for rec in recs:
        truth = rec.label
        if truth == "normal":
            continue
        rpm = float(rec.meta["rpm"])
        report = analyse(rec.signal, rec.sample_rate, bearing, rpm, settings)
        segs, _ = segments_of(rec, test_span_only=False)
        verdicts = [
            TYPE_OF_VERDICT[analyse(s, rec.sample_rate, bearing, rpm, settings).verdict] for s in segs
        ]
        key = {v: k for k, v in TYPE_OF_VERDICT.items()}[truth]
        ev = report.evidence[key]
        rows.append(
            {
                "file": Path(rec.meta["source"]).name,
                "fault": truth,
                "size_in": rec.meta["diameter_in"],
                "load_hp": rec.meta["load_hp"],
                "rpm": rpm,
                "verdict": TYPE_OF_VERDICT[report.verdict],
                "strength": report.strength,
                "correct": TYPE_OF_VERDICT[report.verdict] == truth,
                "grade": grade(report, truth),
                "band_hz": f"{report.band.low_hz:.0f}-{report.band.high_hz:.0f}",
                "true_freq_hz": round(ev.frequency_hz, 2),
                "harmonics_found": ev.harmonics_found,
                "prominence_db": round(ev.prominence_db, 1),
                "score_true": round(ev.score, 1),
                "segments": len(verdicts),
                "segments_correct": sum(v == truth for v in verdicts),
            }
        )
    return rows


def grid_rows(recs: list[Recording], study: EnvelopeStudy, bearing: Bearing) -> Iterator[dict[str, Any]]:
    """Experiment 2: one row per (test set, noise, SNR, seed, segment) with the three decisions."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(study.model), options, providers=["CPUExecutionProvider"])
    meta = read_onnx_metadata(study.model)
    conditions: list[tuple[str, float | None, int]] = [("none", None, 0)] + [
        (kind, s, k) for kind in study.noise_kinds for s in study.snrs for k in study.seeds
    ]
    for rec_index, rec in enumerate(recs):
        load = int(rec.meta["load_hp"])
        test_set = "0 HP (held-out span)" if load == 0 else "1-3 HP (load shift)"
        for kind, snr, seed in conditions:
            signal = rec.signal
            if snr is not None:
                kind_key = ("gaussian", "laplacian", "pink").index(kind)
                rng = np.random.default_rng([seed, rec_index, int(snr * 10) + 1000, kind_key])
                signal = add_noise(signal, snr, kind, rng)
            noisy = Recording(signal, rec.sample_rate, rec.label, rec.meta)
            segs, _ = segments_of(noisy, test_span_only=load == 0)
            drsn = drsn_decisions(session, meta, segs)
            for i, seg in enumerate(segs):
                report = analyse(seg, rec.sample_rate, bearing, float(rec.meta["rpm"]), study.settings)
                env = TYPE_OF_VERDICT[report.verdict]
                yield {
                    "test_set": test_set,
                    "noise": kind,
                    "snr_db": "clean" if snr is None else f"{snr:g}",
                    "seed": seed,
                    "file": Path(rec.meta["source"]).name,
                    "load_hp": load,
                    "fault": rec.label,
                    "segment": i,
                    "drsn": drsn[i][0],
                    "drsn_prob": round(drsn[i][1], 4),
                    "envelope": env,
                    "envelope_strength": report.strength,
                }


SIM_CASES: tuple[tuple[str, float], ...] = (
    ("6205", 900.0),
    ("6205", 3000.0),
    ("UER204", 2400.0),
    ("ZA-2115", 2000.0),
    ("6203", 1500.0),
    ("NICE", 1500.0),
)


def simulator_rows(study: EnvelopeStudy) -> list[dict[str, Any]]:
    """Experiment 3: envelope verdicts on simulated bearings (2 s each) at three severities."""
    rows = []
    for name, rpm in SIM_CASES:
        b = lookup_bearing(name)
        geometry = BearingGeometry(
            b.n_elements, b.element_diameter_mm, b.pitch_diameter_mm, b.contact_angle_deg
        )
        for condition in ("normal", "inner_race", "outer_race", "ball"):
            for severity in (0.25, 0.5, 1.0):
                if condition == "normal" and severity != 1.0:
                    continue
                for seed in study.sim_seeds:
                    sim = BearingSimulator(
                        condition, severity=severity, sample_rate=12000, rpm=rpm, seed=seed, geometry=geometry
                    )
                    report = analyse(sim.generate(24000), 12000, b, rpm, study.settings)
                    truth = "none" if condition == "normal" else condition
                    rows.append(
                        {
                            "bearing": b.name,
                            "rpm": rpm,
                            "condition": condition,
                            "severity": severity,
                            "seed": seed,
                            "verdict": report.verdict,
                            "strength": report.strength,
                            "correct": report.verdict == truth,
                        }
                    )
    return rows


def run_envelope_study(study: EnvelopeStudy) -> dict[str, Path]:
    """Run the three experiments and write their tables and figures; returns the written paths."""
    from drsn_edge.study.envelope_report import write_envelope_report

    t0 = time.perf_counter()
    bearing = lookup_bearing("6205")
    recs = load_recordings(study.data_dir)
    records = record_rows(recs, bearing, study.settings)
    log.info("records done in %.0f s", time.perf_counter() - t0)
    grid = list(grid_rows(recs, study, bearing))
    log.info("grid done in %.0f s", time.perf_counter() - t0)
    rule, selection = choose_rule(grid)
    apply_rules(grid, rule)
    sim = simulator_rows(study)
    return write_envelope_report(study, records, grid, sim, time.perf_counter() - t0, selection)
