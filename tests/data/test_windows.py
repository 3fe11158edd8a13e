"""Windowing: every full window inside the span, hop apart, values taken from the right place."""

from __future__ import annotations

import numpy as np
import pytest

from drsn_edge.data.windows import WindowSet, make_windows
from runtime.errors import DataError


def test_windows_of_a_1d_signal() -> None:
    sig = np.arange(100, dtype=np.float32)
    x, starts = make_windows(sig, window=10, hop=7)
    assert x.shape == (len(starts), 1, 10) and x.dtype == np.float32
    assert starts[0] == 0 and np.all(np.diff(starts) == 7) and starts[-1] + 10 <= 100 < starts[-1] + 17
    for w, s in zip(x, starts, strict=True):
        np.testing.assert_array_equal(w[0], sig[s : s + 10])


def test_span_limits_are_respected_and_channels_kept() -> None:
    sig = np.stack([np.arange(50.0), -np.arange(50.0)])
    x, starts = make_windows(sig, window=8, hop=4, start=10, stop=30)
    assert x.shape[1] == 2 and starts.min() >= 10 and (starts + 8).max() <= 30
    np.testing.assert_array_equal(x[:, 1], -x[:, 0])
    empty, none = make_windows(sig, window=8, hop=4, start=40, stop=45)
    assert empty.shape == (0, 2, 8) and len(none) == 0


def test_invalid_arguments() -> None:
    with pytest.raises(DataError):
        make_windows(np.zeros(10), window=0, hop=1)
    with pytest.raises(DataError):
        make_windows(np.zeros(10), window=4, hop=1, start=5, stop=2)


def test_window_set_concat_and_counts() -> None:
    a = WindowSet(np.zeros((2, 1, 4), np.float32), np.array([0, 1]), np.array([0, 0]), np.array([0, 4]))
    b = WindowSet(np.ones((1, 1, 4), np.float32), np.array([1]), np.array([1]), np.array([0]))
    both = WindowSet.concat([a, b], channels=1, window=4)
    assert len(both) == 3 and both.counts(["n", "f"]) == {"n": 1, "f": 2}
    assert both.y.dtype == np.int64 and both.x.dtype == np.float32
    assert WindowSet.concat([], channels=2, window=4).x.shape == (0, 2, 4)
