"""Noise augmentation of training windows: the SNR asked for, the device's normalisation, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drsn_edge.training.augment import NoiseAugment
from runtime.artifact import Normalization
from runtime.errors import ConfigError
from runtime.signals.normalize import normalize_windows


def _windows(n: int = 64, length: int = 1024) -> np.ndarray:
    t = np.arange(length) / 12_000
    rng = np.random.default_rng(0)
    raw = np.sin(2 * np.pi * 157 * t)[None, None, :] * rng.uniform(0.5, 2.0, (n, 1, 1))
    return normalize_windows(raw.astype(np.float32), Normalization())


def test_parse_accepts_the_documented_form_and_names_mistakes() -> None:
    aug = NoiseAugment.parse("gaussian, pink:-10..4dB", probability=0.25)
    assert (aug.kinds, aug.snr_low, aug.snr_high, aug.probability) == (("gaussian", "pink"), -10.0, 4.0, 0.25)
    for bad, why in (
        ("gaussian:-10", "KINDS:LOW..HIGH"),
        ("brown:-10..4", "must be among"),
        ("gaussian:4..-10", "reversed"),
    ):
        with pytest.raises(ConfigError, match=why):
            NoiseAugment.parse(bad)
    with pytest.raises(ConfigError, match="probability"):
        NoiseAugment.parse("pink:0..1", probability=0.0)


def test_noise_is_added_at_the_drawn_snr_and_windows_are_renormalised() -> None:
    x = _windows()
    aug = NoiseAugment(("gaussian",), -3.0, -3.0, probability=1.0)  # a fixed SNR: easy to check
    noisy = aug.apply(x, Normalization(), np.random.default_rng(1))
    assert noisy.shape == x.shape and noisy.dtype == np.float32 and not np.shares_memory(noisy, x)
    # z-scored again, as the device will see it
    np.testing.assert_allclose(noisy.mean(axis=-1), 0.0, atol=1e-4)
    np.testing.assert_allclose(noisy.std(axis=-1), 1.0, atol=1e-3)
    # undo the re-normalisation to measure the SNR: signal share of the power is 1 / (1 + 10^0.3)
    corr = np.einsum("ncl,ncl->n", noisy, x) / x.shape[-1]
    snr = 10 * np.log10(corr**2 / (1 - corr**2))
    assert np.median(snr) == pytest.approx(-3.0, abs=0.3)


def test_probability_leaves_a_share_of_windows_clean_and_the_input_untouched() -> None:
    x = _windows(n=400)
    before = x.copy()
    noisy = NoiseAugment(("laplacian", "pink"), -10.0, 4.0, probability=0.25).apply(
        x, Normalization(), np.random.default_rng(2)
    )
    changed = np.any(noisy != x, axis=(1, 2))
    assert 0.17 < changed.mean() < 0.33
    np.testing.assert_array_equal(x, before)


def test_training_with_augmentation_is_deterministic_and_differs_from_without(tmp_path: Path) -> None:
    from drsn_edge.training.datasource import DataSpec
    from drsn_edge.training.pipeline import prepare
    from drsn_edge.training.trainer import TrainConfig, train

    spec = DataSpec(source="synthetic", window=1024, hop=512, synthetic_per_class=2, synthetic_seconds=2.0)
    data, norm = prepare(spec)
    noise = "gaussian,pink:-6..0"
    cfg = TrainConfig(epochs=2, threads=1, progress=False, augment_noise=noise, augment_prob=1.0)
    a = train(data, spec, cfg, tmp_path / "a", norm=norm)
    b = train(data, spec, cfg, tmp_path / "b", norm=norm)
    plain = train(data, spec, TrainConfig(epochs=2, threads=1, progress=False), tmp_path / "c", norm=norm)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert [h["train_loss"] for h in a.history] != [h["train_loss"] for h in plain.history]
