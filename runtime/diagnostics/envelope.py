"""Envelope analysis: is there a bearing fault, and which one, from the envelope spectrum.

The classic method of vibration analysts (Randall & Antoni 2011): band-pass the signal around
the resonance that the impacts excite (chosen by the fast kurtogram or configured), take the
Hilbert envelope, and look in its spectrum for peaks at the fault frequencies of the bearing
(BPFO, BPFI, BSF) and their harmonics. scipy.signal does the filtering, the Hilbert transform
and the window; what is written here is the search for the peaks and the evidence score.

Evidence for a fault type comes from each harmonic ``h`` of its frequency ``f``: the largest peak
within ``h * f * (1 +- tolerance)`` (the tolerance absorbs slip and an imprecise speed), and its
prominence in dB over the local noise floor (the median of the envelope spectrum around it,
the search window excluded). A harmonic counts as found above ``found_db``. Inner-race defects turn
with the shaft, so their peaks carry sidebands at +- the shaft speed; ball defects turn with the
cage, so theirs carry sidebands at +- FTF; found sidebands add to the score. The score is the sum
of found prominences weighted by ``1 / h`` (the fundamental counts most, since higher harmonics
of different faults can fall close together); the verdict is the best-scoring fault among those whose
fundamental is found, with ``min_harmonics`` harmonics found and a score of at least ``min_score``;
otherwise ``none``.

Frequency resolution limits all of this: telling a peak inside a ``tolerance`` window from its
neighbours needs bins narrower than ``tolerance * f`` for the lowest fault frequency, hence a
minimum window length, which :func:`required_samples` states and :func:`analyse` enforces.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime.diagnostics.bearings import Bearing, FaultFrequencies
from runtime.diagnostics.kurtogram import Band, Kurtogram, fast_kurtogram
from runtime.errors import ConfigError, DataError

#: Fault types searched in the envelope spectrum, with the frequency that paces them and the
#: sideband spacing that marks them. Ball defects are searched at 2 x BSF (one impact on each race
#: per spin, the frequency CWRU lists as "BSF").
SEARCHED: dict[str, tuple[str, float, str | None]] = {
    "outer_race": ("bpfo", 1.0, None),
    "inner_race": ("bpfi", 1.0, "shaft"),
    "ball": ("bsf", 2.0, "ftf"),
}


@dataclass(frozen=True)
class EnvelopeSettings:
    """How the envelope is formed and how peaks are judged (see the module docstring)."""

    tolerance: float = 0.02
    harmonics: int = 3
    band: tuple[float, float] | None = None  # None: chosen by the fast kurtogram
    kurtogram_level: int = 5
    min_bandwidth_hz: float = 0.0  # 0: 2 x (harmonics + 1) x the highest fault frequency
    found_db: float = 8.0
    min_harmonics: int = 2
    min_score: float = 12.0
    strong_score: float = 25.0

    def __post_init__(self) -> None:
        if not 0.001 <= self.tolerance <= 0.1:
            raise ConfigError(
                f"tolerance must be in [0.001, 0.1] (a fraction, 0.02 = 2 %), got {self.tolerance}"
            )
        if not 1 <= self.harmonics <= 10:
            raise ConfigError(f"harmonics must be in 1..10, got {self.harmonics}")
        if self.band is not None and not 0 <= self.band[0] < self.band[1]:
            raise ConfigError(f"band must be (low_hz, high_hz) with 0 <= low < high, got {self.band}")


@dataclass(frozen=True)
class Peak:
    """One searched frequency: where it was expected, the peak found near it and its prominence."""

    order: int
    expected_hz: float
    found_hz: float
    prominence_db: float
    found: bool


@dataclass(frozen=True)
class FaultEvidence:
    """The envelope's case for one fault type."""

    fault: str
    frequency_hz: float
    harmonics: tuple[Peak, ...]
    sidebands: tuple[Peak, ...]
    score: float

    @property
    def harmonics_found(self) -> int:
        return sum(p.found for p in self.harmonics)

    @property
    def sidebands_found(self) -> int:
        return sum(p.found for p in self.sidebands)

    @property
    def prominence_db(self) -> float:
        """Largest prominence among the harmonics (what an alert quotes)."""
        return max((p.prominence_db for p in self.harmonics), default=0.0)


