"""The 2-D reference experiment: DRSN against the same network without shrinkage on noisy MNIST.

The reference programs for the DRSN classify MNIST with additive uniform noise
(``x/255 + 0.5*U(0,1)``) using one 8-channel residual shrinkage block, Adam 1e-3, batch 100 and
5 epochs, and compare it with the identical network whose block has no shrinkage. Here:

* only the 10,000-image MNIST test set is available, so it is split 8,000 / 2,000 (stratified,
  fixed seed), and 10% of the 8,000 are held out for choosing the best epoch;
* the split and the noise are drawn once (``split_seed``) and shared by every model and seed,
  so the models differ only in their weights' initialisation and batch order;
* the optimiser is the reference's by default (``adam``: lr 1e-3 held constant, an L2 penalty
  added to the gradient; Keras' ``l2(1e-4)`` on a kernel is ``weight_decay`` 2e-4 here, applied to
  every parameter); ``adamw`` (decoupled weight decay, cosine schedule) is the alternative.

Runs resume from ``<stem>_rows.jsonl`` in the work directory; ``stem`` (default ``mnist``) also
names the output files, so a variant (e.g. as many optimisation steps as the reference's 5 epochs
over 60,000 images) can sit beside the reference protocol.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from drsn_edge.training.metrics import seed_std
from runtime.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class MnistStudy:
    data_dir: Path
    out_dir: Path
    work_dir: Path
    models: tuple[str, ...] = ("drsn_cw_mnist", "resnet_mnist")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    epochs: int = 5
    batch_size: int = 100
    lr: float = 1e-3
    weight_decay: float = 2e-4
    optimizer: Literal["adam", "adamw"] = "adam"
    split_seed: int = 0
    n_train: int = 8000
    n_test: int = 2000
    threads: int | None = 1
    progress: bool = True
    command: str = ""
    stem: str = "mnist"


def run_mnist_study(study: MnistStudy) -> dict[str, Path]:
    """Train every (model, seed) not yet in the rows file, then write the table and the figure."""
    from drsn_edge.data.mnist import load_mnist

    if not study.models or not study.seeds:
        raise ConfigError("the MNIST study needs at least one model and one seed (--models, --seeds)")
    t0 = time.perf_counter()
    data = load_mnist(study.data_dir, seed=study.split_seed, n_train=study.n_train, n_test=study.n_test)
    study.work_dir.mkdir(parents=True, exist_ok=True)
    rows_path = study.work_dir / f"{study.stem}_rows.jsonl"
    rows = (
        [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
        if rows_path.exists()
        else []
    )
    done = {(r["model"], int(r["seed"])) for r in rows if r.get("settings") == _settings(study)}
    todo = [(m, s) for m in study.models for s in study.seeds if (m, s) not in done]
    bar = _bar(study, len(study.models) * len(study.seeds), len(study.models) * len(study.seeds) - len(todo))
    for model, seed in todo:
        row = _run_one(study, data, model, seed)
        rows.append(row)
        with open(rows_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(model=model, seed=seed, acc=f"{row['accuracy']:.3f}")
    if bar is not None:
        bar.close()
    wanted = {(m, s) for m in study.models for s in study.seeds}
    mine = [
        r for r in rows if (r["model"], int(r["seed"])) in wanted and r.get("settings") == _settings(study)
    ]
    from drsn_edge.study.mnist_report import write_mnist_report

    return write_mnist_report(mine, data.summary, study, time.perf_counter() - t0)


def _settings(study: MnistStudy) -> dict[str, Any]:
    """What must match for a stored row to count as this study's run."""
    return {
        "epochs": study.epochs,
        "batch_size": study.batch_size,
        "lr": study.lr,
        "weight_decay": study.weight_decay,
        "optimizer": study.optimizer,
        "split_seed": study.split_seed,
        "n_train": study.n_train,
        "n_test": study.n_test,
    }


def _run_one(study: MnistStudy, data: Any, model_name: str, seed: int) -> dict[str, Any]:
    from drsn_edge.study.thresholds import block_stats
    from drsn_edge.training.checkpoint import load_checkpoint
    from drsn_edge.training.datasource import DataSpec
    from drsn_edge.training.evaluate import evaluate_model
    from drsn_edge.training.trainer import TrainConfig, train
    from runtime.artifact import Normalization

    spec = DataSpec(source="mnist", path=str(study.data_dir), window=28, seed=study.split_seed)
    cfg = TrainConfig(
        model=model_name,
        epochs=study.epochs,
        batch_size=study.batch_size,
        optimizer=study.optimizer,
        lr=study.lr,
        weight_decay=study.weight_decay,
        seed=seed,
        threads=study.threads,
        progress=False,
    )
    t0 = time.perf_counter()
    result = train(
        data,
        spec,
        cfg,
        study.work_dir / study.stem / f"{model_name}_s{seed}",
        norm=Normalization(kind="none"),
    )
    model = load_checkpoint(result.best_path).build_model()
    ev = evaluate_model(model, data.test.x, data.test.y, list(data.classes))
    return {
        "model": model_name,
        "seed": seed,
        "accuracy": ev.accuracy,
        "macro_f1": ev.macro_f1,
        "n_test": ev.n,
        "n_train": len(data.train.y),
        "n_val": len(data.val.y),
        "best_epoch": result.best_epoch,
        "parameters": sum(p.numel() for p in model.parameters()),
        "val_acc": [h["val_acc"] for h in result.history],
        "seconds": time.perf_counter() - t0,
        "thresholds": block_stats(model, data.test.x),
        "settings": _settings(study),
    }


def _bar(study: MnistStudy, total: int, initial: int) -> Any:
    if not study.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="mnist study", unit="run", dynamic_ncols=True)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std over seeds per model, in the order the models first appear."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        rs = [r for r in rows if r["model"] == model]
        acc = np.array([r["accuracy"] for r in rs])
        f1 = np.array([r["macro_f1"] for r in rs])
        out.append(
            {
                "model": model,
                "seeds": len(rs),
                "accuracy": float(acc.mean()),
                "accuracy_std": seed_std(acc),
                "macro_f1": float(f1.mean()),
                "macro_f1_std": seed_std(f1),
                "min": float(acc.min()),
                "max": float(acc.max()),
                "parameters": rs[0]["parameters"],
                "seconds_per_run": float(np.mean([r["seconds"] for r in rs])),
            }
        )
    return out
