"""The noise study: DRSN against its baselines across noise types, SNRs, seeds and two protocols.

``train_test`` (the paper's protocol) trains and tests each model on data with the same noise,
added once per recording; ``test_only`` trains each model once on clean data and scores it at
every noise point, which is what a deployed model meets when a plant gets noisier than the data
it was trained on. Both run through :func:`drsn_edge.training.sweep.run_sweep` with an ``after``
hook (:mod:`drsn_edge.study.hooks`), so they resume from their ``*_rows.jsonl`` after an
interruption, and runs are shared between grids: the default grid's runs are a subset of the
full grid's, and ``--full`` afterwards only trains what is missing.

Checkpoints and rows go to a work directory named after a hash of everything that changes a
run's result except the grid (data, windows, optimiser, epochs), so two incompatible studies can
never mix their rows; tables and figures go to the output directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from drsn_edge.study.grids import NoiseGrid
from drsn_edge.study.hooks import TestOnlyHook, TrainTestHook
from drsn_edge.training.datasource import DataSpec, SourceKind
from drsn_edge.training.sweep import SweepPoint, run_sweep
from drsn_edge.training.trainer import TrainConfig
from runtime.errors import ConfigError

log = logging.getLogger(__name__)

RUN_ORDER: tuple[str, ...] = ("test_only", "train_test")
#: TrainConfig fields that do not change a run's result (or vary per run inside a sweep).
_NOT_SETTINGS = {"model", "seed", "threads", "progress", "model_version"}


def study_data_spec(
    source: str,
    path: str | None,
    *,
    window: int = 2048,
    hop: int | None = None,
    test_hop: int | None = None,
    select: dict[str, Any] | None = None,
    small: bool = False,
) -> DataSpec:
    """The study's data: time split, training hop window/4, overlapping test windows (hop window/8).

    CWRU defaults to the 0 HP recordings (the 10-class set of the paper); ``small`` shrinks the
    simulator's recordings for a smoke run.
    """
    spec = DataSpec(
        source=cast(SourceKind, source),
        path=path,
        window=window,
        hop=hop or window // 4,
        test_hop=test_hop or window // 8,
        split="time",
    )
    spec.select = dict(select) if select else ({"load_hp": 0} if source == "cwru" else {})
    if source == "synthetic" and small:
        spec.synthetic_seconds, spec.synthetic_per_class = 2.0, 2
    spec.validate()
    return spec


@dataclass
class NoiseStudy:
    """Everything one ``drsn-edge study noise`` invocation needs."""

    grid: NoiseGrid
    data: DataSpec
    train: TrainConfig
    out_dir: Path
    work_root: Path = Path("runs/study/noise")
    fp16_models: tuple[str, ...] = ("drsn_cw_paper",)
    thresholds: bool = True
    progress: bool = True
    command: str = ""
    #: False: only tabulate the runs already done (e.g. while the grid is still running elsewhere)
    train_missing: bool = True
    #: training runs at once, each in its own process (results do not depend on it)
    workers: int = 1

    def settings(self) -> dict[str, Any]:
        """What must be equal for two runs of the same (model, noise, SNR, seed) to be the same run."""
        ignored = {"noise", "seed", "noise_protocol"}
        if self.data.source != "synthetic":
            # the simulator's knobs do not touch recorded data; new ones must not orphan old work
            ignored |= {k for k in self.data.to_dict() if k.startswith("synthetic_")}
        data = {k: v for k, v in self.data.to_dict().items() if k not in ignored}
        if data.get("path"):
            data["path"] = str(Path(data["path"]).resolve())
        cfg = dataclasses.asdict(dataclasses.replace(self.train, epochs=self.grid.epochs))
        train = {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items() if k not in _NOT_SETTINGS
        }
        if train.get("augment_noise") is None:  # an option that is off must not re-key earlier work
            train.pop("augment_noise", None)
            train.pop("augment_prob", None)
        return {"data": data, "train": train}

    @property
    def work_dir(self) -> Path:
        digest = hashlib.sha256(json.dumps(self.settings(), sort_keys=True).encode()).hexdigest()[:10]
        return self.work_root / f"{self.data.source}-{digest}"


@dataclass
class ProtocolResult:
    """Per-point rows of one protocol (``test_only`` rows expanded from the per-model runs)."""

    protocol: str
    rows: list[dict[str, Any]]
    runs: int
    seconds: float
    clean_rows: list[dict[str, Any]] = field(default_factory=list)


def run_noise_study(study: NoiseStudy) -> tuple[dict[str, ProtocolResult], float]:
    """Run (or resume) every protocol of the grid; return the results and this call's wall time."""
    t0 = time.perf_counter()
    work = study.work_dir
    if not study.train_missing and not work.is_dir():
        raise ConfigError(
            f"no runs to report in {work}: these settings were never run; "
            "run the same command without --report-only first"
        )
    work.mkdir(parents=True, exist_ok=True)
    if study.train_missing:
        (work / "settings.json").write_text(json.dumps(study.settings(), indent=1, sort_keys=True))
    log.info("noise study %s: %d training runs, work directory %s", study.grid.name, study.grid.runs(), work)
    # test_only first: a handful of clean runs gives a complete table (and the thresholds of fixed
    # models meeting rising noise) within minutes, long before the grid of noisy trainings ends.
    done = {p: _run_protocol(study, p) for p in sorted(study.grid.protocols, key=RUN_ORDER.index)}
    return {p: done[p] for p in study.grid.protocols}, time.perf_counter() - t0


