"""Signal-level features that no training shaped, for a novelty candidate beside the network's.

A network trained without one ball fault never had to separate it from the other ball faults, so
its pooled features need not; the spectrum of the window itself does not depend on what the
network was taught. These features are the log energies of the window's power spectrum in fixed,
equally wide bands from 0 Hz to Nyquist, and of the spectrum of its envelope (the magnitude of
the analytic signal, where bearing defect rates show). The windows arrive z-scored per window as
the model sees them, so every band is a share of one fixed total: the spectral shape, not the
sensor's gain. Host-only (numpy), written plainly with a complex FFT: the device's
:func:`runtime.novelty.scores.envelope_bands` is checked against :func:`envelope_bands` here.
"""

from __future__ import annotations

import numpy as np

#: bands of the power spectrum and of the envelope spectrum
N_BANDS = 32
ENV_BANDS = 16
_EPS = 1e-12


def _band_log_energy(power: np.ndarray, n_bands: int) -> np.ndarray:
    """log mean power in ``n_bands`` equally wide bands of the bins 1..end (DC left out)."""
    edges = np.linspace(1, power.shape[1], n_bands + 1).astype(np.int64)
    sums = np.add.reduceat(power, edges[:-1], axis=1)
    widths = np.diff(edges).astype(np.float64)
    out: np.ndarray = np.log(sums / widths + _EPS)
    return out


def spectrum_bands(x: np.ndarray, n_bands: int = N_BANDS) -> np.ndarray:
    """(N, n_bands) log band energies of the windows ``x`` (N, W) or (N, 1, W)."""
    w = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    power = np.abs(np.fft.rfft(w, axis=1)) ** 2
    return _band_log_energy(power, n_bands)


def envelope_bands(x: np.ndarray, n_bands: int = ENV_BANDS) -> np.ndarray:
    """(N, n_bands) log band energies of the spectrum of each window's envelope (Hilbert magnitude).

    The envelope's spectrum is cut at a quarter of Nyquist: defect repetition rates are slow.
    """
    w = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    n = w.shape[1]
    spec = np.fft.fft(w, axis=1)
    h = np.zeros(n)
    h[0] = 1.0
    h[1 : (n + 1) // 2] = 2.0
    if n % 2 == 0:
        h[n // 2] = 1.0
    env = np.abs(np.fft.ifft(spec * h, axis=1))
    env = env - env.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(env, axis=1)) ** 2
    return _band_log_energy(power[:, : n // 8 + 1], n_bands)
