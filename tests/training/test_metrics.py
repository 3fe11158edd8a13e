"""Metrics against values worked out by hand on small cases."""

from __future__ import annotations

import numpy as np
import pytest

from drsn_edge.training.metrics import confusion_matrix, evaluate_predictions


def test_confusion_matrix_counts_pairs() -> None:
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_macro_f1_and_per_class() -> None:
    # class 0: tp=1 fp=1 fn=1 -> f1=0.5; class 1: tp=1 fp=1 fn=0 -> f1=2/3; class 2: tp=2 fp=0 fn=1 -> f1=0.8
    ev = evaluate_predictions(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), ["a", "b", "c"])
    assert ev.accuracy == 4 / 6
    f1 = [c.f1 for c in ev.per_class]
    np.testing.assert_allclose(f1, [0.5, 2 / 3, 0.8])
    np.testing.assert_allclose(ev.macro_f1, np.mean([0.5, 2 / 3, 0.8]))
    assert [c.support for c in ev.per_class] == [2, 1, 3]
    assert "macro-F1" in ev.text_report()


def test_absent_class_is_listed_but_not_averaged() -> None:
    ev = evaluate_predictions(np.array([0, 1]), np.array([0, 1]), ["a", "b", "never"])
    assert ev.macro_f1 == 1.0
    assert ev.per_class[2].support == 0


def test_seed_std_is_the_sample_standard_deviation() -> None:
    from drsn_edge.training.metrics import seed_std
    from drsn_edge.training.sweep import aggregate

    assert seed_std([0.9]) == 0.0  # one seed: no spread, not NaN
    assert seed_std([0.8, 0.9, 1.0]) == pytest.approx(0.1)
    rows = [
        {"model": "m", "noise": "gaussian", "snr_db": -6.0, "seed": s, "accuracy": a}
        for s, a in ((0, 0.8), (1, 0.9), (2, 1.0))
    ]
    (point,) = aggregate(rows)
    assert point["seeds"] == 3
    assert point["accuracy"] == pytest.approx(0.9)
    assert point["accuracy_std"] == pytest.approx(0.1)
