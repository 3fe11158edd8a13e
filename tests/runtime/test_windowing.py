"""SensorWindower: exact slices under any chunking, hop, resampling, normalisation, gaps, NaN."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.artifact import ModelInfo, ModelMetadata, Normalization, TensorSpec
from runtime.errors import ConfigError, DataError
from runtime.signals.normalize import normalize_windows
from runtime.signals.resample import StreamResampler
from runtime.windowing import SensorWindower, Window, WindowBlock
from tests.runtime.tiny_models import make_metadata

WINDOW, HOP, RATE = 64, 16, 1000.0


def _chunks(x: np.ndarray, rng: np.random.Generator, max_chunk: int = 300) -> list[np.ndarray]:
    cuts = np.cumsum(rng.integers(1, max_chunk, size=len(x)))
    cuts = cuts[cuts < len(x)]
    return np.split(x, cuts)


def _push_all(w: SensorWindower, chunks: list[np.ndarray]) -> list[Window]:
    out: list[Window] = []
    for i, c in enumerate(chunks):
        out += w.push(c, seq=i)
    return out


def _expected(x: np.ndarray, window: int, hop: int) -> np.ndarray:
    starts = range(0, len(x) - window + 1, hop)
    return np.stack([x[s : s + window] for s in starts])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("hop", [None, 7, 64, 100])
def test_windows_are_the_expected_slices_under_random_chunking(seed: int, hop: int | None) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(3000).astype(np.float32)
    w = SensorWindower("s1", RATE, make_metadata(WINDOW, hop=HOP, norm="none"), hop=hop)
    got = _push_all(w, _chunks(x, rng))
    want = _expected(x, WINDOW, hop or HOP)
    assert len(got) == len(want)
    np.testing.assert_array_equal(np.stack([g.data[0] for g in got]), want)
    assert [g.index for g in got] == list(range(len(want)))
    assert all(g.data.shape == (1, WINDOW) and g.sensor_id == "s1" for g in got)
    assert w.stats.gaps == 0 and w.stats.windows == len(want)


def test_zscore_normalisation_is_applied() -> None:
    rng = np.random.default_rng(3)
    x = (5.0 + 3.0 * rng.standard_normal(1000)).astype(np.float32)
    w = SensorWindower("s1", RATE, make_metadata(WINDOW, hop=HOP, norm="zscore"))
    got = np.stack([g.data[0] for g in w.push(x)])
    want = normalize_windows(_expected(x, WINDOW, HOP), Normalization(kind="zscore"))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.abs(got.mean(axis=1)).max() < 1e-4 and np.allclose(got.std(axis=1), 1.0, atol=1e-3)


def test_multichannel_windows_keep_channels_apart() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((500, 2)).astype(np.float32)
    w = SensorWindower("tri", RATE, make_metadata(WINDOW, channels=2, hop=HOP, norm="none"))
    got = _push_all(w, _chunks(x, rng, 50))
    assert got[0].data.shape == (2, WINDOW)
    for ch in range(2):
        np.testing.assert_array_equal(np.stack([g.data[ch] for g in got]), _expected(x[:, ch], WINDOW, HOP))
    w = SensorWindower("tri", RATE, make_metadata(WINDOW, channels=2, hop=HOP, norm="none"))
    w.push(x[:40])
    with pytest.raises(DataError, match="channel"):
        w.push(np.zeros((10, 3), dtype=np.float32))
    assert w.stats.bad_chunks == 1 and w.stats.dropped_samples == 40  # the partial window went too


def test_resampling_produces_model_rate_windows() -> None:
    sensor_rate, f0 = 4 * RATE, 50.0
    t = np.arange(8000) / sensor_rate
    x = np.sin(2 * np.pi * f0 * t).astype(np.float32)
    rng = np.random.default_rng(5)
    w = SensorWindower("fast", sensor_rate, make_metadata(256, hop=128, norm="none"))
    assert w.resampling
    got = _push_all(w, _chunks(x, rng))
    # the whole stream through one resampler, sliced, is what the windows must be
    model_rate_x = StreamResampler(sensor_rate, RATE).process(x)
    want = _expected(model_rate_x, 256, 128)
    assert len(got) == len(want) >= 6
    np.testing.assert_allclose(np.stack([g.data[0] for g in got]), want, atol=1e-5)
    # and it is a 50 Hz tone at the model's 1 kHz rate: the FFT peak sits at bin 50 / (1000 / 256)
    spectrum = np.abs(np.fft.rfft(got[-1].data[0]))
    assert int(np.argmax(spectrum)) == round(f0 / (RATE / 256))


def test_sensor_slower_than_model_is_rejected_up_front() -> None:
    with pytest.raises(ConfigError, match=r"500 Hz.*1000 Hz"):
        SensorWindower("slow", 500.0, make_metadata())


def test_image_model_and_bad_hop_are_config_errors() -> None:
    image = ModelMetadata(
        model=ModelInfo(name="mnist"), classes=["0", "1"], healthy_class="0",
        input=TensorSpec(layout="NCHW", shape=[-1, 1, 28, 28]),
    )
    with pytest.raises(ConfigError, match="1-D"):
        SensorWindower("s", RATE, image)
    with pytest.raises(ConfigError, match="hop"):
        SensorWindower("s", RATE, make_metadata(), hop=0)


def test_sequence_gap_is_counted_and_restarts_the_window() -> None:
    rng = np.random.default_rng(6)
    chunks = [rng.standard_normal(40).astype(np.float32) for _ in range(6)]
    w = SensorWindower("s1", RATE, make_metadata(WINDOW, hop=HOP, norm="none"))
    before = [*w.push(chunks[0], seq=10), *w.push(chunks[1], seq=11)]
    assert len(before) == 2  # 80 samples: windows at 0 and 16
    after = [*w.push(chunks[2], seq=14), *w.push(chunks[3], seq=15)]  # 12 and 13 were lost
    assert w.stats.gaps == 1 and w.stats.dropped_samples >= 2 * 40
    # no window spans the gap: the first one after it starts at the first sample after the gap
    resumed = np.concatenate([chunks[2], chunks[3]])
    np.testing.assert_array_equal(after[0].data[0], resumed[:WINDOW])
    assert len(after) == 2 and after[0].index == before[-1].index + 1


def test_nan_chunk_raises_counts_and_restarts() -> None:
    w = SensorWindower("s1", RATE, make_metadata(WINDOW, hop=HOP, norm="none"))
    good = np.arange(50, dtype=np.float32)
    assert w.push(good, seq=0) == []
    bad = good.copy()
    bad[7] = np.nan
    with pytest.raises(DataError, match="NaN"):
        w.push(bad, seq=1)
    assert w.stats.bad_chunks == 1 and w.stats.dropped_samples == 100
    fresh = np.arange(100, 164, dtype=np.float32)
    out = w.push(fresh, seq=2)
    assert w.stats.gaps == 0  # the rejected chunk still advanced the sequence
    assert len(out) == 1
    np.testing.assert_array_equal(out[0].data[0], fresh)
    with pytest.raises(DataError, match="NaN"):
        w.push(np.full(3, np.inf, dtype=np.float32), seq=3)


def test_window_timestamps_point_at_the_last_sample() -> None:
    clock = iter([100.0, 101.0])
    meta = make_metadata(WINDOW, hop=HOP, norm="none")
    w = SensorWindower("s1", RATE, meta, clock=lambda: next(clock), wall_clock=lambda: 0.0)
    t0 = 1_700_000_000.0
    first = w.push(np.zeros(100, dtype=np.float32), t0=t0)
    # windows end at samples 63, 79, 95 of the chunk
    assert [win.t_wall for win in first] == pytest.approx([t0 + 0.063, t0 + 0.079, t0 + 0.095])
    assert all(win.t_mono == 100.0 for win in first)
    second = w.push(np.zeros(20, dtype=np.float32), t0=t0 + 0.1)
    assert [win.t_wall for win in second] == pytest.approx([t0 + 0.111])
    assert second[0].t_mono == 101.0


def test_raw_windows_are_normalised_by_the_batch_as_the_windower_would() -> None:
    """normalize=False (the daemon): the windower copies raw samples, the batcher normalises the
    whole batch in one call; the model sees the same inputs either way, mixed batches included."""
    from runtime.batching import MicroBatcher
    from runtime.bench.null_backend import NullBackend

    meta = make_metadata(WINDOW, hop=HOP, norm="zscore")
    rng = np.random.default_rng(1)
    chunk = (rng.standard_normal(200) * 3 + 5).astype(np.float32)
    cooked = SensorWindower("a", RATE, meta).push(chunk)
    raw = SensorWindower("b", RATE, meta, normalize=False).push(chunk)
    assert len(raw) == len(cooked) > 2 and not raw[0].normalized and cooked[0].normalized
    assert np.allclose(raw[1].data, chunk[16:80].reshape(1, -1))  # untouched samples
    batcher = MicroBatcher(NullBackend("null.onnx", meta), normalization=meta.normalization)
    mixed = [w for pair in zip(raw, cooked, strict=True) for w in pair]
    x = batcher._inputs([WindowBlock.of_windows([w]) for w in mixed])
    expected = np.stack([w.data for pair in zip(cooked, cooked, strict=True) for w in pair])
    np.testing.assert_allclose(x, expected, atol=2e-6)
    np.testing.assert_allclose(batcher._inputs([WindowBlock.of_windows(raw)]),
                               np.stack([w.data for w in cooked]), atol=2e-6)
    with pytest.raises(ValueError, match="normalization"):
        MicroBatcher(NullBackend("null.onnx", meta))._inputs([WindowBlock.of_windows(raw)])
