"""Noise at a requested SNR: the measured SNR, the shape of each kind, and the spec syntax."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch
from scipy.stats import kurtosis

from drsn_edge.data.noise import NoiseSpec, add_noise, snr_db
from runtime.errors import ConfigError, DataError
from runtime.signals.simulator import BearingSimulator

SIGNAL = BearingSimulator("inner_race", seed=4).generate(60000)


@pytest.mark.parametrize("kind", ["gaussian", "laplacian", "pink"])
@pytest.mark.parametrize("target", [-8.0, 0.0, 6.0])
def test_measured_snr_matches_the_request(kind: str, target: float) -> None:
    noisy = add_noise(SIGNAL, target, kind, np.random.default_rng(1))
    assert noisy.dtype == np.float32 and noisy.shape == SIGNAL.shape
    assert snr_db(SIGNAL, noisy) == pytest.approx(target, abs=0.2)


def test_each_channel_gets_its_own_snr() -> None:
    two = np.stack([SIGNAL, 10 * SIGNAL])
    noisy = add_noise(two, -4.0, "gaussian", np.random.default_rng(2))
    for c in range(2):
        assert snr_db(two[c], noisy[c]) == pytest.approx(-4.0, abs=0.2)


def test_pink_noise_falls_10_db_per_decade() -> None:
    x = np.zeros(2**18) + 1.0  # a constant signal: the noise is everything that varies
    noise = add_noise(x, 0.0, "pink", np.random.default_rng(3)) - x
    f, p = welch(noise, fs=1.0, nperseg=8192)
    band = (f > 1e-3) & (f < 0.3)
    slope = np.polyfit(np.log10(f[band]), 10 * np.log10(p[band]), 1)[0]
    assert slope == pytest.approx(-10.0, abs=1.0)
    f, p = welch(add_noise(x, 0.0, "gaussian", np.random.default_rng(3)) - x, fs=1.0, nperseg=8192)
    white = np.polyfit(np.log10(f[band]), 10 * np.log10(p[band]), 1)[0]
    assert abs(white) < 1.0


def test_laplacian_is_heavier_tailed_than_gaussian() -> None:
    x = np.ones(100000)
    lap = add_noise(x, 0.0, "laplacian", np.random.default_rng(5)) - x
    gau = add_noise(x, 0.0, "gaussian", np.random.default_rng(5)) - x
    assert kurtosis(lap) == pytest.approx(3.0, abs=0.4) and abs(kurtosis(gau)) < 0.2


def test_same_generator_same_noise_and_errors() -> None:
    a = add_noise(SIGNAL, 0.0, "pink", np.random.default_rng(9))
    np.testing.assert_array_equal(a, add_noise(SIGNAL, 0.0, "pink", np.random.default_rng(9)))
    with pytest.raises(DataError, match="all-zero"):
        add_noise(np.zeros(10), 0.0)
    with pytest.raises(ConfigError, match="choose one of"):
        add_noise(SIGNAL, 0.0, "brown")


def test_spec_parse_round_trip() -> None:
    assert NoiseSpec.parse("gaussian:-4") == NoiseSpec("gaussian", -4.0)
    assert NoiseSpec.parse(" Pink : -8dB ") == NoiseSpec("pink", -8.0)
    assert NoiseSpec.parse("2.5") == NoiseSpec("gaussian", 2.5)
    assert str(NoiseSpec("laplacian", 0.0)) == "laplacian:0"
    assert NoiseSpec.parse(str(NoiseSpec("pink", -2.5))) == NoiseSpec("pink", -2.5)
    for bad in ("gaussian", "white:-4", "gaussian:-4:x", ""):
        with pytest.raises(ConfigError):
            NoiseSpec.parse(bad)
