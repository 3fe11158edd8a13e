"""File replay: the exact samples, in order, once or looped, at the file's rate."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.io import wavfile

from runtime.errors import ConfigError, DataError
from runtime.sources.replay import ReplaySource, ReplaySourceConfig
from tests.sources.collector import Collector

DATA = np.arange(2500, dtype=np.float32) / 100.0


@pytest.fixture
def npy(tmp_path: Path) -> Path:
    path = tmp_path / "ramp.npy"
    np.save(path, DATA)
    return path


def _source(files: list[dict[str, Any]], **kw: Any) -> ReplaySource:
    kw.setdefault("pacing", "fast")
    return ReplaySource(ReplaySourceConfig.model_validate({"files": files, **kw}))


def test_npy_once_gives_every_sample_once_then_finishes(npy: Path) -> None:
    source = _source([{"id": "s", "path": npy, "sample_rate": 1000}], chunk=1000, loop=False)
    assert source.sensors == {"s": 1000.0}
    got = Collector()
    source.start(got.emit, got.on_error)
    assert source.finished.wait(5)
    source.stop()
    chunks = got.of("s")
    assert [c.samples.size for c in chunks] == [1000, 1000, 500]
    assert [c.seq for c in chunks] == [0, 1, 2]
    np.testing.assert_array_equal(got.samples("s"), DATA)
    assert got.errors == []


def test_loop_wraps_around_seamlessly(npy: Path) -> None:
    source = _source([{"id": "s", "path": npy, "sample_rate": 1000}], chunk=1000, loop=True)
    got = Collector()
    source.start(got.emit, got.on_error)
    assert got.wait_for(lambda c: len(c.chunks) >= 6)
    source.stop()
    assert not source.finished.is_set()
    n = len(got.chunks)
    assert [c.seq for c in got.chunks] == list(range(n))
    np.testing.assert_array_equal(got.samples("s"), np.tile(DATA, 3 + n)[: n * 1000])


def test_wav_rate_comes_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    wavfile.write(path, 8000, DATA / 100.0)
    source = _source([{"id": "w", "path": path}], chunk=999, loop=False)
    assert source.sensors == {"w": 8000.0}
    got = Collector()
    source.start(got.emit, got.on_error)
    assert source.finished.wait(5)
    source.stop()
    np.testing.assert_array_equal(got.samples("w"), DATA / 100.0)
    assert all(c.sample_rate == 8000.0 for c in got.chunks)


def test_sensors_of_different_rates_interleave_by_signal_time(tmp_path: Path, npy: Path) -> None:
    fast = tmp_path / "fast.npy"
    np.save(fast, np.zeros(5000, np.float32))
    source = _source([{"id": "slow", "path": npy, "sample_rate": 1000},
                      {"id": "fast", "path": fast, "sample_rate": 2000}], chunk=500, loop=False)
    got = Collector()
    source.start(got.emit, got.on_error)
    assert source.finished.wait(5)
    source.stop()
    order = [c.sensor_id for c in got.chunks]
    # both files last 2.5 s; the 2 kHz sensor needs two chunks for each of the 1 kHz sensor's
    assert order[:6] == ["slow", "fast", "fast", "slow", "fast", "fast"]
    assert got.samples("fast").size == 5000 and got.samples("slow").size == 2500


def test_speed_factor_paces_real_time_replay(npy: Path) -> None:
    source = _source([{"id": "s", "path": npy, "sample_rate": 2500}], chunk=500, loop=False,
                     pacing="realtime", speed=4.0)
    got = Collector()
    start = time.monotonic()
    source.start(got.emit, got.on_error)
    assert source.finished.wait(5)
    elapsed = time.monotonic() - start
    source.stop()
    assert 0.2 <= elapsed <= 0.6, f"1 s of signal at speed 4 should take 0.25 s, took {elapsed:.2f}"
    np.testing.assert_allclose(np.diff([c.t0 for c in got.chunks]), 0.2, atol=1e-6)


def test_file_without_rate_needs_one_in_the_config(npy: Path) -> None:
    with pytest.raises(ConfigError, match=r"declares no sample rate; set sample_rate"):
        _source([{"id": "s", "path": npy}])


def test_config_rate_must_agree_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    wavfile.write(path, 8000, DATA / 100.0)
    with pytest.raises(ConfigError, match=r"declares 8000 Hz but the config says 12000 Hz"):
        _source([{"id": "w", "path": path, "sample_rate": 12000}])


def test_missing_file_fails_before_start(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        _source([{"id": "s", "path": tmp_path / "nope.npy", "sample_rate": 1000}])


def test_multichannel_file_needs_a_channel(tmp_path: Path) -> None:
    path = tmp_path / "two.npy"
    np.save(path, np.stack([DATA, -DATA]))
    with pytest.raises(ConfigError, match=r"has 2 channels; set channel to 0..1"):
        _source([{"id": "s", "path": path, "sample_rate": 1000}])
    source = _source([{"id": "s", "path": path, "sample_rate": 1000, "channel": 1}], loop=False)
    got = Collector()
    source.start(got.emit, got.on_error)
    assert source.finished.wait(5)
    source.stop()
    np.testing.assert_array_equal(got.samples("s"), -DATA)