@dataclass(frozen=True)
class EnvelopeReport:
    """Everything the envelope analysis found in one window of samples."""

    sample_rate: float
    n_samples: int
    rpm: float
    frequencies: FaultFrequencies
    band: Band
    evidence: dict[str, FaultEvidence]
    verdict: str  # a key of SEARCHED or "none"
    strength: str  # "strong", "weak" or "none"
    spectrum_hz: np.ndarray = field(repr=False)
    spectrum: np.ndarray = field(repr=False)
    kurtogram: Kurtogram | None = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary for tables, events and logs."""
        best = self.evidence.get(self.verdict)
        return {
            "verdict": self.verdict,
            "strength": self.strength,
            "band_hz": [round(self.band.low_hz, 1), round(self.band.high_hz, 1)],
            "matched_frequency_hz": None if best is None else round(best.frequency_hz, 2),
            "harmonics_found": 0 if best is None else best.harmonics_found,
            "prominence_db": None if best is None else round(best.prominence_db, 1),
            "scores": {k: round(v.score, 1) for k, v in self.evidence.items()},
        }


def required_samples(freqs: FaultFrequencies, sample_rate: float, tolerance: float) -> int:
    """Samples needed so that one FFT bin is no wider than ``tolerance`` x the lowest searched frequency."""
    lowest = min(freqs.of(fault) * per for fault, (_, per, _) in SEARCHED.items())
    return math.ceil(sample_rate / (tolerance * lowest))


@functools.lru_cache(maxsize=64)
def _band_filter(low: float, high: float, sample_rate: float) -> np.ndarray:
    """4th-order Butterworth band-pass (low-pass from 0) as second-order sections; cached per band."""
    from scipy.signal import butter

    high = min(high, 0.999 * sample_rate / 2)
    if low <= 0:
        sos: np.ndarray = butter(4, high, btype="lowpass", fs=sample_rate, output="sos")
    else:
        sos = butter(4, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    return sos


def envelope_spectrum(
    x: np.ndarray, sample_rate: float, band: tuple[float, float], segment: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude spectrum of the Hilbert envelope of ``x`` band-passed to ``band``.

    With ``segment`` shorter than ``x`` the spectrum is Welch's average over half-overlapping
    Hann segments of that length: a record longer than the resolution needs buys a steadier noise
    floor rather than finer bins, so a noise bump is less likely to pass for a fault peak.
    """
    from scipy.signal import hilbert, sosfiltfilt, welch

    filtered = sosfiltfilt(
        _band_filter(float(band[0]), float(band[1]), float(sample_rate)), np.asarray(x, dtype=np.float64)
    )
    env = np.abs(hilbert(filtered))
    env -= env.mean()
    nperseg = env.size if segment is None else min(int(segment), env.size)
    hz, power = welch(
        env,
        fs=sample_rate,
        window="hann",
        nperseg=nperseg,
        noverlap=nperseg // 2,
        detrend="constant",
        scaling="spectrum",
    )
    return hz, np.sqrt(2 * power)


def analyse(
    x: np.ndarray,
    sample_rate: float,
    bearing: Bearing,
    rpm: float | None,
    settings: EnvelopeSettings | None = None,
) -> EnvelopeReport:
    """Envelope evidence for each fault type of ``bearing`` at ``rpm`` in the samples ``x``."""
    s = settings or EnvelopeSettings()
    freqs = bearing.frequencies(rpm)
    signal = _checked(x, sample_rate)
    need = required_samples(freqs, sample_rate, s.tolerance)
    if signal.size < need:
        raise DataError(
            f"{signal.size} samples ({signal.size / sample_rate:.3f} s) are too short to resolve "
            f"{bearing.name}'s fault frequencies at {freqs.shaft * 60:g} rpm within {s.tolerance:.1%}: the "
            f"envelope spectrum needs at least {need} samples ({need / sample_rate:.2f} s at "
            f"{sample_rate:g} Hz); give a longer window"
        )
    kurt: Kurtogram | None = None
    if s.band is None:
        top = max(freqs.of(f) * per for f, (_, per, _) in SEARCHED.items())
        min_bw = s.min_bandwidth_hz or 2 * (s.harmonics + 1) * top
        kurt = fast_kurtogram(
            signal, sample_rate, max_level=s.kurtogram_level, min_bandwidth_hz=min(min_bw, sample_rate / 4)
        )
        band = kurt.best
    else:
        band = Band(s.band[0], min(s.band[1], sample_rate / 2), float("nan"), float("nan"))
    segment = 1 << max(need - 1, 1).bit_length()  # the next power of two at or above the need
    hz, amps = envelope_spectrum(signal, sample_rate, (band.low_hz, band.high_hz), segment)
    evidence = {fault: _evidence(fault, freqs, hz, amps, s) for fault in SEARCHED}
    verdict, strength = _verdict(evidence, s)
    return EnvelopeReport(
        float(sample_rate),
        int(signal.size),
        freqs.shaft * 60,
        freqs,
        band,
        evidence,
        verdict,
        strength,
        hz,
        amps,
        kurt,
    )


