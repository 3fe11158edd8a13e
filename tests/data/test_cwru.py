"""CWRU loader on a generated copy of the real layout, and on the real files when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from drsn_edge.data.cwru import load_cwru
from runtime.errors import DataError

HEADER = "file,rate_hz,load_hp,fault,diameter_in,or_position,file_number,rpm,de_key,n_samples,notes\n"
RNG = np.random.default_rng(11)


def _tone_48k(n: int) -> np.ndarray:
    t = np.arange(n) / 48000
    return np.sin(2 * np.pi * 1000 * t) + 0.5 * np.sin(2 * np.pi * 9000 * t)  # 9 kHz aliases at 12 kHz


def _fake_cwru(root: Path, manifest: bool = True) -> None:
    """Three files shaped like the real ones; the outer-race file's key does not match its number."""
    (root / "12k_DE").mkdir(parents=True)
    (root / "normal").mkdir()
    scipy.io.savemat(root / "normal" / "97_normal_0hp.mat",
                     {"X097_DE_time": _tone_48k(48000)[:, None], "X097_FE_time": RNG.standard_normal(48000)})
    scipy.io.savemat(root / "12k_DE" / "105_IR007_0hp.mat",
                     {"X105_DE_time": RNG.standard_normal((12000, 1)), "X105RPM": [[1797]]})
    scipy.io.savemat(root / "12k_DE" / "130_OR007@6_0hp.mat",
                     {"X131_DE_time": np.full((9000, 1), 0.25), "X130_FE_time": RNG.standard_normal(9000)})
    if manifest:
        (root / "MANIFEST.csv").write_text(HEADER + "\n".join([
            "normal/97_normal_0hp.mat,48000,0,normal,0,,97,1796,X097_DE_time,48000,48 kHz",
            "12k_DE/105_IR007_0hp.mat,12000,0,inner,0.007,,105,1797,X105_DE_time,12000,",
            "12k_DE/130_OR007@6_0hp.mat,12000,1,outer,0.007,@6,130,1796,X131_DE_time,9000,",
        ]) + "\n")


def test_manifest_labels_keys_and_resampling(tmp_path: Path) -> None:
    _fake_cwru(tmp_path)
    recs = load_cwru(tmp_path)
    assert [r.label for r in recs] == ["normal", "IR007", "OR007@6"]
    normal, inner, outer = recs
    assert all(r.sample_rate == 12000 for r in recs)
    assert normal.n_samples == 12000 and normal.meta["original_rate"] == 48000
    spec = np.abs(np.fft.rfft(normal.signal[1000:-1000] * np.hanning(10000)))
    freqs = np.fft.rfftfreq(10000, 1 / 12000)
    assert freqs[spec.argmax()] == pytest.approx(1000, abs=3)
    assert spec[np.abs(freqs - 3000) < 20].max() < 1e-3 * spec.max()  # 9 kHz was filtered, not folded
    np.testing.assert_array_equal(outer.signal, np.float32(0.25))  # read by the manifest's key
    assert outer.meta["key"] == "X131_DE_time" and outer.meta["load_hp"] == 1 and outer.meta["rpm"] == 1796
    assert inner.meta["fault"] == "inner" and inner.meta["size"] == 0.007
    four = load_cwru(tmp_path, labels="4class")
    assert [r.label for r in four] == ["normal", "inner", "outer"]


def test_selection_happens_before_reading(tmp_path: Path) -> None:
    _fake_cwru(tmp_path)
    (tmp_path / "12k_DE" / "130_OR007@6_0hp.mat").write_bytes(b"corrupt")  # never opened when not selected
    recs = load_cwru(tmp_path, select={"load_hp": 0})
    assert [r.label for r in recs] == ["normal", "IR007"]
    assert recs[0].meta["selection"] == {"load_hp": 0}
    with pytest.raises(DataError, match="not a readable MATLAB"):
        load_cwru(tmp_path, select={"fault": "outer"})
    with pytest.raises(DataError, match="cannot select CWRU files by"):
        load_cwru(tmp_path, select={"motor_load": 0})
    with pytest.raises(DataError, match="matches"):
        load_cwru(tmp_path, select={"load_hp": 3})


