"""`drsn-edge study novelty`: does each score know when the model does not know?

Three kinds of training run, each repeated over seeds, each one row in ``rows.jsonl`` of the work
directory (so an interrupted study resumes where it stopped, and ``--workers`` runs several at once):

``cwru``   the 10-class CWRU 0 HP model: familiar test windows flagged (raw and smoothed), the
           nine fault classes at 1-3 HP (familiar classes, shifted load) flagged, and the simulator's
           windows (another machine altogether) by AUROC.
``loco``   leave one class out: train on 9 of the 10 classes, score the held-out class as novel
           (AUROC and detection rate at p99).
``sim``    a model trained on the simulator, judged on a simulated second machine (other bearing,
           speed and resonance) and in the baseline experiment (:mod:`drsn_edge.study.novelty_sim`).

Every row carries the counts behind its rates; :mod:`drsn_edge.study.novelty_report` turns the rows
into tables and figures.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.novelty.features import Outputs, model_outputs
from drsn_edge.study.novelty_metrics import ALL_SCORES, Scorers, auroc
from drsn_edge.training.datasource import DataSpec
from drsn_edge.training.trainer import TrainConfig
from runtime.errors import ConfigError

log = logging.getLogger(__name__)

CWRU_CLASSES = ("normal", "B007", "B014", "B021", "IR007", "IR014", "IR021", "OR007@6", "OR014@6", "OR021@6")
SHIFT_LOADS = (1, 2, 3)


@dataclass(frozen=True)
class Job:
    kind: str  # cwru | loco | sim
    seed: int
    held_out: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.held_out}:s{self.seed}" if self.held_out else f"{self.kind}:s{self.seed}"


@dataclass
class NoveltyStudy:
    """Settings of one study; everything that changes a row's result is in :meth:`settings`."""

    cwru_path: str
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 20
    model: str = "drsn_cw_paper"
    work_dir: Path = Path("runs/study/novelty")
    kinds: tuple[str, ...] = ("cwru", "sim", "loco")
    workers: int = 1
    progress: bool = True

    def jobs(self) -> list[Job]:
        out: list[Job] = []
        for kind in self.kinds:
            for seed in self.seeds:
                if kind == "loco":
                    out += [Job("loco", seed, c) for c in CWRU_CLASSES]
                else:
                    out.append(Job(kind, seed))
        return out

    def settings(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "model": self.model, "cwru": str(Path(self.cwru_path).resolve())}


def run_study(study: NoveltyStudy, *, train_missing: bool = True) -> list[dict[str, Any]]:
    """Run every job not yet in ``rows.jsonl``; return all rows of this study's jobs.

    ``train_missing=False`` only reads the rows already there (a report while the study runs).
    """
    rows_path = study.work_dir / "rows.jsonl"
    if not train_missing:
        done = {r["key"]: r for r in _read_rows(rows_path)}
        return [done[j.key] for j in study.jobs() if j.key in done]
    study.work_dir.mkdir(parents=True, exist_ok=True)
    settings_path = study.work_dir / "settings.json"
    if settings_path.exists() and json.loads(settings_path.read_text()) != study.settings():
        raise ConfigError(
            f"{study.work_dir} holds rows of other settings ({settings_path.read_text().strip()}); "
            "use another --work directory or the same settings"
        )
    settings_path.write_text(json.dumps(study.settings(), sort_keys=True))
    done = {r["key"]: r for r in _read_rows(rows_path)}
    todo = [j for j in study.jobs() if j.key not in done]
    log.info("novelty study: %d jobs, %d done, %d to run", len(study.jobs()), len(done), len(todo))
    bar = _bar(study, len(study.jobs()), len(done))
    for row in _execute(todo, study):
        with open(rows_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        done[row["key"]] = row
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(row["key"])
    if bar is not None:
        bar.close()
    return [done[j.key] for j in study.jobs() if j.key in done]


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _bar(study: NoveltyStudy, total: int, initial: int) -> Any:
    if not study.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="novelty study", unit="run", dynamic_ncols=True)


def _execute(todo: list[Job], study: NoveltyStudy) -> Iterator[dict[str, Any]]:
    if study.workers <= 1 or len(todo) <= 1:
        for job in todo:
            yield run_job(job, study)
        return
    # spawn, not fork: a forked child inherits torch's thread pools mid-state and can hang
    pool = ProcessPoolExecutor(
        max_workers=min(study.workers, len(todo)), mp_context=multiprocessing.get_context("spawn")
    )
    try:
        futures = [pool.submit(run_job, job, study) for job in todo]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_job(job: Job, study: NoveltyStudy) -> dict[str, Any]:
    """Train the job's model and measure it; the row is JSON-able."""
    import torch

    torch.set_num_threads(1)
    if job.kind == "sim":
        from drsn_edge.study.novelty_sim import run_sim_job

        return {"key": job.key, "kind": job.kind, "seed": job.seed, **run_sim_job(job.seed, study)}
    data, spec = cwru_data(study.cwru_path, job.seed)
    if job.kind == "loco":
        return {
            "key": job.key,
            "kind": "loco",
            "seed": job.seed,
            "held_out": job.held_out,
            **_loco(job, study, data, spec),
        }
    return {"key": job.key, "kind": "cwru", "seed": job.seed, **_cwru(job, study, data, spec)}


def cwru_data(path: str, seed: int) -> tuple[Any, DataSpec]:
    """CWRU 0 HP, 10 classes, as the packaged model: window 2048, hop 512, test hop 256, time split."""
    from drsn_edge.study.noise import study_data_spec
    from drsn_edge.training.pipeline import prepare

    spec = study_data_spec("cwru", path)
    spec.seed = seed
    data, _ = prepare(spec)
    return data, spec


