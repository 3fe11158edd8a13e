"""Recordings validate their samples; selection by metadata picks operating conditions."""

from __future__ import annotations

import numpy as np
import pytest

from drsn_edge.data.recordings import Recording, healthy_label, order_classes, select
from runtime.errors import DataError


def _rec(label: str, **meta: object) -> Recording:
    return Recording(np.zeros(100, np.float32) + 0.1, 12000.0, label, dict(meta))


RECS = [
    _rec("normal", fault="normal", load_hp=0, source="a"),
    _rec("IR007", fault="inner", load_hp=0, diameter_in=0.007, source="b"),
    _rec("IR007", fault="inner", load_hp=1.0, diameter_in=0.007, source="c"),
    _rec("OR007@6", fault="outer", load_hp=2, diameter_in=0.007, source="d"),
]


def test_select_by_scalar_list_number_and_case() -> None:
    assert [r.meta["source"] for r in select(RECS, fault="inner")] == ["b", "c"]
    assert [r.meta["source"] for r in select(RECS, load_hp=[0, 1])] == ["a", "b", "c"]  # 1 matches 1.0
    assert [r.meta["source"] for r in select(RECS, fault="INNER", load_hp=1)] == ["c"]
    assert [r.meta["source"] for r in select(RECS, label="or007@6")] == ["d"]
    assert len(select(RECS, sample_rate=12000)) == 4
    assert select(RECS, diameter_in=0.0070000000001)[0].meta["source"] == "b"
    assert select(RECS) == RECS


def test_selection_is_remembered_without_touching_the_input() -> None:
    chosen = select(select(RECS, fault="inner"), load_hp=0)
    assert chosen[0].meta["selection"] == {"fault": "inner", "load_hp": 0}
    assert "selection" not in RECS[1].meta
    assert chosen[0].signal is RECS[1].signal  # no copy of the samples


def test_unknown_criterion_names_the_available_keys() -> None:
    with pytest.raises(DataError, match=r"\['loadhp'\].*load_hp"):
        select(RECS, loadhp=0)


def test_bad_samples_are_refused() -> None:
    with pytest.raises(DataError, match="NaN/inf"):
        Recording(np.array([0.0, np.nan, 1.0]), 100.0, "x", {"source": "f.npy"})
    with pytest.raises(DataError, match="shape"):
        Recording(np.zeros((2, 2, 2)), 100.0, "x")
    with pytest.raises(DataError, match="positive"):
        Recording(np.zeros(4), 0.0, "x")
    two = Recording(np.zeros((3, 50)) + 1, 100.0, "x")
    assert two.channels == 3 and two.n_samples == 50 and two.duration_s == 0.5
    assert two.signal.dtype == np.float32


def test_class_order_is_stable_and_healthy_first() -> None:
    assert order_classes(["OR007@6", "normal", "B014", "B007", "IR007", "B007"]) == [
        "normal", "B007", "B014", "IR007", "OR007@6"]
    assert order_classes(["outer", "Healthy", "ball"]) == ["Healthy", "ball", "outer"]
    assert healthy_label(["a", "b"]) is None
