"""Leave-one-load-out on CWRU: train on three motor loads, test on the fourth, with and without AdaBN.

A single 0 HP test split says little about a deployed model: across loads the same recipe
scored 79-99 %. Here every test window comes from a load the model never trained on, so no
window (and no recording) is shared between training and test. The CWRU drive-end set holds a
normal baseline at 0 HP only, so a model tested on 1-3 HP is trained on ten classes and tested
on the nine faults there, and one tested on 0 HP trains and tests on the nine faults.

Each test recording is cut in two halves by time: windows of the first half are the unlabelled
target data AdaBN re-estimates its BatchNorm statistics on, windows of the second half are
scored, with and without AdaBN, so the adaptation never sees a scored window. One test
recording per class and load means per-class recall is per-recording accuracy.

Runs are independent (model, test load, augmentation, seed) points, written one JSON line each
to ``rows.jsonl`` in the work directory as they finish; a second invocation skips the points
already there (resumable), and ``--workers`` trains several at once in spawned processes.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import ConfigError

log = logging.getLogger(__name__)

LOADS: tuple[int, ...] = (0, 1, 2, 3)
MODELS: tuple[str, ...] = ("drsn_cw_paper", "wdcnn", "drsn_cs_paper", "resnet_paper")
AUGMENT = "gaussian,laplacian,pink:-10..4"
FAULTS = ("ball", "inner", "outer")


@dataclass(frozen=True)
class LoloPoint:
    """One training run: a network, the load it is tested on, noise augmentation on/off, a seed."""

    model: str
    test_load: int
    augment: bool
    seed: int

    @property
    def key(self) -> str:
        return f"{self.model}-test{self.test_load}hp-{'aug' if self.augment else 'clean'}-s{self.seed}"


@dataclass(frozen=True)
class LoloSettings:
    """What is equal for every run of the study (the work directory is keyed by nothing else)."""

    data: str
    epochs: int = 15
    window: int = 2048
    hop: int = 2048
    test_hop: int = 1024
    threads: int = 1

    def validate(self) -> None:
        if not Path(self.data).is_dir():
            raise ConfigError(f"CWRU folder {self.data} does not exist; pass --data ../shared/data/cwru")
        if self.epochs < 1 or min(self.window, self.hop, self.test_hop) < 1:
            raise ConfigError("epochs, window, hop and test hop must be positive")


def lolo_points(
    models: tuple[str, ...], seeds: tuple[int, ...], augment: tuple[bool, ...], loads: tuple[int, ...] = LOADS
) -> list[LoloPoint]:
    """Grid in the order it is worth running: seed by seed, so an interrupted grid still has every cell."""
    bad = [x for x in loads if x not in LOADS]
    if bad:
        raise ConfigError(f"test loads {bad} are not CWRU loads; use 0, 1, 2, 3")
    return [LoloPoint(m, load, a, s) for a in augment for s in seeds for m in models for load in loads]


def data_spec(settings: LoloSettings, point: LoloPoint) -> Any:
    """Train/val from the three other loads (time split), test from the whole recordings of the fourth."""
    from drsn_edge.training.datasource import DataSpec

    train_loads = [x for x in LOADS if x != point.test_load]
    test_select: dict[str, Any] = {"load_hp": point.test_load, "fault": list(FAULTS)}
    return DataSpec(
        source="cwru",
        path=settings.data,
        window=settings.window,
        hop=settings.hop,
        test_hop=settings.test_hop,
        split="time",
        select={"load_hp": train_loads},
        test_select=test_select,
        seed=point.seed,
    )


def halves(recording: np.ndarray, starts: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(adaptation, scoring) window indices: first and second half of each test recording, no overlap."""
    adapt, score = [], []
    for rec in np.unique(recording):
        idx = np.flatnonzero(recording == rec)
        end = int(starts[idx].max()) + window
        mid = end // 2
        adapt.append(idx[starts[idx] + window <= mid])
        score.append(idx[starts[idx] >= mid])
    return np.concatenate(adapt), np.concatenate(score)


