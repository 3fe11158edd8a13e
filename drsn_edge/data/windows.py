"""Fixed-length windows cut from recordings, with where each one came from.

Windows stay RAW here (physical units): normalisation belongs to the model artifact and is
applied by the training pipeline and the device in the same way
(:func:`runtime.signals.normalize.normalize_windows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from runtime.errors import DataError


@dataclass
class WindowSet:
    """``x`` (N, C, L) float32 raw windows; ``y`` (N,) int64 class indices; for each window the
    index of its ``recording`` and its ``start`` sample in that recording (to audit leakage)."""

    x: np.ndarray
    y: np.ndarray
    recording: np.ndarray
    start: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def empty(cls, channels: int, window: int) -> WindowSet:
        return cls(np.zeros((0, channels, window), np.float32), np.zeros(0, np.int64),
                   np.zeros(0, np.int64), np.zeros(0, np.int64))

    @classmethod
    def concat(cls, parts: Sequence[WindowSet], channels: int, window: int) -> WindowSet:
        """Join window sets; an empty list gives an empty set of the right shape."""
        if not parts:
            return cls.empty(channels, window)
        return cls(
            np.concatenate([p.x for p in parts]).astype(np.float32, copy=False),
            np.concatenate([p.y for p in parts]).astype(np.int64, copy=False),
            np.concatenate([p.recording for p in parts]).astype(np.int64, copy=False),
            np.concatenate([p.start for p in parts]).astype(np.int64, copy=False),
        )

    def counts(self, classes: Sequence[str]) -> dict[str, int]:
        """Windows per class name."""
        per = np.bincount(self.y, minlength=len(classes))
        return {c: int(n) for c, n in zip(classes, per, strict=False)}


def make_windows(
    signal: np.ndarray, window: int, hop: int, start: int = 0, stop: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cut every full window inside ``signal[..., start:stop]``, ``hop`` samples apart.

    Returns ``(windows (N, C, window) float32, starts (N,) int64)``; a 1-D signal is one channel.
    Windows never reach past ``stop``, which is what keeps split spans from sharing samples.
    """
    if window <= 0 or hop <= 0:
        raise DataError(f"window ({window}) and hop ({hop}) must be positive sample counts")
    x = np.asarray(signal, dtype=np.float32)
    x = x[None, :] if x.ndim == 1 else x
    n = x.shape[-1]
    stop = n if stop is None else min(stop, n)
    if start < 0 or stop < start:
        raise DataError(f"window span [{start}, {stop}) is invalid for a signal of {n} samples")
    starts = np.arange(start, stop - window + 1, hop, dtype=np.int64)
    if not len(starts):
        return np.zeros((0, x.shape[0], window), np.float32), starts
    view = sliding_window_view(x[:, start:stop], window, axis=-1)  # (C, positions, window)
    cut = view[:, starts - start, :]
    return np.ascontiguousarray(cut.transpose(1, 0, 2)), starts
