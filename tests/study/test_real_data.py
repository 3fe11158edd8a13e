"""The study's data on the real CWRU and MNIST files (skipped with a reason when they are absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drsn_edge.study.noise import study_data_spec
from drsn_edge.training.pipeline import prepare

pytestmark = pytest.mark.shared_data


def test_cwru_study_split_has_several_hundred_test_windows_and_no_overlap(cwru_dir: Path) -> None:
    spec = study_data_spec("cwru", str(cwru_dir))
    spec.noise = "gaussian:-6"
    data, _ = prepare(spec)
    assert len(data.classes) == 10 and data.classes[0] == "normal"
    assert len(data.test.y) >= 500  # the figure docs/study.md states as n
    assert set(np.unique(data.test.y)) == set(range(10))
    for rec in np.unique(data.test.recording):
        last_train = data.train.start[data.train.recording == rec].max() + spec.window
        last_val = data.val.start[data.val.recording == rec].max() + spec.window
        first_test = data.test.start[data.test.recording == rec].min()
        assert last_train <= data.val.start[data.val.recording == rec].min()
        assert last_val <= first_test  # train | val | test in time, windows never shared


def test_mnist_reference_split_is_stratified_8000_2000(mnist_dir: Path) -> None:
    from drsn_edge.data.mnist import load_mnist

    data = load_mnist(mnist_dir, seed=0)
    assert len(data.train.y) + len(data.val.y) == 8000 and len(data.test.y) == 2000
    counts = np.bincount(data.test.y, minlength=10)
    assert counts.min() >= 150  # every digit present in proportion (about 200 each)
    assert float(data.test.x.max()) > 1.0  # x/255 + 0.5*U(0,1): the noise is there


def test_packaged_noise_trained_cwru_model_holds_up_where_the_clean_one_collapses(cwru_dir: Path) -> None:
    """The two packaged CWRU models on unseen noisy test spans (noise added once per recording)."""
    from drsn_edge.assets import ASSETS
    from runtime.artifact import read_onnx_metadata
    from runtime.onnx_tools.ort_run import cpu_session, run_logits

    spec = study_data_spec("cwru", str(cwru_dir))
    spec.noise, spec.noise_protocol = "gaussian:-6", "test_only"
    data, _ = prepare(spec)
    acc = {}
    for name in ("drsn_cw_cwru0hp", "drsn_cw_cwru0hp_noise"):
        path = ASSETS / f"{name}.onnx"
        meta = read_onnx_metadata(path)
        assert meta.classes == list(data.classes) and meta.signal.window == 2048
        acc[name] = float(np.mean(run_logits(cpu_session(path), data.test.x).argmax(1) == data.test.y))
    assert "augment_noise" in str(read_onnx_metadata(ASSETS / "drsn_cw_cwru0hp_noise.onnx").training)
    assert acc["drsn_cw_cwru0hp_noise"] >= 0.85 and acc["drsn_cw_cwru0hp"] <= 0.5, acc
