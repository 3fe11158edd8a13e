"""Per-window normalisation, identical in training and on the device."""

from __future__ import annotations

import numpy as np

from runtime.artifact import Normalization


def normalize_windows(x: np.ndarray, norm: Normalization, *, in_place: bool = False) -> np.ndarray:
    """Normalise windows along the last axis and return float32.

    ``x`` has shape ``(..., window)``; each window is scaled on its own for ``zscore`` so that
    the model sees the shape of the vibration, not the sensor's gain or mounting. ``in_place``:
    ``x`` (a float32 array the caller owns) is overwritten and returned, with the same values
    (windows just cut are normalised while they are still in the cache, without new arrays).
    """
    if in_place and x.dtype == np.float32 and norm.kind == "zscore":
        n = np.float32(x.shape[-1])
        x -= np.add.reduce(x, axis=-1, keepdims=True) / n
        var = np.einsum("...i,...i->...", x, x)[..., None] / n
        x *= np.float32(1.0) / (np.sqrt(var) + np.float32(norm.eps))
        return x
    x = np.asarray(x, dtype=np.float32)
    if norm.kind == "none":
        return x
    if norm.kind == "global":
        scale = np.float32(norm.std + norm.eps)
        scaled: np.ndarray = ((x - np.float32(norm.mean)) / scale).astype(np.float32)
        return scaled
    # float32 throughout (numpy's pairwise sums keep the error near 1e-6 for long windows); this is
    # on the daemon's hot path, where np.std's float64 round trip cost more than the model itself
    n = np.float32(x.shape[-1])
    centred = x - np.add.reduce(x, axis=-1, keepdims=True) / n
    var = np.einsum("...i,...i->...", centred, centred)[..., None] / n
    out: np.ndarray = centred * (np.float32(1.0) / (np.sqrt(var) + np.float32(norm.eps)))
    return out
