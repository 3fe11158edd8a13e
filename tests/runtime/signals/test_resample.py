"""One-shot and streaming resampling: same filter, continuous state, lengths that track the ratio."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import upfirdn

from runtime.errors import ConfigError, DataError
from runtime.signals.resample import StreamResampler, rational_ratio, resample


def _stream(res: StreamResampler, x: np.ndarray, rng: np.random.Generator, max_chunk: int) -> list:
    outs, i = [], 0
    while i < x.shape[-1]:
        n = int(rng.integers(0, max_chunk))  # includes empty chunks
        outs.append(res.process(x[..., i : i + n]))
        i += n
    return outs


@pytest.mark.parametrize(("src", "dst"), [(48000, 12000), (44100, 12000), (12000, 48000), (25600, 12000)])
def test_streaming_equals_one_shot_filter_over_random_chunks(src: int, dst: int) -> None:
    rng = np.random.default_rng(src)
    x = rng.standard_normal(20000)
    res = StreamResampler(src, dst)
    outs = _stream(res, x, rng, 1500)
    y = np.concatenate(outs)
    reference = upfirdn(res.filter, x, res.up, res.down)
    transient = int(np.ceil(len(res.filter) / res.down))
    np.testing.assert_allclose(y[transient:], reference[transient : len(y)], atol=1e-5)
    # every output whose inputs have arrived is emitted: the length tracks the ratio
    assert abs(len(y) - len(x) * dst / src) <= 1


def test_output_length_tracks_ratio_chunk_by_chunk() -> None:
    res = StreamResampler(48000, 12000)
    total_in = total_out = 0
    for n in [1, 3, 4, 1000, 7, 4801]:
        total_out += len(res.process(np.ones(n)))
        total_in += n
        assert total_out == -(-total_in // 4)  # ceil: output m needs input 4m


def test_many_sensors_in_one_call_match_single_streams() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 9000))
    together = StreamResampler(48000, 12000)
    joint = np.concatenate([together.process(x[:, i : i + 1800]) for i in range(0, 9000, 1800)], axis=-1)
    for c in range(5):
        alone = StreamResampler(48000, 12000).process(x[c])
        np.testing.assert_allclose(joint[c], alone, atol=1e-6)
    with pytest.raises(DataError, match="reset"):
        together.process(x[:3, :10])


def test_reset_forgets_history() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal(4000)
    res = StreamResampler(48000, 16000)
    first = res.process(x)
    res.process(rng.standard_normal(999))
    res.reset()
    np.testing.assert_array_equal(res.process(x), first)


def test_delay_aligns_stream_with_one_shot_resample() -> None:
    t = np.arange(48000) / 48000
    x = np.sin(2 * np.pi * 60 * t) + 0.3 * np.sin(2 * np.pi * 1500 * t)
    res = StreamResampler(48000, 12000)
    y = res.process(x)
    one_shot = resample(x, 48000, 12000)
    d = int(res.delay)
    assert d == res.delay  # integer here, so the comparison is sample-exact
    np.testing.assert_allclose(y[d + 100 : 11000], one_shot[100 : 11000 - d], atol=1e-4)


def test_one_shot_resample_keeps_tone_and_removes_alias() -> None:
    fs, n = 48000, 48000
    t = np.arange(n) / fs
    tone, alias = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 9000 * t)  # 9 kHz > 6 kHz Nyquist of 12k
    y = resample(tone + alias, fs, 12000)
    assert y.dtype == np.float32 and len(y) == 12000
    spec = np.abs(np.fft.rfft(y[1000:-1000] * np.hanning(10000)))
    freqs = np.fft.rfftfreq(10000, 1 / 12000)
    assert freqs[spec.argmax()] == pytest.approx(1000, abs=2)
    assert spec[np.abs(freqs - 3000) < 20].max() < 1e-3 * spec.max()  # 9 kHz would fold to 3 kHz


def test_ratio_and_errors() -> None:
    assert rational_ratio(48000, 12000) == (1, 4)
    assert rational_ratio(44100, 12000) == (40, 147)
    with pytest.raises(ConfigError, match="positive"):
        rational_ratio(0, 12000)
    with pytest.raises(DataError, match="empty"):
        resample(np.zeros(0), 48000, 12000)
    x = np.arange(10, dtype=np.float64)
    np.testing.assert_array_equal(resample(x, 100, 100), x.astype(np.float32))
