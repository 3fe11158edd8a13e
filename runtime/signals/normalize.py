"""Per-window normalisation, identical in training and on the device."""

from __future__ import annotations

import numpy as np

from runtime.artifact import Normalization


def normalize_windows(x: np.ndarray, norm: Normalization) -> np.ndarray:
    """Normalise windows along the last axis and return float32.

    ``x`` has shape ``(..., window)``; each window is scaled on its own for ``zscore`` so that
    the model sees the shape of the vibration, not the sensor's gain or mounting.
    """
    x = np.asarray(x, dtype=np.float32)
    if norm.kind == "none":
        return x
    if norm.kind == "global":
        scale = np.float32(norm.std + norm.eps)
        scaled: np.ndarray = ((x - np.float32(norm.mean)) / scale).astype(np.float32)
        return scaled
    mean = x.mean(axis=-1, keepdims=True, dtype=np.float64)
    std = x.std(axis=-1, keepdims=True, dtype=np.float64)
    out: np.ndarray = ((x - mean) / (std + norm.eps)).astype(np.float32)
    return out
