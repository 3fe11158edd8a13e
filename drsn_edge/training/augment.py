"""Noise augmentation: add noise at a random SNR to training windows, drawn afresh every epoch.

The noise study shows that a model trained on clean recordings collapses when the plant is
noisy, whatever its architecture, while one trained on noisy recordings holds up (DRSN-CW best
of all). Recording noisy data on purpose is rarely possible, so this adds the noise in
training: each selected window gets Gaussian, Laplacian or pink noise at an SNR drawn uniformly
from a range, relative to that window's own power, and is then normalised again the way the
device will normalise it (per-window z-score), so training sees what inference will see.

The spec is written ``KINDS:LOW..HIGH``, e.g. ``gaussian,laplacian,pink:-10..4``. Validation and
test windows are left as they are: the best epoch is still chosen on the data's own validation
span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from drsn_edge.data.noise import NOISE_KINDS, add_noise
from runtime.artifact import Normalization
from runtime.errors import ConfigError
from runtime.signals.normalize import normalize_windows

_NUMBER = r"([-+]?\d+(?:\.\d*)?)"
_SPEC = re.compile(rf"\s*([a-z,\s]+?)\s*:\s*{_NUMBER}\s*\.\.\s*{_NUMBER}\s*(?:db)?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class NoiseAugment:
    """Which noises, which SNR range (dB) and which share of the training windows get noise."""

    kinds: tuple[str, ...]
    snr_low: float
    snr_high: float
    probability: float = 0.5

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in NOISE_KINDS]
        if not self.kinds or unknown:
            raise ConfigError(
                f"noise augmentation kinds {list(self.kinds)} must be among {', '.join(NOISE_KINDS)}"
            )
        if not self.snr_low <= self.snr_high:
            raise ConfigError(f"noise augmentation SNR range {self.snr_low}..{self.snr_high} is reversed")
        if not 0.0 < self.probability <= 1.0:
            raise ConfigError(f"noise augmentation probability must be in (0, 1], got {self.probability}")

    @classmethod
    def parse(cls, text: str, probability: float = 0.5) -> NoiseAugment:
        """``gaussian,pink:-10..4`` -> kinds (gaussian, pink), SNR uniform in [-10, 4] dB."""
        m = _SPEC.fullmatch(text)
        if not m:
            raise ConfigError(
                f"noise augmentation {text!r} must look like KINDS:LOW..HIGH, "
                "e.g. gaussian,laplacian,pink:-10..4"
            )
        kinds = tuple(k.strip().lower() for k in m.group(1).split(",") if k.strip())
        return cls(kinds, float(m.group(2)), float(m.group(3)), probability)

    def apply(self, x: np.ndarray, norm: Normalization, rng: np.random.Generator) -> np.ndarray:
        """A noisy copy of the normalised windows ``x`` (N, C, L); unselected windows are unchanged."""
        out = np.array(x, dtype=np.float32, copy=True)
        picked = np.flatnonzero(rng.random(len(x)) < self.probability)
        if not len(picked):
            return out
        snrs = rng.uniform(self.snr_low, self.snr_high, size=len(picked))
        kinds = rng.integers(0, len(self.kinds), size=len(picked))
        for i, snr, k in zip(picked, snrs, kinds, strict=True):
            flat = out[i].reshape(1, -1)
            if float(np.mean(flat.astype(np.float64) ** 2)) > 0:  # a flat window has no SNR to keep
                out[i] = add_noise(flat, float(snr), self.kinds[k], rng).reshape(out[i].shape)
        if norm.kind == "zscore":  # the device z-scores the noisy window, so training must too
            out[picked] = normalize_windows(out[picked], norm)
        return out