def train_model(data: Any, spec: DataSpec, study: NoveltyStudy, seed: int, out: Path) -> Any:
    """Train with the packaged recipe (paper SGD) at the study's epochs; return the best model."""
    from drsn_edge.training.checkpoint import load_checkpoint
    from drsn_edge.training.trainer import train

    if (out / "history.json").exists() and (out / "best.pt").exists():  # trained before: re-score only
        return load_checkpoint(out / "best.pt").build_model()
    cfg = TrainConfig(model=study.model, epochs=study.epochs, seed=seed, threads=1, progress=False)
    result = train(data, spec, cfg, out)
    return load_checkpoint(result.best_path).build_model()


def fitted(model: Any, data: Any) -> tuple[Scorers, Outputs]:
    """Scorers fitted on the training windows and calibrated on validation; test outputs."""
    train = model_outputs(model, data.train.x)
    scorers = Scorers(train, data.train.y, list(data.classes), model_outputs(model, data.val.x))
    return scorers, model_outputs(model, data.test.x)


def _time_order(ws: Any) -> np.ndarray:
    return np.lexsort((ws.start, ws.recording))


def _cwru(job: Job, study: NoveltyStudy, data: Any, spec: DataSpec) -> dict[str, Any]:
    model = train_model(data, spec, study, job.seed, study.work_dir / "runs" / f"cwru_s{job.seed}")
    scorers, test = fitted(model, data)
    order = _time_order(data.test)
    test_scores = scorers.scores(test)
    groups = data.test.recording[order]
    row: dict[str, Any] = {
        "accuracy": float(np.mean(test.logits.argmax(1) == data.test.y)),
        "n_test": len(test),
        "thresholds": scorers.thresholds,
        "familiar": {
            m: {
                "flagged": scorers.flagged(m, s),
                "flagged_smoothed": scorers.flagged_smoothed(m, s[order], groups),
                "flagged_p999": scorers.flagged(m, s, "p99.9"),
                "flagged_smoothed_p999": scorers.flagged_smoothed(m, s[order], groups, "p99.9"),
            }
            for m, s in test_scores.items()
        },
    }
    row["load_shift"] = {
        str(hp): _load_shift(model, scorers, study.cwru_path, list(data.classes), hp) for hp in SHIFT_LOADS
    }
    from drsn_edge.study.novelty_sim import simulator_windows

    sim = model_outputs(model, simulator_windows(job.seed))
    sim_scores = scorers.scores(sim)
    row["simulator"] = {
        "n": len(sim),
        **{
            m: {"auroc": auroc(test_scores[m], sim_scores[m]), "flagged": scorers.flagged(m, sim_scores[m])}
            for m in ALL_SCORES
        },
    }
    return row


def _load_shift(model: Any, scorers: Scorers, path: str, classes: list[str], hp: int) -> dict[str, Any]:
    """The nine fault classes at another motor load: familiar classes, shifted operating point."""
    from drsn_edge.data.cwru import load_cwru
    from drsn_edge.data.windows import make_windows
    from runtime.artifact import Normalization
    from runtime.signals.normalize import normalize_windows

    xs, ys, groups = [], [], []
    for i, rec in enumerate(load_cwru(path, select={"load_hp": hp})):
        if rec.label not in classes:
            continue
        w, _ = make_windows(rec.signal, 2048, 1024)
        xs.append(w)
        ys.append(np.full(len(w), classes.index(rec.label)))
        groups.append(np.full(len(w), i))
    x = normalize_windows(np.concatenate(xs), Normalization(kind="zscore"))
    y, g = np.concatenate(ys), np.concatenate(groups)
    out = model_outputs(model, x)
    scores = scorers.scores(out)
    return {
        "n": len(y),
        "accuracy": float(np.mean(out.logits.argmax(1) == y)),
        **{
            m: {
                "flagged": scorers.flagged(m, s),
                "flagged_smoothed": scorers.flagged_smoothed(m, s, g),
                "flagged_smoothed_p999": scorers.flagged_smoothed(m, s, g, "p99.9"),
            }
            for m, s in scores.items()
        },
    }


def _loco(job: Job, study: NoveltyStudy, data: Any, spec: DataSpec) -> dict[str, Any]:
    held = list(data.classes).index(job.held_out)
    kept = [c for c in data.classes if c != job.held_out]
    remap = np.array([-1 if c == held else c - (c > held) for c in range(len(data.classes))])

    def without(ws: Any) -> Any:
        keep = ws.y != held
        return dataclasses.replace(
            ws, x=ws.x[keep], y=remap[ws.y[keep]], recording=ws.recording[keep], start=ws.start[keep]
        )

    healthy = data.healthy_class if data.healthy_class in kept else kept[0]
    sub = dataclasses.replace(
        data,
        train=without(data.train),
        val=without(data.val),
        test=without(data.test),
        classes=kept,
        healthy_class=healthy,
    )
    model = train_model(
        sub, spec, study, job.seed, study.work_dir / "runs" / f"loco_{job.held_out}_s{job.seed}"
    )
    scorers, test = fitted(model, sub)
    novel = model_outputs(model, data.test.x[data.test.y == held])
    familiar_scores, novel_scores = scorers.scores(test), scorers.scores(novel)
    return {
        "accuracy": float(np.mean(test.logits.argmax(1) == sub.test.y)),
        "n_familiar": len(test),
        "n_novel": len(novel),
        **{
            m: {
                "auroc": auroc(familiar_scores[m], novel_scores[m]),
                "detected": scorers.flagged(m, novel_scores[m]),
                "familiar_flagged": scorers.flagged(m, familiar_scores[m]),
            }
            for m in ALL_SCORES
        },
    }