def _checked(x: np.ndarray, sample_rate: float) -> np.ndarray:
    if not (isinstance(sample_rate, (int, float)) and math.isfinite(sample_rate) and sample_rate > 0):
        raise DataError(f"sample rate must be a positive number of Hz, got {sample_rate!r}")
    signal = np.asarray(x, dtype=np.float64)
    if signal.ndim != 1:
        raise DataError(f"envelope analysis takes one channel (1-D samples), got shape {signal.shape}")
    if not np.all(np.isfinite(signal)):
        raise DataError("the samples hold NaN or infinite values; clean or drop them before diagnosing")
    if signal.size and float(np.ptp(signal)) == 0.0:
        raise DataError("the samples are constant (a dead or disconnected sensor); nothing to diagnose")
    return signal


def _peak(hz: np.ndarray, amps: np.ndarray, target: float, order: int, s: EnvelopeSettings) -> Peak:
    """The largest bin within the tolerance window around ``target`` and its prominence over the floor."""
    df = hz[1] - hz[0]
    half = max(s.tolerance * target, 1.5 * df)
    lo = int(np.searchsorted(hz, target - half, side="left"))
    hi = int(np.searchsorted(hz, target + half, side="right"))
    if lo >= hi or target + half >= hz[-1]:
        return Peak(order, target, target, 0.0, False)
    wide = max(12 * half, 30 * df)
    first = max(
        int(np.searchsorted(hz, target - wide, side="left")), int(np.searchsorted(hz, 2 * df, side="right"))
    )
    last = int(np.searchsorted(hz, target + wide, side="right"))
    i = int(lo + np.argmax(amps[lo:hi]))
    around = np.concatenate([amps[first:lo], amps[max(hi, first) : last]])
    floor = float(np.median(around)) if around.size else 0.0
    prominence = 20 * math.log10(amps[i] / floor) if floor > 0 and amps[i] > 0 else 0.0
    return Peak(order, target, float(hz[i]), prominence, prominence >= s.found_db)


def _evidence(
    fault: str, freqs: FaultFrequencies, hz: np.ndarray, amps: np.ndarray, s: EnvelopeSettings
) -> FaultEvidence:
    _, per, side = SEARCHED[fault]
    base = freqs.of(fault) * per
    harmonics = tuple(_peak(hz, amps, h * base, h, s) for h in range(1, s.harmonics + 1))
    sidebands: list[Peak] = []
    if side is not None:
        spacing = getattr(freqs, side)
        for p in harmonics:
            if p.found:
                sidebands += [_peak(hz, amps, p.found_hz + sign * spacing, p.order, s) for sign in (-1, 1)]
    score = sum(p.prominence_db / p.order for p in harmonics if p.found)
    score += 0.5 * sum(p.prominence_db / p.order for p in sidebands if p.found)
    return FaultEvidence(fault, base, harmonics, tuple(sidebands), float(score))


def _verdict(evidence: dict[str, FaultEvidence], s: EnvelopeSettings) -> tuple[str, str]:
    # a fault without its fundamental is not named: its higher harmonics may be another fault's
    # (3 x BPFO lies 0.7 % from 2 x BPFI on a 6205)
    eligible = [
        e
        for e in evidence.values()
        if e.harmonics[0].found and e.harmonics_found >= s.min_harmonics and e.score >= s.min_score
    ]
    if not eligible:
        return "none", "none"
    best = max(eligible, key=lambda e: e.score)
    return best.fault, "strong" if best.score >= s.strong_score else "weak"
