"""`drsn-edge study generalization`: leave-one-load-out on CWRU and a few-shot second machine.

Both parts resume: finished runs are rows in ``<work>/lolo/rows.jsonl`` and
``<work>/fewshot/rows.jsonl``, and the tables are written from every row there, so a grid may
be run in slices (``--models drsn_cw_paper,wdcnn`` first, the other networks later) and
``--report-only`` tabulates whatever is done.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Leave-one-load-out on CWRU (train on three of 0-3 HP, test on the fourth; DRSN-CW, DRSN-CS, "
    "ResNet, WDCNN; with/without noise augmentation; scored with and without AdaBN), and a few-shot "
    "curve on a simulated second machine (1/3/10 s of labelled signal per class: scratch vs new head vs "
    "full fine-tune of a packaged checkpoint). Resumable; --report-only tabulates what is done."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DIR", help="CWRU folder with MANIFEST.csv (0-3 HP), for the LOLO part")
    p.add_argument(
        "--parts",
        default="lolo,fewshot",
        help="comma-separated: lolo, fewshot, packaged (load-transfer figures of the packaged CWRU models, "
        "written to <out>/packaged_figures.json for `drsn-edge models --write-manifest --figures`)",
    )
    g = p.add_argument_group("leave-one-load-out")
    g.add_argument("--models", default="drsn_cw_paper,wdcnn,drsn_cs_paper,resnet_paper")
    g.add_argument("--seeds", default="0,1,2")
    g.add_argument(
        "--augment",
        choices=["both", "off", "on"],
        default="both",
        help="noise augmentation gaussian,laplacian,pink:-10..4 off, on or both (default)",
    )
    g.add_argument("--loads", default="0,1,2,3", help="test loads to run")
    g.add_argument("--epochs", type=int, default=15)
    g.add_argument("--hop", type=int, default=2048, help="training hop (default: one window, no overlap)")
    g.add_argument("--test-hop", type=int, default=1024, help="validation/test hop")
    f = p.add_argument_group("few-shot second machine")
    f.add_argument("--parent", default="drsn_cw_cwru0hp", help="checkpoint or packaged model to adapt")
    f.add_argument("--fewshot-methods", default="scratch,head,finetune")
    f.add_argument("--fewshot-seconds", default="1,3,10", help="labelled seconds per class")
    f.add_argument("--fewshot-seeds", default="0,1,2")
    f.add_argument(
        "--fewshot-epochs",
        type=int,
        help="epochs of every method (default: the fine-tuning recipe's for head and fine-tune, "
        "30 from scratch)",
    )
    f.add_argument(
        "--fewshot-recipe",
        default="",
        metavar="KEY=VALUE;...",
        help="change the fine-tuning recipe for this study only, e.g. "
        "'lr=0.01;hop_divisor=4;augment_noise=off' (keys: lr, epochs, hop_divisor, label_smoothing, "
        "backbone_lr_scale, adabn_start, augment_noise); "
        "for choosing the `train --init` defaults on development seeds, with its own --work",
    )
    t = p.add_argument_group("running and output")
    t.add_argument("--workers", type=int, default=1, help="runs at once, each in its own process")
    t.add_argument("--threads", type=int, default=1, help="torch threads per run")
    t.add_argument("--out", "-o", default="docs/results/generalization")
    t.add_argument("--work", default="runs/study/generalization")
    t.add_argument("--report-only", action="store_true", help="train nothing; tabulate the finished runs")
    t.add_argument("--no-progress", action="store_true")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def run(args: argparse.Namespace) -> int:
    from drsn_edge.study import generalization as lolo
    from drsn_edge.study import generalization_fewshot as fs
    from drsn_edge.study import generalization_report as rep
    from runtime.errors import ConfigError

    parts = _names(args.parts)
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    summary: list[str] = []
    if "lolo" in parts:
        if not args.data:
            raise ConfigError("the leave-one-load-out part needs --data ../shared/data/cwru")
        settings = lolo.LoloSettings(args.data, args.epochs, 2048, args.hop, args.test_hop, args.threads)
        augment = {"both": (False, True), "off": (False,), "on": (True,)}[args.augment]
        points = lolo.lolo_points(_names(args.models), _ints(args.seeds), augment, _ints(args.loads))
        print(f"leave-one-load-out: {len(points)} runs requested, work directory {work / 'lolo'}")
        if not args.report_only:
            lolo.run_lolo(settings, points, work / "lolo", args.workers, not args.no_progress)
        rows = lolo.load_rows(work / "lolo")
        summary.append(_write_lolo(rows, out, rep))
    if "fewshot" in parts:
        fsettings = fs.FewShotSettings(
            args.parent, args.fewshot_epochs, args.threads, fs.parse_recipe(args.fewshot_recipe)
        )
        fpoints = fs.fewshot_points(
            _names(args.fewshot_methods),
            tuple(float(x) for x in _names(args.fewshot_seconds)),
            _ints(args.fewshot_seeds),
        )
        print(f"few-shot second machine: {len(fpoints)} runs requested, work directory {work / 'fewshot'}")
        frows = (
            fs.run_fewshot(fsettings, fpoints, work / "fewshot", args.workers, not args.no_progress)
            if not args.report_only
            else _rows(work / "fewshot" / "rows.jsonl")
        )
        summary.append(_write_fewshot(frows, out, rep, args.parent))
    if "packaged" in parts:
        summary.append(_write_packaged(args, out))
    text = "\n".join(summary)
    print(text)
    return 0


def _write_packaged(args: argparse.Namespace, out: Path) -> str:
    """Load-transfer figures of the packaged CWRU models (for `drsn-edge models --figures`)."""
    from drsn_edge.study.generalization_packaged import packaged_figures
    from runtime.errors import ConfigError

    if not args.data:
        raise ConfigError("the packaged part needs --data ../shared/data/cwru")
    lolo_file = out / "lolo_figures.json"
    lolo_figures = json.loads(lolo_file.read_text()) if lolo_file.exists() else {}
    figures = packaged_figures(args.data, lolo_figures)
    path = out / "packaged_figures.json"
    path.write_text(json.dumps(figures, indent=1))
    lines = [f"- {name}: {'; '.join(f'{k}: {v}' for k, v in fig.items())}" for name, fig in figures.items()]
    return "## Packaged CWRU models\n\n" + "\n".join(lines) + f"\n\n(written to {path})\n"


def _rows(path: Path) -> list[dict[str, Any]]:
    from drsn_edge.study.generalization_pool import read_rows

    return read_rows(path)


def _write_lolo(rows: list[dict[str, Any]], out: Path, rep: Any) -> str:
    table = rep.lolo_table(rows)
    recalls = rep.recall_table(rows)
    rep.write_csv(out / "lolo.csv", table)
    rep.write_csv(out / "lolo_recall.csv", recalls)
    rep.write_csv(
        out / "lolo_runs.csv", [{k: v for k, v in r.items() if not k.startswith("recall")} for r in rows]
    )
    md: str = "## Leave-one-load-out (CWRU drive end, 12 kHz)\n\n" + rep.lolo_markdown(table, rows)
    paired = rep.lolo_paired(rows)
    md += ("\n" + paired) if paired else ""
    for model in dict.fromkeys(r["model"] for r in rows):
        for aug in sorted({bool(r["augment"]) for r in rows if r["model"] == model}):
            md += "\n" + rep.recall_markdown(recalls, model, aug)
    (out / "lolo.md").write_text(md)
    if table:
        rep.lolo_plot(table, out / "lolo.png")
    figures = {
        f"{t['model']}{'+aug' if t['augment'] else ''}{'+adabn' if t['adabn'] else ''}": {
            "lolo_mean": t["mean"],
            "lolo_std": t["std"],
            "lolo_seeds": t["n_seeds"],
            **{f"lolo_{x}hp": t[f"{x}hp_mean"] for x in rep.LOADS},
        }
        for t in table
    }
    clean = {
        k: {f: (None if isinstance(v, float) and v != v else v) for f, v in fig.items()}
        for k, fig in figures.items()
    }
    (out / "lolo_figures.json").write_text(json.dumps(clean, indent=1))  # NaN (not run) as null
    return md


def _write_fewshot(rows: list[dict[str, Any]], out: Path, rep: Any, parent: str) -> str:
    table = rep.fewshot_table(rows)
    rep.write_csv(out / "fewshot.csv", table)
    rep.write_csv(
        out / "fewshot_runs.csv", [{k: v for k, v in r.items() if not k.startswith("recall")} for r in rows]
    )
    md: str = "## Few-shot, simulated second machine\n\n" + rep.fewshot_markdown(table)
    paired = rep.fewshot_paired(rows)
    md += ("\n" + paired) if paired else ""
    (out / "fewshot.md").write_text(md)
    if table:
        rep.fewshot_plot(table, out / "fewshot.png", parent)
    return md
