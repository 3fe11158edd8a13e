"""`drsn-edge models`: the packaged models, what each was trained on and how it measured.

Reads ``drsn_edge/assets/models.json``; ``--write-manifest`` rewrites it from the packaged
ONNX files and checkpoints (the scripts under ``scripts/train-*.sh`` call it after training).
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.add_argument(
        "--write-manifest",
        action="store_true",
        help="rewrite drsn_edge/assets/models.json from the packaged .onnx/.pt files (needs onnx)",
    )
    p.add_argument(
        "--figures",
        metavar="JSON",
        help="with --write-manifest: attach figures measured elsewhere, a JSON file "
        "{model name: {figure: value}} written by the measuring command",
    )


def run(args: argparse.Namespace) -> int:
    from drsn_edge.training.packaged import load_figures, read_manifest, write_manifest

    if args.write_manifest:
        path = write_manifest(figures=load_figures(args.figures) if args.figures else None)
        print(f"wrote {path}")
    doc = read_manifest()
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    for entry in doc["models"]:
        print(render(entry))
        print()
    return 0


def _pct(value: Any) -> str:
    return f"{100 * float(value):.2f} %" if isinstance(value, (int, float)) else "-"


def render(entry: dict[str, Any]) -> str:
    """A few lines a person reads before choosing a model."""
    data = entry.get("trained_on") or {}
    fig = entry.get("figures") or {}
    where = f"{data.get('source')} {json.dumps(data.get('select') or {})}"
    if data.get("load_hp") is not None:
        where += f", loads {data['load_hp']} HP"
    if data.get("simulated"):
        where += f", {json.dumps(data['simulated'])}"
    where += f", {data.get('recordings')} recordings, {data.get('epochs')} epochs, seed {data.get('seed')}"
    if data.get("augment_noise"):
        where += f", noise augmentation {data['augment_noise']}"
    ckpt = entry.get("checkpoint")
    lines = [
        f"{entry['name']}  ({entry['model']}, version {entry['version']}, {entry['parameters']} parameters)",
        f"  classes ({len(entry['classes'])}): {', '.join(entry['classes'])}"
        f"  [healthy: {entry['healthy_class']}]",
        f"  input: {entry['sample_rate']:g} Hz, window {entry['window']}, hop {entry['hop']}",
        f"  trained on: {where}",
        f"  test: {_pct(fig.get('test_acc'))} "
        f"(n = {fig.get('test_n')} windows, {fig.get('test_split')} split)",
    ]
    extra = {k: v for k, v in fig.items() if k not in ("test_acc", "test_macro_f1", "test_n", "test_split")}
    for key, value in extra.items():
        lines.append(f"  {key}: {value}")
    lines.append(
        f"  files: {entry['onnx']['file']} ({entry['onnx']['bytes'] // 1024} KiB)"
        + (
            f", {ckpt['file']} ({ckpt['bytes'] // 1024} KiB; `drsn-edge train --init {entry['name']}`)"
            if ckpt
            else ", no checkpoint"
        )
    )
    return "\n".join(lines)
