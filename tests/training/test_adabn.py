"""AdaBN: BatchNorm statistics re-estimated on target windows; weights untouched; `drsn-edge adapt`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from drsn_edge.cli import main
from drsn_edge.models import create_model
from drsn_edge.training.adabn import MIN_WINDOWS, adapt_batchnorm, batchnorm_layers
from drsn_edge.training.checkpoint import load_checkpoint
from runtime.errors import DataError
from tests.support.tiny_training import tiny_train_argv


def _windows(n: int, scale: float, seed: int = 0) -> np.ndarray:
    return (scale * np.random.default_rng(seed).standard_normal((n, 1, 1024)) + 0.5).astype(np.float32)


def test_first_batchnorm_takes_the_mean_of_the_target_windows() -> None:
    torch.manual_seed(0)
    model = create_model("wdcnn", num_classes=4, input_length=1024).eval()
    params = {k: v.clone() for k, v in model.named_parameters()}
    x = _windows(301, scale=3.0)  # 301: uneven batches of 128
    adapt_batchnorm(model, x, batch_size=128)
    first_conv = model.features[0][0]
    first_bn = batchnorm_layers(model)[0]
    with torch.no_grad():
        expected = first_conv(torch.from_numpy(x)).mean(dim=(0, 2))
    assert torch.allclose(first_bn.running_mean, expected, atol=1e-3)  # batches of 101, 100, 100
    assert all(torch.equal(v, params[k]) for k, v in model.named_parameters())
    assert not model.training and first_bn.momentum == 0.1  # eval mode, momentum restored
    assert int(first_bn.num_batches_tracked) == 3


def test_adaptation_changes_outputs_only_through_statistics() -> None:
    torch.manual_seed(0)
    model = create_model("drsn_cw_paper", num_classes=4, input_length=1024).eval()
    x = _windows(64, scale=1.0)
    before = model(torch.from_numpy(x)).detach()
    adapt_batchnorm(model, _windows(64, scale=5.0, seed=1))
    after = model(torch.from_numpy(x)).detach()
    assert not torch.allclose(before, after)


def test_too_few_windows_are_refused_with_the_number_needed() -> None:
    model = create_model("wdcnn", num_classes=4, input_length=1024)
    with pytest.raises(DataError, match=f"at least {MIN_WINDOWS}"):
        adapt_batchnorm(model, _windows(MIN_WINDOWS - 1, 1.0))
    bad = _windows(MIN_WINDOWS, 1.0)
    bad[3, 0, 7] = np.nan
    with pytest.raises(DataError, match="NaN"):
        adapt_batchnorm(model, bad)


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("parent")
    assert main(tiny_train_argv(str(out))) == 0
    return out / "best.pt"


def test_adapt_command_writes_a_checkpoint_that_names_parent_and_data(
    parent: Path, tmp_path: Path, capsys
) -> None:
    target = tmp_path / "press-7"
    target.mkdir()
    rng = np.random.default_rng(3)
    for i in range(2):  # WAV at 24 kHz: resampled to the model's 12 kHz
        wavfile.write(target / f"run{i}.wav", 24000, (0.3 * rng.standard_normal(48000)).astype(np.float32))
    out = tmp_path / "adapted.pt"
    capsys.readouterr()
    assert main(["adapt", str(parent), "--data", str(target), "-o", str(out)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["recordings"] == 2 and report["windows"] >= MIN_WINDOWS
    child, p = load_checkpoint(out), load_checkpoint(parent)
    rec = child.metadata.training["parent"]
    assert rec["method"] == "adabn" and rec["adapted_on"]["path"] == str(target)
    assert rec["adapted_on"]["windows"] == report["windows"]
    assert child.metadata.weights_sha256 != p.metadata.weights_sha256
    assert child.metadata.novelty is None  # statistics of the parent's features would mislead
    stats = [k for k in p.state_dict if k.endswith("running_mean")]
    weights = [k for k in p.state_dict if k.endswith(".weight")]
    assert any(not torch.equal(child.state_dict[k], p.state_dict[k]) for k in stats)
    assert all(torch.equal(child.state_dict[k], p.state_dict[k]) for k in weights)


def test_adapt_refuses_a_recording_too_short_for_an_estimate(parent: Path, tmp_path: Path, capsys) -> None:
    short = tmp_path / "short.wav"
    wavfile.write(short, 12000, np.zeros(12000, np.float32) + np.float32(0.1))
    assert main(["adapt", str(parent), "--data", str(short), "-o", str(tmp_path / "x.pt")]) == 2
    assert f"at least {MIN_WINDOWS} unlabelled windows" in capsys.readouterr().err
