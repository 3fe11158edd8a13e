"""The fast kurtogram (Antoni 2007): which frequency band carries the bearing's impacts.

Impacts from a localised defect ring a structural resonance; in that band the signal is
impulsive, so its spectral kurtosis is high, while gear mesh, shaft harmonics and broadband noise
keep it near zero. Demodulating the band with the largest kurtosis gives the clearest envelope
spectrum (Antoni & Randall 2006).

No maintained Python package offers the kurtogram (the few published scripts are unpackaged
ports of Antoni's MATLAB code), so it is written here, on numpy's FFT. It keeps Antoni's
1/3-binary tiling of the frequency axis (levels 0, 1, 1.6, 2, 2.6, ...: 1, 2, 3, 4, 6, 8, 12 ...
bands) but forms each band's complex envelope in the frequency domain: the band's FFT bins,
inverse-transformed on their own, are the band's analytic signal shifted to baseband and decimated
to the band's width. That is one FFT of the record plus small inverse FFTs whose sizes add up
to the record's length per level, the same cost as Antoni's filter-bank tree, with ideal
(rectangular) band edges instead of his quasi-analytic FIR filters.

Kurtosis of a complex envelope ``c`` is ``E|c|^4 / (E|c|^2)^2 - 2``: zero for Gaussian noise,
positive for impulsive content (Antoni 2006, eq. 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from runtime.errors import DataError


@dataclass(frozen=True)
class Band:
    """A demodulation band and how impulsive the signal is in it."""

    low_hz: float
    high_hz: float
    level: float
    kurtosis: float

    @property
    def center_hz(self) -> float:
        return 0.5 * (self.low_hz + self.high_hz)

    @property
    def bandwidth_hz(self) -> float:
        return self.high_hz - self.low_hz


@dataclass(frozen=True)
class Kurtogram:
    """Spectral kurtosis of every band of every level; ``best`` is the one to demodulate."""

    sample_rate: float
    levels: tuple[float, ...]
    kurtosis: tuple[np.ndarray, ...]  # one array per level, one value per band (low to high frequency)
    best: Band


def levels_up_to(max_level: int) -> list[tuple[float, int]]:
    """(level, number of bands) of the 1/3-binary tree: (0, 1), (1, 2), (1.6, 3), (2, 4), (2.6, 6) ..."""
    out = [(0.0, 1)]
    for k in range(1, max_level + 1):
        out.append((float(k), 2**k))
        if k < max_level:
            out.append((round(k + math.log2(3) - 1, 1), 3 * 2 ** (k - 1)))
    return out


def band_kurtosis(bands: np.ndarray) -> np.ndarray:
    """Kurtosis of the complex envelope of each row of rfft bins (one row per band)."""
    c = np.fft.ifft(bands, axis=-1)
    power = c.real**2 + c.imag**2
    mean_power = power.mean(axis=-1)
    safe = np.where(mean_power > 0, mean_power, 1.0)
    kurt: np.ndarray = np.where(mean_power > 0, (power**2).mean(axis=-1) / safe**2 - 2.0, 0.0)
    return kurt


def fast_kurtogram(
    x: np.ndarray,
    sample_rate: float,
    *,
    max_level: int = 6,
    min_bandwidth_hz: float = 0.0,
    min_band_samples: int = 64,
) -> Kurtogram:
    """Spectral kurtosis on Antoni's band tiling up to ``max_level``; the best band is chosen
    among those at least ``min_bandwidth_hz`` wide (narrow bands lose the fault's harmonics).

    Bands with fewer than ``min_band_samples`` FFT bins are left out (NaN): their kurtosis
    estimate is too noisy to rank.
    """
    signal = np.asarray(x, dtype=np.float64)
    if signal.ndim != 1 or signal.size < 2 * min_band_samples:
        raise DataError(
            f"the kurtogram needs one channel of at least {2 * min_band_samples} samples, "
            f"got shape {signal.shape}"
        )
    if not np.all(np.isfinite(signal)):
        raise DataError("the signal holds NaN or infinite samples; clean or drop them before diagnosing")
    spectrum = np.fft.rfft(signal - signal.mean())
    nyquist_bins = len(spectrum) - 1
    hz_per_bin = sample_rate / signal.size
    levels, values = [], []
    best: Band | None = None
    for level, n_bands in levels_up_to(max_level):
        per_band = nyquist_bins // n_bands  # equal bands; the few bins left at the top are dropped
        if per_band < min_band_samples:
            row = np.full(n_bands, np.nan)
        else:
            row = band_kurtosis(spectrum[: n_bands * per_band].reshape(n_bands, per_band))
            if per_band * hz_per_bin >= min_bandwidth_hz:
                i = int(np.argmax(row))
                if best is None or row[i] > best.kurtosis:
                    lo = i * per_band * hz_per_bin
                    best = Band(lo, lo + per_band * hz_per_bin, level, float(row[i]))
        levels.append(level)
        values.append(row)
    if best is None:
        raise DataError(
            f"no band of the kurtogram is {min_bandwidth_hz:g} Hz wide with {min_band_samples} bins; "
            "use a longer recording or a lower minimum bandwidth"
        )
    return Kurtogram(float(sample_rate), tuple(levels), tuple(values), best)
