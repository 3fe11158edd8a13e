"""The envelope study's decision rules, and its DRSN path on the packaged model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drsn_edge.study.envelope import SEGMENT, combine, drsn_fault_types, grade
from runtime.artifact import read_onnx_metadata
from runtime.diagnostics.bearings import lookup_bearing
from runtime.diagnostics.envelope import analyse
from runtime.signals.simulator import BearingSimulator

ASSETS = Path(__file__).resolve().parents[2] / "drsn_edge" / "assets"


def _report(condition: str, severity: float = 1.0):  # type: ignore[no-untyped-def]
    x = BearingSimulator(condition, severity=severity, sample_rate=12000, rpm=1797, seed=5).generate(SEGMENT)
    return analyse(x, 12000, lookup_bearing("6205"), 1797)


def test_a_strong_race_signature_overrides_normal_and_the_other_race_only() -> None:
    inner = _report("inner_race")
    assert (inner.verdict, inner.strength) == ("inner_race", "strong")
    assert combine("outer", inner) == "inner"
    assert combine("normal", inner) == "inner"
    assert combine("ball", inner) == "ball"  # ball predictions are kept (see combine's docstring)
    assert combine("inner", inner) == "inner"


def test_no_signature_leaves_the_classifier_alone() -> None:
    healthy = _report("normal")
    assert healthy.verdict == "none"
    for drsn in ("normal", "ball", "inner", "outer"):
        assert combine(drsn, healthy) == drsn


def test_grades_follow_the_evidence_for_the_true_type() -> None:
    assert grade(_report("outer_race"), "outer") == "Y"
    assert grade(_report("normal"), "outer") in ("P", "N")


def test_drsn_fault_types_on_the_packaged_model() -> None:
    import onnxruntime as ort

    model = ASSETS / "drsn_cw_cwru0hp.onnx"
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    meta = read_onnx_metadata(model)
    segments = np.random.default_rng(0).standard_normal((3, SEGMENT)).astype(np.float32)
    types = drsn_fault_types(session, meta, segments)
    assert len(types) == 3 and set(types) <= {"normal", "ball", "inner", "outer"}


@pytest.mark.shared_data
def test_the_packaged_model_names_cwru_inner_race_segments(cwru_dir: Path) -> None:
    import onnxruntime as ort

    from drsn_edge.data.cwru import load_cwru

    rec = load_cwru(cwru_dir, labels="4class", select={"file_number": 106})[0]
    model = ASSETS / "drsn_cw_cwru0hp.onnx"
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    segments = np.stack([rec.signal[i : i + SEGMENT] for i in range(0, 4 * SEGMENT, SEGMENT)])
    assert drsn_fault_types(session, read_onnx_metadata(model), segments) == ["inner"] * 4


def _row(seed: int, fault: str, drsn: str, prob: float, env: str, snr: str = "10") -> dict[str, object]:
    return {"seed": seed, "test_set": "t", "noise": "pink", "snr_db": snr, "fault": fault, "drsn": drsn,
            "drsn_prob": prob, "envelope": env, "envelope_strength": "strong"}


def test_a_sure_classifier_keeps_its_answer_under_a_guard() -> None:
    from drsn_edge.study.envelope import CombineRule

    guarded = CombineRule(guard=0.9)
    assert guarded.apply("normal", 0.95, "inner", "strong") == "normal"
    assert guarded.apply("normal", 0.6, "inner", "strong") == "inner"
    assert guarded.apply("ball", 0.2, "inner", "strong") == "ball"  # ball kept unless ball=True
    assert CombineRule(guard=0.9, ball=True).apply("ball", 0.2, "inner", "strong") == "inner"
    assert guarded.apply("normal", 0.2, "inner", "weak") == "normal"


def test_the_rule_is_chosen_on_seed_0_only_and_never_below_drsn_there() -> None:
    from drsn_edge.study.envelope import CANDIDATE_RULES, apply_rules, choose_rule

    rows = [
        _row(0, "inner", "normal", 0.7, "inner"),  # an unsure DRSN: overruling fixes it
        _row(0, "normal", "normal", 0.97, "outer"),  # a sure DRSN: overruling would break it
        _row(0, "inner", "ball", 0.5, "inner"),  # overruling ball fixes this one ...
        _row(0, "ball", "ball", 0.4, "inner"),  # ... and breaks this one: no gain, ball stays kept
        _row(1, "normal", "normal", 0.5, "outer"),  # seed 1 is not seen by the choice
    ]
    rule, table = choose_rule(rows)
    assert (rule.guard, rule.ball) == (0.95, False)
    assert [t["segments"] for t in table] == [4] * len(CANDIDATE_RULES)
    assert sum(t["chosen"] for t in table) == 1
    no_guard = next(t for t in table if t["guard"] > 1 and not t["ball"])
    assert no_guard["points_worse"] == 0 and no_guard["correct"] == 2  # fixes 1, breaks 1: equal to DRSN
    apply_rules(rows, rule)
    assert [r["combined"] for r in rows] == ["inner", "normal", "ball", "ball", "outer"]
    assert rows[1]["combined_first"] == "outer"


def test_decoys_stay_clear_of_shaft_orders_and_of_every_fault_line() -> None:
    from drsn_edge.study.envelope_bandsearch import decoy_orders

    o = lookup_bearing("6205").orders()
    faults = {"outer_race": o.bpfo, "inner_race": o.bpfi, "ball": 2 * o.bsf}
    decoys = decoy_orders(faults, 1.0, o.ftf)
    assert decoys.size >= 50
    lines = [k * f for f in faults.values() for k in (1, 2, 3, 4)] + [o.bpfi - 1, o.bpfi + 1, o.bpfo + 1]
    for d in decoys:
        for h in (1, 2, 3):
            assert abs(h * d - round(h * d)) >= 0.06
            assert all(abs(h * d - line) >= 0.02 * line for line in lines), (d, h)
