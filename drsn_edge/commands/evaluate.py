"""`drsn-edge evaluate`: accuracy, macro-F1, a per-class report and a confusion matrix (text + PNG).

The data spec stored in the checkpoint rebuilds the exact test split; any data flag given here
overrides it (for example ``--noise gaussian:-6 --noise-protocol test_only`` to score a clean-trained
model on noisy data, or ``--test-select load_hp=1`` for another operating condition).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from drsn_edge.commands._data_args import add_data_arguments, spec_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a .pt checkpoint written by `drsn-edge train`")
    p.add_argument("--on", choices=["test", "val"], default="test", help="which split to score")
    p.add_argument("--out", "-o", help="directory for the report (default: beside the checkpoint)")
    add_data_arguments(p, for_eval=True)


def run(args: argparse.Namespace) -> int:
    from drsn_edge.training.checkpoint import load_checkpoint
    from drsn_edge.training.datasource import DataSpec
    from drsn_edge.training.evaluate import evaluate_model, write_evaluation
    from drsn_edge.training.pipeline import prepare

    ckpt = load_checkpoint(args.checkpoint)
    base = DataSpec.from_dict(ckpt.metadata.training.get("data_spec", {}))
    spec = spec_from_args(args, base=base)
    data, _ = prepare(spec)
    split = getattr(data, args.on)
    if list(data.classes) != list(ckpt.metadata.classes):
        from runtime.errors import DataError

        raise DataError(
            f"the data's classes {data.classes} differ from the model's {ckpt.metadata.classes}; "
            "evaluate on data with the same label scheme"
        )
    ev = evaluate_model(ckpt.build_model(), split.x, split.y, list(data.classes))
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    noise = f", noise {spec.noise} ({spec.noise_protocol})" if spec.noise else ""
    paths = write_evaluation(
        ev,
        out,
        title=f"{ckpt.model_name}: {args.on} split{noise}",
        stem=f"eval_{args.on}",
        extra={"data_spec": spec.to_dict()},
    )
    print(ev.text_report())
    print(
        json.dumps(
            {
                "accuracy": round(ev.accuracy, 4),
                "macro_f1": round(ev.macro_f1, 4),
                "n": ev.n,
                **{k: str(v) for k, v in paths.items()},
            }
        )
    )
    return 0
