"""Arguments and entry point of `drsn-edge study novelty` (registered in drsn_edge/commands/study.py)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

DESCRIPTION = (
    "Does the model know when it does not know? Max-softmax, energy and feature-space (Mahalanobis) "
    "novelty scores on CWRU leave-one-class-out, CWRU fault classes at 1-3 HP (load shift), a simulated "
    "second machine, and a per-machine baseline (false alarms per hour, delay to a later fault). "
    "Resumable; tables and figures go to --out."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DIR", required=True, help="the CWRU folder (MANIFEST.csv, 0-3 HP)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (at least 3 for spread)")
    p.add_argument("--epochs", type=int, default=12, help="epochs per training run (paper SGD schedule)")
    p.add_argument("--model", default="drsn_cw_paper", help="registered model to train")
    p.add_argument("--kinds", default="cwru,sim,loco", help="which runs: cwru, sim, loco (comma-separated)")
    p.add_argument("--workers", type=int, default=1, help="training runs at once, one process each")
    p.add_argument("--work", default="runs/study/novelty", help="checkpoints and rows.jsonl (resumable)")
    p.add_argument("--out", "-o", default="docs/results/novelty", help="tables (CSV, Markdown) and PNGs")
    p.add_argument("--report-only", action="store_true", help="train nothing; tabulate the rows so far")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--packaged",
        metavar="LABEL=MODEL.onnx[@MIN_DURATION_S],...",
        help="train nothing: measure how often simulator models flag familiar simulated machines (the "
        "demo's, and machines across the training ranges) and machine 2 as unfamiliar, per class; "
        "writes packaged_sim.{csv,md,png} to --out; @S: the flag must persist S seconds (default 0)",
    )


def run(args: argparse.Namespace) -> int:
    if args.packaged:
        return _packaged(args)
    from drsn_edge.study.novelty import NoveltyStudy, run_study
    from drsn_edge.study.novelty_report import goals_text, write_report

    study = NoveltyStudy(
        cwru_path=args.data,
        seeds=tuple(int(s) for s in args.seeds.split(",") if s.strip()),
        epochs=args.epochs,
        model=args.model,
        work_dir=Path(args.work),
        kinds=tuple(k.strip() for k in args.kinds.split(",") if k.strip()),
        workers=args.workers,
        progress=not args.no_progress,
    )
    rows = run_study(study, train_missing=not args.report_only)
    command = "drsn-edge " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    write_report(rows, Path(args.out), command=command, epochs=study.epochs)
    print(goals_text(rows))
    return 0


def _packaged(args: argparse.Namespace) -> int:
    from drsn_edge.study.novelty_packaged import measure, plot
    from drsn_edge.study.novelty_report import _write
    from runtime.errors import ConfigError

    rows = []
    for item in args.packaged.split(","):
        label, sep, rest = item.partition("=")
        model, _, duration = rest.partition("@")
        try:
            seconds = float(duration or 0.0)
        except ValueError:
            seconds = -1.0
        if not sep or not label or not model or seconds < 0:
            raise ConfigError(
                f"--packaged item {item!r} is not LABEL=MODEL.onnx[@SECONDS]; "
                "e.g. new=drsn_edge/assets/drsn_cw_sim.onnx@1"
            )
        rows += measure(model, label, seconds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "drsn-edge " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    title = "Simulated machines flagged unfamiliar by a simulator model"
    _write(rows, out, "packaged_sim", title, f"`{command}`")
    plot(rows, out / "packaged_sim.png")
    for r in rows:
        print(" | ".join(str(v) for v in r.values()))
    return 0