def test_rate_mismatch_without_resampling(tmp_path: Path) -> None:
    _fake_cwru(tmp_path)
    with pytest.raises(DataError, match=r"97_normal_0hp\.mat was recorded at 48000 Hz, not 12000 Hz"):
        load_cwru(tmp_path, resample=False)
    native = load_cwru(tmp_path, sample_rate=None)
    assert native[0].sample_rate == 48000 and native[0].n_samples == 48000


def test_file_names_without_manifest_never_guess_the_key(tmp_path: Path) -> None:
    _fake_cwru(tmp_path, manifest=False)
    recs = load_cwru(tmp_path, select={"fault": ["normal", "inner"]})
    assert [r.label for r in recs] == ["normal", "IR007"]
    assert recs[0].meta["rate_hz"] == 48000 and recs[0].meta["key"] == "X097_DE_time"
    with pytest.raises(DataError, match=r"no variable 'X130_DE_time'.*X130_FE_time.*X131_DE_time"):
        load_cwru(tmp_path)  # the outer file's DE key does not follow its number
    (tmp_path / "12k_DE" / "130_OR007@6_0hp.mat").unlink()
    scipy.io.savemat(tmp_path / "12k_DE" / "mystery.mat", {"x": np.ones(10)})
    with pytest.raises(DataError, match=r"MANIFEST\.csv"):
        load_cwru(tmp_path)


def test_mirror_file_names(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "48k_Drive_End_B014_2_191.mat", {"X191_DE_time": np.ones((800, 1))})
    scipy.io.savemat(tmp_path / "normal_1_98.mat", {"X098_DE_time": np.ones((800, 1))})
    recs = load_cwru(tmp_path)
    assert [(r.label, r.meta["load_hp"], r.meta["rate_hz"]) for r in recs] == [
        ("normal", 1, 48000), ("B014", 2, 48000)]
    assert all(r.n_samples == 200 for r in recs)


@pytest.mark.shared_data
def test_real_cwru_ten_classes(cwru_dir: Path) -> None:
    recs = load_cwru(cwru_dir, select={"load_hp": 0})
    assert [r.label for r in recs] == ["normal", "B007", "B014", "B021", "IR007", "IR014", "IR021",
                                       "OR007@6", "OR014@6", "OR021@6"]
    assert all(r.sample_rate == 12000 and r.signal.ndim == 1 for r in recs)
    normal = recs[0]
    assert normal.meta["original_rate"] == 48000 and normal.n_samples == pytest.approx(243938 / 4, abs=1)
    assert all(120_000 < r.n_samples < 123_000 for r in recs[1:])
    assert all(r.meta["key"].endswith("_DE_time") for r in recs)


@pytest.mark.shared_data
def test_real_cwru_four_classes_and_strict_rate(cwru_dir: Path) -> None:
    recs = load_cwru(cwru_dir, labels="4class", select={"fault": ["normal", "outer"], "load_hp": 0})
    assert [r.label for r in recs] == ["normal", "outer", "outer", "outer"]
    only_12k = load_cwru(cwru_dir, select={"rate_hz": 12000, "load_hp": 0}, resample=False)
    assert len(only_12k) == 9


@pytest.mark.shared_data
def test_real_cwru_all_loads(cwru_dir: Path) -> None:
    """The folder holds the nine fault classes at 1-3 HP too, without a normal baseline there."""
    recs = load_cwru(cwru_dir)
    by_load = {hp: [r.label for r in recs if r.meta["load_hp"] == hp] for hp in (0, 1, 2, 3)}
    assert len(by_load[0]) == 10 and "normal" in by_load[0]
    for hp in (1, 2, 3):
        assert len(by_load[hp]) == 9 and "normal" not in by_load[hp]
    assert {r.meta["rpm"] for r in recs if r.meta["load_hp"] == 3} <= set(range(1700, 1740))
    with pytest.raises(DataError, match="48000 Hz"):
        load_cwru(cwru_dir, resample=False)
