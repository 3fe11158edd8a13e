"""normalize_windows on many windows at once (its element-wise steps with numpy's buffer one window
long) gives the same bits as on each window alone, for every kind, window length and layout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.artifact import Normalization
from runtime.signals.normalize import _UNBUFFERED_FROM, normalize_windows


@settings(max_examples=60, deadline=None)
@given(window=st.sampled_from([1, 15, 16, 17, 64, 100, 2047, 2048]),
       rows=st.integers(1, 3 * _UNBUFFERED_FROM), kind=st.sampled_from(["zscore", "global", "none"]),
       strided=st.booleans(), in_place=st.booleans(), seed=st.integers(0, 2**16))
def test_many_windows_at_once_equal_each_window_alone(window: int, rows: int, kind: str, strided: bool,
                                                      in_place: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    norm = Normalization(kind=kind, mean=0.25, std=3.0)  # type: ignore[arg-type]
    hop = max(window // 4, 1)
    line = (rng.standard_normal((rows, 1, window + 3 * hop)) * 7 + 2).astype(np.float32)
    if strided:  # overlapping windows cut from a buffer, as the window groups do: (rows, 4, 1, window)
        s = line.strides
        x = np.ndarray((rows, 4, 1, window), np.float32, buffer=line, strides=(s[0], s[2] * hop, s[1], s[2]))
    else:
        x = line[:, :, :window].copy()
    want = np.stack([normalize_windows(w, norm) for w in x.reshape(-1, window)]).reshape(x.shape)
    if in_place:
        got = x.copy()
        normalize_windows(got, norm, out=got)
    else:
        got = normalize_windows(x, norm, out=np.empty(x.shape, np.float32))
    np.testing.assert_array_equal(got, want)
    assert np.getbufsize() == 8192  # the buffer size is restored


def test_the_buffer_size_is_restored_when_a_step_fails() -> None:
    x = np.ones((2 * _UNBUFFERED_FROM, 64), np.float32)
    with pytest.raises(ValueError, match="shape"):
        normalize_windows(x, Normalization(kind="zscore"), out=np.empty((3, 64), np.float32))
    assert np.getbufsize() == 8192
