"""Per-window normalisation, identical in training and on the device."""

from __future__ import annotations

import numpy as np

from runtime.artifact import Normalization


def normalize_windows(x: np.ndarray, norm: Normalization, *, out: np.ndarray | None = None,
                      sums: np.ndarray | None = None) -> np.ndarray:
    """Normalise windows along the last axis and return float32.

    ``x`` has shape ``(..., window)``; each window is scaled on its own for ``zscore`` so that
    the model sees the shape of the vibration, not the sensor's gain or mounting. ``out``: a
    float32 array of ``x``'s shape (``x`` itself for in place) that receives the result and is
    returned, with the same values, so that windows just cut are normalised without new arrays
    while they are still in the cache (the daemon's window groups). ``sums``: ``zscore`` only, each
    window's sum, shape ``(..., 1)``, as ``np.add.reduce`` gives it (:func:`overlapping_sums`).
    """
    x = np.asarray(x, dtype=np.float32)
    if norm.kind == "none":
        if out is None:
            return x
        np.copyto(out, x)
        return out
    if norm.kind == "global":
        scale = np.float32(norm.std + norm.eps)
        shifted: np.ndarray = np.subtract(x, np.float32(norm.mean), out=out)
        shifted /= scale
        return shifted
    # float32 throughout (numpy's pairwise sums keep the error near 1e-6 for long windows); this is
    # on the daemon's hot path, where np.std's float64 round trip cost more than the model itself
    window = x.shape[-1]
    n = np.float32(window)
    mean = (np.add.reduce(x, axis=-1, keepdims=True) if sums is None else sums) / n
    if x.size < _UNBUFFERED_FROM * window:  # a few windows: setting the buffer costs more than it saves
        centred: np.ndarray = np.subtract(x, mean, out=out)
        var = np.einsum("...i,...i->...", centred, centred)[..., None] / n
        centred *= np.float32(1.0) / (np.sqrt(var) + np.float32(norm.eps))
        return centred
    with _rows_unbuffered(window):
        centred = np.subtract(x, mean, out=out)
    var = np.einsum("...i,...i->...", centred, centred)[..., None] / n
    scale = np.float32(1.0) / (np.sqrt(var) + np.float32(norm.eps))
    with _rows_unbuffered(window):
        centred *= scale
    return centred


#: windows from which the element-wise steps run unbuffered: setting and resetting the buffer size
#: twice costs about 48,000 instructions per call (cachegrind), and avoiding the copy saves about
#: 4,000 per window of 2,048 samples, so one or two windows lose and eight about break even
_UNBUFFERED_FROM = 16


class _rows_unbuffered:  # noqa: N801 (used like a function: ``with _rows_unbuffered(window)``)
    """Run ufuncs with numpy's buffer no larger than one window, so a per-window value (shape
    ``(..., 1)``) is read where it lies instead of being copied out to a buffer first.

    Since numpy 2.3 a broadcast operand like the mean is expanded into the ufunc buffer (8,192
    elements by default) so that the loop can run over several windows at once: that copy cost
    more instructions than the subtraction itself (about 6,000 per window of 2,048 samples in the
    daemon's block path). With the buffer one window long the loop runs window by window, without
    a copy. Only element-wise operations run inside (their results cannot depend on the buffer);
    the sums stay outside, since a reduction's blocking follows the buffer size."""

    __slots__ = ("_old", "_size")

    def __init__(self, window: int) -> None:
        # numpy takes multiples of 16 from 16 up; a shorter buffer than the window costs nothing
        # but a few more loop calls
        self._size = max(window // 16 * 16, 16)

    def __enter__(self) -> None:
        self._old = np.setbufsize(self._size)

    def __exit__(self, *exc: object) -> None:
        np.setbufsize(self._old)


def sum_block(window: int, hop: int) -> int | None:
    """The block length whose sums build every window's sum exactly as numpy sums the window, or None.

    ``np.add.reduce`` sums a float32 window pairwise: it splits ``n`` samples into halves of
    ``n // 2 - (n // 2) % 8`` and ``n - that`` until 128 or fewer remain, summed by one fixed loop.
    A window whose length halves exactly down to a block of ``b`` samples, where ``b`` divides the
    hop, is therefore the same tree over sums of ``b``-blocks that overlapping windows share: each
    sample is summed once instead of once per window that holds it (four times at a hop of a
    quarter window), and the result has the same bits. Returns the largest such ``b``.
    """
    n = window
    while n > 128 and n % 16 == 0:  # n splits into two exact halves
        n //= 2
        if hop % n == 0:
            return n
    return None


def overlapping_sums(blocks: np.ndarray, count: int, per_window: int, step: int) -> np.ndarray:
    """Each window's sum from the sums of its blocks: ``blocks`` ``(rows, nblocks, channels)``
    float32 sums of consecutive :func:`sum_block` blocks; window ``k`` of a row holds blocks
    ``k * step`` to ``k * step + per_window``; returns ``(rows, count, channels, 1)``, added pairwise
    in numpy's order (``per_window`` is a power of two)."""
    blocks = np.ascontiguousarray(blocks)
    s_row, s_block, s_chan = blocks.strides
    x = np.ndarray((blocks.shape[0], count, blocks.shape[2], per_window), dtype=blocks.dtype, buffer=blocks,
                   strides=(s_row, s_block * step, s_chan, s_block))
    while x.shape[-1] > 1:
        x = np.add(x[..., 0::2], x[..., 1::2])
    out: np.ndarray = x
    return out