def _run_protocol(study: NoiseStudy, protocol: str) -> ProtocolResult:
    spec = DataSpec.from_dict({**study.data.to_dict(), "noise_protocol": protocol})
    cfg = dataclasses.replace(study.train, epochs=study.grid.epochs, progress=False)
    hook: TrainTestHook | TestOnlyHook
    if protocol == "train_test":
        points = study.grid.train_test_points()
        hook = TrainTestHook(study.fp16_models, study.thresholds)
    else:
        points = study.grid.test_only_points()
        hook = TestOnlyHook(study.grid.kinds, study.grid.snrs, study.fp16_models, study.thresholds)
    work = study.work_dir / protocol
    if study.train_missing:
        run_sweep(
            points, spec, cfg, work, after=hook, progress=study.progress, stem=protocol, workers=study.workers
        )
    raw = load_rows(work / f"{protocol}_rows.jsonl", points)
    seconds = sum(float(r.get("seconds", 0.0)) for r in raw)
    if protocol == "train_test":
        return ProtocolResult(protocol, raw, len(raw), seconds)
    rows, clean = expand_test_only(raw, study.grid)
    return ProtocolResult(protocol, rows, len(raw), seconds, clean)


def load_rows(path: Path, points: list[SweepPoint]) -> list[dict[str, Any]]:
    """The rows of ``path`` that belong to ``points`` (a resumed file may hold more)."""
    wanted = {(p.model, p.noise, float(p.snr_db), int(p.seed)) for p in points}
    rows = (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )
    return [r for r in rows if (r["model"], r["noise"], float(r["snr_db"]), int(r["seed"])) in wanted]


def expand_test_only(
    raw: list[dict[str, Any]], grid: NoiseGrid
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One row per (model, seed, noise, SNR) from the clean runs, plus one clean-test row per run.

    Only the grid's points are kept, so a run scored on a wider grid earlier still fits this one.
    """
    wanted = {(k, float(s)) for k in grid.kinds for s in grid.snrs}
    rows, clean = [], []
    for r in raw:
        base = {
            "model": r["model"],
            "seed": int(r["seed"]),
            "n_train": r.get("n_train"),
            "n_val": r.get("n_val"),
        }
        clean.append({**base, "noise": "clean", "snr_db": None, **(r.get("clean") or {})})
        for p in r.get("test_only", []):
            if (p["noise"], float(p["snr_db"])) in wanted:
                rows.append({**base, **p, "snr_db": float(p["snr_db"])})
    missing = len(wanted) * len(raw) - len(rows)
    if missing:
        log.warning(
            "%d test_only points are missing from earlier runs scored on a smaller grid; "
            "use a new --work directory to score every point",
            missing,
        )
    return rows, clean


def rescore_fp16_failures(study: NoiseStudy) -> tuple[int, int]:
    """Repeat the FP16 export and scoring of ``train_test`` runs whose FP16 step failed.

    For after a gate or converter change: the checkpoints are kept, so only the export runs again
    and the rows file is rewritten in place (atomically). Returns ``(fixed, still failing)``.
    """
    from drsn_edge.study.hooks import fp16_columns
    from drsn_edge.training.checkpoint import load_checkpoint
    from drsn_edge.training.pipeline import prepare
    from drsn_edge.training.sweep import point_spec, run_dir_for

    work = study.work_dir / "train_test"
    path = work / "train_test_rows.jsonl"
    text = path.read_text() if path.exists() else ""
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    fixed = failing = 0
    for row in rows:
        if "fp16_error" not in row:
            continue
        point = SweepPoint(row["model"], row["noise"], float(row["snr_db"]), int(row["seed"]))
        base = DataSpec.from_dict({**study.data.to_dict(), "noise_protocol": "train_test"})
        data, _norm = prepare(point_spec(base, point))
        best = run_dir_for(work, point) / "best.pt"
        columns = fp16_columns(load_checkpoint(best).build_model(), best, data.test.x, data.test.y)
        if "fp16_error" in columns:
            failing += 1
        else:
            del row["fp16_error"]
            fixed += 1
        row.update(columns)
        log.info("FP16 of %s: %s", best.parent.name, columns)
    if fixed:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        tmp.replace(path)
    return fixed, failing