def recall(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Per-class recall over the classes present in ``y``."""
    return {classes[c]: float((pred[y == c] == c).mean()) for c in np.unique(y)}


def run_point(settings: LoloSettings, point: LoloPoint, work: Path) -> dict[str, Any]:
    """Train one point, score it on the held-out load with and without AdaBN; return its row."""
    import torch

    from drsn_edge.training.adabn import adapt_batchnorm
    from drsn_edge.training.checkpoint import load_checkpoint
    from drsn_edge.training.pipeline import prepare
    from drsn_edge.training.trainer import TrainConfig, predict_logits, train

    torch.set_num_threads(settings.threads)
    t0 = time.perf_counter()
    spec = data_spec(settings, point)
    data, norm = prepare(spec)
    cfg = TrainConfig(
        model=point.model,
        epochs=settings.epochs,
        seed=point.seed,
        threads=settings.threads,
        progress=False,
        augment_noise=AUGMENT if point.augment else None,
    )
    out = work / "runs" / point.key
    result = train(data, spec, cfg, out, norm=norm)
    model = load_checkpoint(result.best_path).build_model()
    test = data.test
    adapt_idx, score_idx = halves(test.recording, test.start, data.window)
    y = test.y[score_idx]
    pred = predict_logits(model, test.x[score_idx]).argmax(1)
    adapted = copy.deepcopy(model)
    adapt_batchnorm(adapted, test.x[adapt_idx])
    pred_ada = predict_logits(adapted, test.x[score_idx]).argmax(1)
    classes = list(data.classes)
    return {
        **asdict(point),
        "key": point.key,
        "train_classes": classes,
        "test_classes": [classes[c] for c in np.unique(y)],
        "n_train": len(data.train.y),
        "n_val": len(data.val.y),
        "n_adapt": len(adapt_idx),
        "n_test": len(score_idx),
        "n_test_recordings": len(np.unique(test.recording)),
        "best_epoch": result.best_epoch,
        "acc": float((pred == y).mean()),
        "acc_adabn": float((pred_ada == y).mean()),
        "recall": recall(y, pred, classes),
        "recall_adabn": recall(y, pred_ada, classes),
        "predicted_normal": int((pred == classes.index("normal")).sum()) if "normal" in classes else 0,
        "seconds": time.perf_counter() - t0,
    }


def _worker(settings: LoloSettings, point: LoloPoint, work: str) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    return run_point(settings, point, Path(work))


def load_rows(work: Path) -> list[dict[str, Any]]:
    """Rows of ``work/rows.jsonl``, one per point (see :func:`.generalization_pool.read_rows`)."""
    from drsn_edge.study.generalization_pool import read_rows

    return read_rows(work / "rows.jsonl")


def run_lolo(
    settings: LoloSettings, points: list[LoloPoint], work: Path, workers: int = 1, progress: bool = True
) -> list[dict[str, Any]]:
    """Run the points not yet in ``work/rows.jsonl``; return the rows of ``points`` (old and new)."""
    settings.validate()
    work.mkdir(parents=True, exist_ok=True)
    settings_file = work / "settings.json"
    if settings_file.exists() and json.loads(settings_file.read_text()) != asdict(settings):
        raise ConfigError(f"{work} holds runs made with other settings ({settings_file}); use another --work")
    settings_file.write_text(json.dumps(asdict(settings), indent=1))
    done = {r["key"] for r in load_rows(work)}
    todo = [p for p in points if p.key not in done]
    log.info("leave-one-load-out: %d of %d runs to do in %s", len(todo), len(points), work)
    if todo:
        _run_all(settings, todo, work, workers, progress)
    wanted = {p.key for p in points}
    return [r for r in load_rows(work) if r["key"] in wanted]


def _run_all(settings: LoloSettings, todo: list[LoloPoint], work: Path, workers: int, progress: bool) -> None:
    from drsn_edge.study.generalization_pool import run_pool

    def write(row: dict[str, Any]) -> None:
        with (work / "rows.jsonl").open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    run_pool(
        _worker,
        [(settings, p, str(work)) for p in todo],
        [p.key for p in todo],
        write,
        workers,
        progress,
        "leave-one-load-out",
    )
