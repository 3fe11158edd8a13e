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
