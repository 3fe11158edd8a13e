"""`drsn-edge calibrate CHECKPOINT`: fit the novelty statistics of an existing checkpoint.

Checkpoints trained before novelty existed (or whose statistics should be refitted) get the class
means, the shared covariance and the p99 / p99.9 thresholds from the data their metadata records;
export the checkpoint again to carry them into the ONNX metadata.
"""

from __future__ import annotations

import argparse
import json

from runtime.novelty.scores import DEFAULT_SCORE, NOVELTY_SCORES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a checkpoint written by `drsn-edge train`")
    p.add_argument(
        "--data", metavar="DIR", help="where the training data lives now (default: the recorded path)"
    )
    p.add_argument("-o", "--out", help="write a new checkpoint here instead of updating CHECKPOINT")
    p.add_argument(
        "--score",
        choices=list(NOVELTY_SCORES),
        default=DEFAULT_SCORE,
        help=f"novelty score (default {DEFAULT_SCORE}, which also reads the model's input windows; "
        "docs/novelty.md, 'Which score', compares them; sqrt_mahalanobis reads the features alone)",
    )


    p.add_argument(
        "--machines",
        type=int,
        metavar="N",
        help="simulator models only: fit on N fresh simulated machines per class from the training "
        "ranges and set the thresholds on whole machines held out of the fit (48 for the packaged "
        "drsn_cw_sim); without it the statistics come from the model's own training machines",
    )


def run(args: argparse.Namespace) -> int:
    from drsn_edge.novelty.calibrate import calibrate_checkpoint

    result = calibrate_checkpoint(
        args.checkpoint, data_dir=args.data, out=args.out, score=args.score, machines=args.machines
    )
    print(result.summary())
    print(json.dumps({"checkpoint": args.out or args.checkpoint, **result.as_dict()}))
    return 0
