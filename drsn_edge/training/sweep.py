"""Several models across noise types, SNRs and seeds: one row per run, aggregated to mean and std.

The same function backs `drsn-edge sweep` and the noise study, so a table in the docs can always
be re-run from the command printed next to it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.training.datasource import DataSpec
from drsn_edge.training.evaluate import evaluate_model
from drsn_edge.training.metrics import seed_std
from drsn_edge.training.pipeline import prepare
from drsn_edge.training.plots import plot_accuracy_vs_snr
from drsn_edge.training.trainer import TrainConfig, train
from runtime.errors import ConfigError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class SweepPoint:
    model: str
    noise: str
    snr_db: float
    seed: int


def grid(
    models: Sequence[str], kinds: Sequence[str], snrs: Sequence[float], seeds: Sequence[int]
) -> list[SweepPoint]:
    return [SweepPoint(m, k, float(s), int(sd)) for k in kinds for s in snrs for sd in seeds for m in models]


def run_dir_for(out_dir: Path, point: SweepPoint) -> Path:
    """Where a point's checkpoints live: ``<out>/runs/<model>_<noise>_<snr>dB_s<seed>``."""
    return out_dir / "runs" / f"{point.model}_{point.noise}_{point.snr_db:g}dB_s{point.seed}"


def point_spec(base: DataSpec, point: SweepPoint) -> DataSpec:
    """``base`` with the point's noise and seed: the data one run trains and tests on."""
    noise = f"{point.noise}:{point.snr_db:g}"
    return DataSpec.from_dict({**base.to_dict(), "noise": noise, "seed": point.seed})


