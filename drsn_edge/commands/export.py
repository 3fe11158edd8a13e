"""`drsn-edge export`: checkpoint -> ONNX (`export onnx`) and ONNX -> FP16 ONNX (`export fp16`).

Both steps end with a gate and refuse to write a file that fails it: ONNX Runtime must match
PyTorch (max |logit diff| <= atol, identical argmax) and the FP16 model must agree with the FP32
one on at least 99.5% of the windows (and lose at most 0.2 accuracy points when labels are given).
torch, onnx and onnxruntime are imported inside the sub-commands.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from runtime.errors import DataError

log = logging.getLogger(__name__)

_WINDOW_KEYS = ("x", "windows", "inputs")
_LABEL_KEYS = ("y", "labels")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="export_target", metavar="TARGET", required=True)
    onnx_p = sub.add_parser("onnx", help="checkpoint -> ONNX with metadata, gated against PyTorch")
    onnx_p.add_argument("checkpoint", help="a checkpoint written by `drsn-edge train`")
    onnx_p.add_argument("-o", "--out", help="output ONNX file (default: the checkpoint's name with .onnx)")
    onnx_p.add_argument("--opset", type=int, default=17, help="ONNX opset (TensorRT 10 and ONNX Runtime: 17)")
    onnx_p.add_argument("--atol", type=float, default=1e-4, help="parity gate: max |logit diff| vs PyTorch")
    onnx_p.add_argument("--golden", type=int, default=8, help="golden windows stored in the model for checks")
    onnx_p.add_argument(
        "--windows",
        help="npz with real normalised windows (x) for the parity gate "
        "(default: the checkpoint's golden windows)",
    )
    onnx_p.set_defaults(_export=_run_onnx)
    fp16_p = sub.add_parser("fp16", help="FP32 ONNX -> FP16 ONNX (sensitive nodes in FP32), gated")
    fp16_p.add_argument("model", help="an ONNX file written by `drsn-edge export onnx`")
    fp16_p.add_argument("-o", "--out", help="output file (default: <model>.fp16.onnx beside the input)")
    fp16_p.add_argument(
        "--windows",
        help="npz with normalised windows (x) and optional labels (y) for the gate "
        "(default: the golden windows stored in the model)",
    )
    fp16_p.add_argument(
        "--eval-split",
        choices=["test", "val"],
        help="measure the gate on this split, rebuilt from the data spec recorded in the model "
        "(e.g. the real CWRU test windows); needs the data on this host",
    )
    fp16_p.add_argument("--data", help="with --eval-split: where the data lives on this host")
    fp16_p.add_argument(
        "--converter",
        choices=["auto", "autocast", "onnxconverter"],
        default="auto",
        help="auto: ModelOpt AutoCast when installed, onnxconverter-common otherwise",
    )
    fp16_p.set_defaults(_export=_run_fp16)


def run(args: argparse.Namespace) -> int:
    return int(args._export(args))


def load_windows(path: str) -> tuple[Any, Any]:
    """(windows, labels or None) from an npz file with keys x/windows/inputs and y/labels."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise DataError(
            f"windows file {p} does not exist; write one with numpy.savez(path, x=windows, y=labels)"
        )
    with np.load(p) as data:
        x_key = next((k for k in _WINDOW_KEYS if k in data.files), None)
        if x_key is None:
            raise DataError(f"{p} holds {data.files}; store the windows under 'x' (and labels under 'y')")
        y_key = next((k for k in _LABEL_KEYS if k in data.files), None)
        return data[x_key], (data[y_key] if y_key else None)


def _run_onnx(args: argparse.Namespace) -> int:
    from drsn_edge.training.checkpoint import build_model
    from export.onnx_export import onnx_from_checkpoint

    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(".onnx")
    windows = load_windows(args.windows)[0] if args.windows else None
    report = onnx_from_checkpoint(
        args.checkpoint,
        out,
        build_model=build_model,
        opset=args.opset,
        parity_inputs=windows,
        atol=args.atol,
        golden_count=args.golden,
    )
    print(report.summary())
    print(
        json.dumps(
            {
                "onnx": str(out),
                "max_abs_diff": report.parity.max_abs_diff,
                "argmax_agreement": report.parity.argmax_agreement,
                "bn_folded": report.bn_folded,
            }
        )
    )
    return 0


def _run_fp16(args: argparse.Namespace) -> int:
    from runtime.backends.tensorrt.source import base_stem
    from runtime.onnx_tools.fp16 import fp16_from_onnx

    src = Path(args.model)
    out = Path(args.out) if args.out else src.with_name(f"{base_stem(src)}.fp16.onnx")
    windows, labels = load_windows(args.windows) if args.windows else (None, None)
    if args.eval_split:
        from drsn_edge.training.pipeline import split_of_model

        windows, labels = split_of_model(str(src), args.eval_split, args.data)
    report = fp16_from_onnx(src, out, eval_windows=windows, eval_labels=labels, converter=args.converter)
    print(report.summary())
    print(json.dumps({"onnx": str(out), **{k: v for k, v in report.as_dict().items() if k != "kept_fp32"}}))
    return 0
