"""Additive noise at a requested signal-to-noise ratio: Gaussian, Laplacian (impulsive) or pink.

The SNR is measured against the power of what is passed in. For the paper-style robustness
study a whole recording is passed, so the noise level follows that recording's overall power and
is drawn once per recording (not once per window, which would leak the window's own power into
the noise and make every window look equally noisy).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from runtime.errors import ConfigError, DataError

log = logging.getLogger(__name__)

NoiseKind = Literal["gaussian", "laplacian", "pink"]
NOISE_KINDS: tuple[str, ...] = ("gaussian", "laplacian", "pink")
_SPEC = re.compile(r"\s*(?:([a-z]+)\s*:)?\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:db)?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class NoiseSpec:
    """Which noise and how much: ``NoiseSpec("gaussian", -4.0)`` is written ``gaussian:-4``."""

    kind: NoiseKind = "gaussian"
    snr_db: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise ConfigError(f"unknown noise kind {self.kind!r}; choose one of {', '.join(NOISE_KINDS)}")
        if not np.isfinite(self.snr_db):
            raise ConfigError(f"noise SNR must be a finite number of dB, got {self.snr_db}")

    @classmethod
    def parse(cls, text: str) -> NoiseSpec:
        """Parse ``kind:snr`` such as ``gaussian:-4``, ``pink:0dB``; a bare number means Gaussian."""
        m = _SPEC.fullmatch(text)
        if not m:
            raise ConfigError(
                f"noise {text!r} must look like KIND:SNR_DB, e.g. gaussian:-4, laplacian:0 or pink:-8"
            )
        kind = (m.group(1) or "gaussian").lower()
        if kind not in NOISE_KINDS:
            raise ConfigError(
                f"unknown noise kind {kind!r} in {text!r}; choose one of {', '.join(NOISE_KINDS)}"
            )
        return cls(cast(NoiseKind, kind), float(m.group(2)))

    def __str__(self) -> str:
        return f"{self.kind}:{self.snr_db:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "snr_db": float(self.snr_db)}


def add_noise(
    x: np.ndarray, snr_db: float, kind: str = "gaussian", rng: np.random.Generator | None = None
) -> np.ndarray:
    """Return ``x`` plus noise whose power is ``power(x) / 10**(snr_db / 10)``, as float32.

    Power is measured along the last axis, so each channel of a ``(C, n)`` recording gets its
    own SNR. The noise is scaled to the exact target power of this draw, so the SNR is what was
    asked for even on short signals.
    """
    if kind not in NOISE_KINDS:
        raise ConfigError(f"unknown noise kind {kind!r}; choose one of {', '.join(NOISE_KINDS)}")
    rng = rng if rng is not None else np.random.default_rng()
    signal = np.asarray(x, dtype=np.float64)
    power = np.mean(signal**2, axis=-1, keepdims=True)
    if np.any(power <= 0):
        raise DataError(
            "cannot add noise at an SNR to an all-zero signal (its power is 0); check the recording"
        )
    noise = _draw(kind, signal.shape, rng)
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / np.mean(noise**2, axis=-1, keepdims=True))
    noisy: np.ndarray = (signal + noise).astype(np.float32)
    return noisy


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """Measured SNR in dB of ``noisy`` against ``clean`` (over the whole array)."""
    c = np.asarray(clean, dtype=np.float64)
    n = np.asarray(noisy, dtype=np.float64) - c
    return float(10 * np.log10(np.mean(c**2) / np.mean(n**2)))


def _draw(kind: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if kind == "gaussian":
        white: np.ndarray = rng.standard_normal(shape)
        return white
    if kind == "laplacian":
        spiky: np.ndarray = rng.laplace(size=shape)
        return spiky
    return pink_noise(shape, rng)


def pink_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectral density ~ 1/f (-10 dB per decade), by shaping white noise's spectrum.

    The DC bin is zeroed: pink noise has no meaningful mean, and keeping it would add an offset.
    """
    n = shape[-1]
    spectrum = np.fft.rfft(rng.standard_normal(shape), axis=-1)
    f = np.arange(spectrum.shape[-1], dtype=np.float64)
    gain = np.zeros_like(f)
    gain[1:] = 1.0 / np.sqrt(f[1:])
    pink: np.ndarray = np.fft.irfft(spectrum * gain, n=n, axis=-1)
    return pink
