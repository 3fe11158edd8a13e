"""`drsn-edge build-engine`: build (or reuse) a TensorRT engine from a drsn-edge ONNX file, on the device.

Run it on the machine that will serve the model: a TensorRT engine only runs on the TensorRT
version and GPU it was built with. A second run with the same ONNX, TensorRT, GPU, precision and
batch profile is a no-op; any change rebuilds. After a build the engine is checked against
ONNX Runtime on the golden windows stored in the model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from runtime.errors import ConfigError


def parse_batch(text: str) -> tuple[int, int, int]:
    """``"1,8,32"`` -> (1, 8, 32); a single ``"16"`` means (1, 16, 16)."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--batch {text!r} is not a list of integers; use e.g. --batch 1,8,32") from None
    if len(values) == 1:
        values = [1, values[0], values[0]]
    if len(values) != 3 or not 1 <= values[0] <= values[1] <= values[2]:
        raise ConfigError(f"--batch {text!r} must be min,opt,max with 1 <= min <= opt <= max, e.g. 1,8,32")
    return values[0], values[1], values[2]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an ONNX file written by `drsn-edge export onnx` (or its FP16 twin)")
    p.add_argument("-o", "--out", help="engine file (default: <model>.<precision>.engine beside the ONNX)")
    p.add_argument("--precision", choices=["fp16", "fp32"], default="fp16")
    p.add_argument(
        "--batch", default="1,8,32", help="optimisation profile min,opt,max batch (default 1,8,32)"
    )
    p.add_argument("--workspace-mb", type=int, default=1024, help="builder workspace limit in MiB")
    p.add_argument(
        "--timing-cache", help="persistent timing cache file (default: trt-timing.cache beside the engine)"
    )
    p.add_argument("--device", type=int, default=0, help="CUDA device index")
    p.add_argument("--force", action="store_true", help="rebuild even when the cached engine is up to date")


def run(args: argparse.Namespace) -> int:
    from runtime.artifact import read_engine_file
    from runtime.backends.tensorrt.cache import ensure_engine

    engine = ensure_engine(
        Path(args.model),
        Path(args.out) if args.out else None,
        precision=args.precision,
        batch=parse_batch(args.batch),
        workspace_mb=args.workspace_mb,
        timing_cache=args.timing_cache,
        device_id=args.device,
        force=args.force,
    )
    _, info, _ = read_engine_file(engine, with_engine=False)
    print(json.dumps({"engine": str(engine), **info.model_dump(mode="json")}))
    return 0
