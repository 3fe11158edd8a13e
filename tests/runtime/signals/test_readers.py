"""File readers on generated files: values, rates, channel choice and the errors users will meet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from scipy.io import wavfile

from runtime.errors import DataError
from runtime.signals.readers import read_signal

RNG = np.random.default_rng(7)


def test_mat_channel_by_key(tmp_path: Path) -> None:
    de, fe = RNG.standard_normal(500), RNG.standard_normal(500)
    p = tmp_path / "rec.mat"
    scipy.io.savemat(p, {"X001_DE_time": de[:, None], "X001_FE_time": fe[:, None], "X001RPM": [[1797]]})
    x, rate = read_signal(p, key="X001_FE_time")
    assert x.dtype == np.float32 and x.shape == (500,) and rate is None
    np.testing.assert_allclose(x, fe.astype(np.float32))


def test_mat_missing_key_lists_the_keys_present(tmp_path: Path) -> None:
    p = tmp_path / "rec.mat"
    scipy.io.savemat(p, {"X001_DE_time": RNG.standard_normal(50), "X001_FE_time": RNG.standard_normal(50)})
    with pytest.raises(DataError, match=r"X001_DE_time.*X001_FE_time") as err:
        read_signal(p, key="X002_DE_time")
    assert "rec.mat" in str(err.value)
    with pytest.raises(DataError, match="key="):
        read_signal(p)  # two candidates: the reader refuses to guess


def test_mat_rate_variable_is_used(tmp_path: Path) -> None:
    p = tmp_path / "rec.mat"
    scipy.io.savemat(p, {"acc": RNG.standard_normal(100), "fs": 25600.0})
    x, rate = read_signal(p, sample_rate=12000)
    assert rate == 25600.0 and x.shape == (100,)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8])
def test_wav_integers_are_scaled_to_unit_range(tmp_path: Path, dtype: type) -> None:
    p = tmp_path / "rec.wav"
    info = np.iinfo(dtype)
    middle = 128 if dtype is np.uint8 else 0
    wavfile.write(p, 8000, np.array([middle, info.max, info.min], dtype=dtype))
    x, rate = read_signal(p)
    assert rate == 8000.0 and x.dtype == np.float32
    assert x[0] == 0.0 and x[1] == pytest.approx(1.0, abs=1e-2) and x[2] == -1.0


def test_wav_float_is_kept(tmp_path: Path) -> None:
    data = np.array([0.5, -0.25, 1.0], dtype=np.float32)
    wavfile.write(tmp_path / "f.wav", 8000, data)
    x, _ = read_signal(tmp_path / "f.wav")
    np.testing.assert_array_equal(x, data)


def test_wav_stereo_is_channels_first(tmp_path: Path) -> None:
    p = tmp_path / "st.wav"
    data = (RNG.uniform(-0.5, 0.5, (300, 2))).astype(np.float32)
    wavfile.write(p, 48000, data)
    x, rate = read_signal(p)
    assert x.shape == (2, 300) and rate == 48000.0
    np.testing.assert_array_equal(x[1], data[:, 1])


def test_npy_rate_from_sidecar_or_argument(tmp_path: Path) -> None:
    data = RNG.standard_normal(64).astype(np.float64)
    np.save(tmp_path / "a.npy", data)
    x, rate = read_signal(tmp_path / "a.npy", sample_rate=5000)
    assert rate == 5000.0 and x.dtype == np.float32
    (tmp_path / "a.json").write_text(json.dumps({"sample_rate": 20000}))
    _, rate = read_signal(tmp_path / "a.npy", sample_rate=5000)
    assert rate == 20000.0  # the file's own rate wins over the fallback
    _, rate = read_signal(tmp_path / "a.npy")
    assert rate == 20000.0


def test_csv_header_optional_and_named_column(tmp_path: Path) -> None:
    values = RNG.standard_normal(20)
    (tmp_path / "one.csv").write_text("\n".join(f"{v:.6f}" for v in values))
    x, rate = read_signal(tmp_path / "one.csv")
    assert rate is None and x.shape == (20,)
    np.testing.assert_allclose(x, values, atol=1e-6)
    rows = "\n".join(f"{i},{v:.6f},{-v:.6f}" for i, v in enumerate(values))
    (tmp_path / "multi.csv").write_text("t,acc_x,acc_y\n" + rows)
    y, _ = read_signal(tmp_path / "multi.csv", column="acc_y")
    np.testing.assert_allclose(y, -values, atol=1e-6)
    z, _ = read_signal(tmp_path / "multi.csv", column=1)
    np.testing.assert_allclose(z, values, atol=1e-6)
    with pytest.raises(DataError, match="3 columns"):
        read_signal(tmp_path / "multi.csv")
    with pytest.raises(DataError, match="no column named 'acc_z'"):
        read_signal(tmp_path / "multi.csv", column="acc_z")


def test_csv_non_numeric_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("acc\n0.1\n0.2\noops\n0.4\n")
    with pytest.raises(DataError, match=r"bad\.csv: line 4"):
        read_signal(p)


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".mat"])
def test_nan_and_empty_are_refused(tmp_path: Path, suffix: str) -> None:
    data = np.array([0.1, np.nan, 0.3, np.inf])
    p = tmp_path / f"x{suffix}"
    if suffix == ".npy":
        np.save(p, data)
    elif suffix == ".csv":
        p.write_text("\n".join(str(v) for v in data))
    else:
        scipy.io.savemat(p, {"acc": data})
    with pytest.raises(DataError, match=r"2 NaN/inf.*interpolate") as err:
        read_signal(p, key="acc" if suffix == ".mat" else None)
    assert p.name in str(err.value)
    empty = tmp_path / f"e{suffix}"
    if suffix == ".npy":
        np.save(empty, np.zeros(0))
    elif suffix == ".csv":
        empty.write_text("")
    else:
        scipy.io.savemat(empty, {"acc": np.zeros((0, 1))})
    with pytest.raises(DataError, match="empty"):
        read_signal(empty, key="acc" if suffix == ".mat" else None)


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unsupported file type '\.flac'"):
        read_signal(tmp_path / "a.flac")
    with pytest.raises(DataError, match="not found"):
        read_signal(tmp_path / "missing.npy")
