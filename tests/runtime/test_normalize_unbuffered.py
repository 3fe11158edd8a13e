"""normalize_windows on many windows at once (its element-wise steps with numpy's buffer one window
long) gives the same bits as on each window alone, for every kind, window length and layout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.artifact import Normalization
from runtime.signals.normalize import _UNBUFFERED_FROM, normalize_windows, overlapping_sums, sum_block


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


UNSHARED = [(256, 64), (2048, 500), (2000, 500), (96, 32)]  # a leaf of 128 is summed whole; no halves


@pytest.mark.parametrize(("window", "hop"), [(2048, 512), (2048, 1024), (2048, 256), (1024, 256),
                                             (4096, 1024), (512, 128), *UNSHARED])
def test_overlapping_windows_summed_from_shared_blocks_have_numpys_bits(window: int, hop: int) -> None:
    """Where :func:`sum_block` finds a block, the sums built from blocks are np.add.reduce's per
    window, bit for bit (random scales, many windows); where it finds none, it says so."""
    b = sum_block(window, hop)
    if (window, hop) in UNSHARED:
        assert b is None
        return
    assert b is not None and hop % b == 0 and window % b == 0
    rng = np.random.default_rng(window + hop)
    count = 5
    line = (rng.standard_normal((40, 1, window + (count - 1) * hop)) * rng.uniform(1e-3, 1e3, (40, 1, 1))
            ).astype(np.float32)
    s = line.strides
    windows = np.ndarray((40, count, 1, window), np.float32, buffer=line,
                         strides=(s[0], s[2] * hop, s[1], s[2]))
    blocks = np.ndarray((40, line.shape[2] // b, 1, b), np.float32, buffer=line,
                        strides=(s[0], s[2] * b, s[1], s[2]))
    got = overlapping_sums(np.add.reduce(blocks, axis=-1), count, window // b, hop // b)
    np.testing.assert_array_equal(got, np.add.reduce(windows, axis=-1, keepdims=True))
