"""Per-window normalisation, identical in training and on the device."""

from __future__ import annotations

import numpy as np

from runtime.artifact import Normalization


def normalize_windows(x: np.ndarray, norm: Normalization, *, out: np.ndarray | None = None) -> np.ndarray:
    """Normalise windows along the last axis and return float32.

    ``x`` has shape ``(..., window)``; each window is scaled on its own for ``zscore`` so that
    the model sees the shape of the vibration, not the sensor's gain or mounting. ``out``: a
    float32 array of ``x``'s shape (``x`` itself for in place) that receives the result and is
    returned, with the same values, so that windows just cut are normalised without new arrays
    while they are still in the cache (the daemon's window groups).
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
    n = np.float32(x.shape[-1])
    centred: np.ndarray = np.subtract(x, np.add.reduce(x, axis=-1, keepdims=True) / n, out=out)
    var = np.einsum("...i,...i->...", centred, centred)[..., None] / n
    centred *= np.float32(1.0) / (np.sqrt(var) + np.float32(norm.eps))
    return centred
