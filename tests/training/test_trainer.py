"""The training loop on generated bearing data: it learns, it is deterministic, checkpoints carry metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drsn_edge.training.checkpoint import load_checkpoint
from drsn_edge.training.datasource import DataSpec
from drsn_edge.training.pipeline import prepare
from drsn_edge.training.trainer import TrainConfig, train

SPEC = DataSpec(
    source="synthetic", window=1024, hop=256, synthetic_per_class=2, synthetic_seconds=3.0, seed=3
)


@pytest.fixture(scope="module")
def data():
    return prepare(SPEC)


def _cfg(**kw):
    base = dict(
        model="drsn_cw_paper",
        epochs=4,
        batch_size=32,
        optimizer="adamw",
        lr=3e-3,
        seed=1,
        progress=False,
        threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_learns_the_simulator_and_writes_checkpoints(data, tmp_path: Path) -> None:
    splits, norm = data
    result = train(splits, SPEC, _cfg(epochs=6), tmp_path, norm=norm)
    assert result.best_path.is_file() and result.last_path.is_file()
    ckpt = load_checkpoint(result.best_path)
    meta = ckpt.metadata
    assert meta.classes == list(splits.classes) and meta.healthy_class == splits.healthy_class
    assert (
        meta.signal is not None
        and meta.signal.window == 1024
        and meta.signal.sample_rate == splits.sample_rate
    )
    assert meta.input.shape == [-1, 1, 1024]
    assert meta.training["data_spec"]["source"] == "synthetic"
    assert len(meta.weights_sha256) == 64
    assert ckpt.golden_inputs.shape[1:] == (1, 1024) and len(ckpt.golden_inputs) == len(ckpt.golden_labels)
    # well above chance (4 classes) on held-out validation windows
    assert result.best_val_acc > 0.6
    model = ckpt.build_model()
    logits = model(__import__("torch").from_numpy(splits.test.x[:8])).detach().numpy()
    assert logits.shape == (8, len(splits.classes))


def test_same_seed_same_result(data, tmp_path: Path) -> None:
    splits, norm = data
    a = train(splits, SPEC, _cfg(epochs=2), tmp_path / "a", norm=norm)
    b = train(splits, SPEC, _cfg(epochs=2), tmp_path / "b", norm=norm)
    c = train(splits, SPEC, _cfg(epochs=2, seed=2), tmp_path / "c", norm=norm)
    ha = [h["train_loss"] for h in a.history]
    assert ha == [h["train_loss"] for h in b.history]
    assert ha != [h["train_loss"] for h in c.history]
    assert (
        load_checkpoint(a.last_path).metadata.weights_sha256
        == load_checkpoint(b.last_path).metadata.weights_sha256
    )


def test_sgd_schedule_decays_at_milestones(data, tmp_path: Path) -> None:
    splits, norm = data
    r = train(splits, SPEC, _cfg(epochs=5, optimizer="sgd", lr=0.1), tmp_path, norm=norm)
    lrs = [h["lr"] for h in r.history]
    # milestones at 40% and 80% of 5 epochs -> after epochs 2 and 4
    np.testing.assert_allclose(lrs, [0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)


def test_adam_keeps_its_rate_and_adamw_anneals(data, tmp_path: Path) -> None:
    """adam is the Keras reference's optimiser (constant rate); adamw follows a cosine schedule."""
    import torch

    splits, norm = data
    adam = train(splits, SPEC, _cfg(epochs=3, optimizer="adam", lr=1e-3), tmp_path / "a", norm=norm)
    np.testing.assert_allclose([h["lr"] for h in adam.history], [1e-3] * 3, rtol=1e-9)
    adamw = train(splits, SPEC, _cfg(epochs=3, optimizer="adamw", lr=1e-3), tmp_path / "w", norm=norm)
    lrs = [h["lr"] for h in adamw.history]
    assert 1e-3 > lrs[0] > lrs[1] > lrs[2]
    # the weight decay of adam is an L2 term in the gradient (coupled), as Keras' regulariser is
    from drsn_edge.training.trainer import make_optimizer

    opt, _ = make_optimizer(torch.nn.Linear(2, 2), _cfg(optimizer="adam", weight_decay=2e-4), 10)
    assert type(opt) is torch.optim.Adam and opt.param_groups[0]["weight_decay"] == 2e-4