def run_point(
    point: SweepPoint,
    base: DataSpec,
    cfg: TrainConfig,
    out_dir: Path,
    after: Callable[[Any, Any, Path], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train and test one model at one noise level; ``after`` may add columns (e.g. FP16 accuracy)."""
    spec = point_spec(base, point)
    data, norm = prepare(spec)
    run_cfg = dataclasses.replace(cfg, model=point.model, seed=point.seed, progress=False)
    run_dir = run_dir_for(out_dir, point)
    t0 = time.perf_counter()
    result = train(data, spec, run_cfg, run_dir, norm=norm)
    from drsn_edge.training.checkpoint import load_checkpoint

    model = load_checkpoint(result.best_path).build_model()
    ev = evaluate_model(model, data.test.x, data.test.y, list(data.classes))
    row = {
        **dataclasses.asdict(point),
        "accuracy": ev.accuracy,
        "macro_f1": ev.macro_f1,
        "n_test": ev.n,
        "best_epoch": result.best_epoch,
        "seconds": time.perf_counter() - t0,
    }
    if after is not None:
        row.update(after(model, data, result.best_path))
    return row


def aggregate(
    rows: list[dict[str, Any]], value_keys: Sequence[str] = ("accuracy", "macro_f1")
) -> list[dict[str, Any]]:
    """Mean and std over seeds for each (model, noise, snr)."""
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["noise"], r["snr_db"]), []).append(r)
    out = []
    for (model, noise, snr), rs in sorted(groups.items()):
        agg: dict[str, Any] = {"model": model, "noise": noise, "snr_db": snr, "seeds": len(rs)}
        for k in value_keys:
            vals = [float(r[k]) for r in rs if k in r and r[k] is not None]
            if vals:
                agg[k] = float(np.mean(vals))
                agg[f"{k}_std"] = seed_std(vals)
        out.append(agg)
    return out


def _run_points(
    todo: list[SweepPoint],
    base: DataSpec,
    cfg: TrainConfig,
    out: Path,
    after: Callable[[Any, Any, Path], dict[str, Any]] | None,
    workers: int,
) -> Iterator[tuple[SweepPoint, dict[str, Any]]]:
    """Yield ``(point, row)`` as runs finish: in order in this process, or from a process pool."""
    if workers == 1 or len(todo) <= 1:
        for p in todo:
            yield p, run_point(p, base, cfg, out, after)
        return
    # spawn, not fork: a forked child inherits torch's thread pools mid-state and can hang
    pool_cfg = dataclasses.replace(cfg, threads=cfg.threads or 1)
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx)
    try:
        futures = {pool.submit(run_point, p, base, pool_cfg, out, after): p for p in todo}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        # on an error or Ctrl-C, drop the queued runs; finished rows are already saved
        pool.shutdown(wait=True, cancel_futures=True)


def write_tables(
    agg: list[dict[str, Any]], out_dir: Path, stem: str = "sweep", title: str = ""
) -> dict[str, Path]:
    """CSV, Markdown (models as columns, one row per noise/SNR) and a PNG of accuracy against SNR."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / f"{stem}.csv", "md": out_dir / f"{stem}.md", "png": out_dir / f"{stem}.png"}
    keys = sorted(
        {k for r in agg for k in r}, key=lambda k: (k not in ("model", "noise", "snr_db", "seeds"), k)
    )
    with open(paths["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(agg)
    paths["md"].write_text(markdown_table(agg))
    plot_accuracy_vs_snr(agg, paths["png"], title=title)
    return paths


def markdown_table(agg: list[dict[str, Any]], key: str = "accuracy") -> str:
    models = sorted({r["model"] for r in agg})
    cells = {(r["noise"], r["snr_db"], r["model"]): r for r in agg}
    lines = ["| noise | SNR (dB) | " + " | ".join(models) + " |", "|---|---:|" + "---:|" * len(models)]
    for noise, snr in sorted({(r["noise"], r["snr_db"]) for r in agg}):
        row = []
        for m in models:
            r = cells.get((noise, snr, m))
            if r is None or key not in r:
                row.append("")
            else:
                std = r.get(f"{key}_std", 0.0)
                row.append(
                    f"{100 * r[key]:.2f} ± {100 * std:.2f}"
                    if r.get("seeds", 1) > 1
                    else f"{100 * r[key]:.2f}"
                )
        lines.append(f"| {noise} | {snr:g} | " + " | ".join(row) + " |")
    means = []
    for m in models:
        vals = [r[key] for r in agg if r["model"] == m and key in r]
        means.append(f"**{100 * float(np.mean(vals)):.2f}**" if vals else "")
    lines.append("| **mean** | | " + " | ".join(means) + " |")
    return "\n".join(lines) + "\n"


def run_sweep(
    points: list[SweepPoint],
    base: DataSpec,
    cfg: TrainConfig,
    out_dir: str | Path,
    after: Callable[[Any, Any, Path], dict[str, Any]] | None = None,
    progress: bool = True,
    stem: str = "sweep",
    workers: int = 1,
) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Run every point (resuming from ``rows.jsonl`` if present) and write the tables.

    ``workers`` > 1 trains that many points at once in separate processes (each with
    ``cfg.threads`` torch threads, 1 if unset): on a small CPU, several single-threaded runs use
    the cores far better than one run spread over them. Rows are written by this process alone,
    in the order runs finish, so an interrupted sweep resumes exactly as a serial one does.
    """
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / f"{stem}_rows.jsonl"
    done = [json.loads(line) for line in rows_path.read_text().splitlines()] if rows_path.exists() else []
    seen = {(r["model"], r["noise"], float(r["snr_db"]), int(r["seed"])) for r in done}
    todo = [p for p in points if (p.model, p.noise, p.snr_db, p.seed) not in seen]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(points), initial=len(points) - len(todo), desc=stem, unit="run", dynamic_ncols=True
        )
    for p, row in _run_points(todo, base, cfg, out, after, workers):
        done.append(row)
        with open(rows_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(model=p.model, noise=f"{p.noise}:{p.snr_db:g}", acc=f"{row['accuracy']:.3f}")
    if bar is not None:
        bar.close()
    wanted = {(p.model, p.noise, p.snr_db, p.seed) for p in points}
    rows = [r for r in done if (r["model"], r["noise"], float(r["snr_db"]), int(r["seed"])) in wanted]
    keys = [k for k in ("accuracy", "macro_f1", "fp16_accuracy") if any(k in r for r in rows)]
    agg = aggregate(rows, keys)
    return agg, write_tables(agg, out, stem=stem)
