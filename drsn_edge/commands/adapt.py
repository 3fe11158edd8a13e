"""`drsn-edge adapt`: AdaBN, a checkpoint's BatchNorm statistics re-estimated on a new machine.

No labels are needed: point ``--data`` at recordings of the target machine (a folder of
wav/npy/csv/mat files, any layout, or one file; or ``--source cwru --select ...``). The new
checkpoint exports as usual (``drsn-edge export onnx``).
"""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a .pt checkpoint or a packaged model name (`drsn-edge models`)")
    p.add_argument(
        "--source",
        choices=["files", "cwru", "folder", "synthetic"],
        default="files",
        help="files: every signal file under --data, labels ignored (default); cwru/folder/synthetic: "
        "the project's loaders with --select (labels ignored)",
    )
    p.add_argument("--data", metavar="PATH", help="the target machine's recordings (folder or file)")
    p.add_argument("--select", action="append", metavar="KEY=VALUE", help="with --source cwru/folder")
    p.add_argument("--hop", type=int, help="hop between windows (default: the model's)")
    p.add_argument("--out", "-o", required=True, help="the adapted checkpoint to write (.pt)")


def run(args: argparse.Namespace) -> int:
    from drsn_edge.training.adapt import run_adapt
    from drsn_edge.training.datasource import DataSpec, parse_selection

    spec = None
    if args.source != "files":
        spec = DataSpec(source=args.source, path=args.data, select=parse_selection(args.select))
    report = run_adapt(args.checkpoint, spec, args.data, args.out, hop=args.hop)
    print(json.dumps(report))
    return 0
