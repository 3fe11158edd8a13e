"""`drsn-edge bench backends --device cuda`: the model on a CUDA GPU, batch 1 to 8192.

A GPU answers two different questions, and a deployment needs both figures: how fast the network
runs once its input is in device memory (**compute**), and how fast a batch of windows in host
memory becomes logits in host memory (**end to end**: pinned staging, copies in and out, one
stream), which is what the daemon sees. Runners (:mod:`.cuda_runners`): PyTorch
FP32 and FP16 eager and as CUDA-graph replay (needs ``--checkpoint``), and ONNX Runtime's CUDA
provider when ``onnxruntime-gpu`` is installed.

Method, as on the CPU: the model's golden windows tiled to the batch size; per runner, batch and
mode, ``--warmup`` calls, then ``--repeats`` repeats of as many calls as fill ``--min-time``
seconds; every timed call ends with the device synchronised, so a call's time is its whole GPU
work. p50/p99 per call and windows/s are medians over repeats. Device memory is the peak of
torch's allocator over the batch minus what the model holds (not available for ONNX Runtime).
Numerics: end-to-end logits on the golden windows against the golden logits (ONNX Runtime FP32).
Without CUDA the command says why and exits with :data:`NO_CUDA_EXIT`.
"""

from __future__ import annotations

import argparse
import logging
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.bench_backends.measurement import tile_windows, time_calls
from drsn_edge.bench_backends.report import command_line, model_section, package_versions
from runtime.errors import ConfigError, DrsnEdgeError

log = logging.getLogger(__name__)

SCHEMA = "drsn-edge/bench-backends-cuda"
DEFAULT_BATCHES = (1, 8, 32, 128, 512, 2048, 8192)
MODES = ("compute", "end-to-end")
#: exit status when no CUDA device can be used (distinct from 1: a run failed, 2: bad arguments)
NO_CUDA_EXIT = 3


@dataclass
class CudaFigures:
    batch: int
    mode: str  # compute | end-to-end
    calls: int
    p50_ms: float
    p99_ms: float
    windows_per_s: float
    device_peak_mib: float | None


@dataclass
class CudaResult:
    name: str
    status: str  # ok | skipped | failed
    reason: str = ""
    load_s: float | None = None
    max_abs_diff: float | None = None  # end-to-end logits vs the golden (ONNX Runtime FP32) logits
    argmax_agreement: float | None = None
    results: list[CudaFigures] = field(default_factory=list)


def cuda_unavailable_reason() -> str | None:
    """Why PyTorch cannot use a CUDA device here, in words; None when it can."""
    try:
        import torch
    except ImportError:
        return "torch is not installed; install a CUDA build of PyTorch (`pip install 'drsn-edge[train]'`)"
    if torch.version.cuda is None:
        return f"PyTorch {torch.__version__} is a CPU-only build; install a CUDA build of PyTorch"
    if not torch.cuda.is_available():
        return (
            f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable GPU: no NVIDIA device, "
            "driver or CUDA_VISIBLE_DEVICES hides it"
        )
    return None


def batch_sizes(text: str | None) -> list[int]:
    """``--batch-sizes`` for the GPU: comma-separated positive integers, default 1 to 8192."""
    if text is None:
        return list(DEFAULT_BATCHES)
    try:
        sizes = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--batch-sizes {text!r} must be comma-separated integers, e.g. 1,8,32") from None
    if not sizes or any(b < 1 for b in sizes):
        raise ConfigError(f"--batch-sizes {text!r}: give at least one batch size, each at least 1")
    return sorted(set(sizes))


def device_id(text: str) -> int:
    """The CUDA device index of ``--device cuda`` or ``--device cuda:N``."""
    match = re.fullmatch(r"cuda(?::(\d+))?", text.strip())
    if match is None:
        raise ConfigError(f"--device {text!r}: use cpu, cuda or cuda:N (N a device index)")
    return int(match.group(1) or 0)


def runner_names(text: str | None) -> list[str]:
    from drsn_edge.bench_backends.cuda_runners import RUNNER_NAMES

    if text is None:
        return list(RUNNER_NAMES)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names or any(n not in RUNNER_NAMES for n in names):
        raise ConfigError(f"--backends {text!r} with --device cuda: choose from {', '.join(RUNNER_NAMES)}")
    return names


def measure(runner: Any, golden: tuple[np.ndarray, np.ndarray], batches: list[int], *, repeats: int,
            min_time_s: float, warmup: int, on_batch: Callable[[int], None]) -> CudaResult:
    """Load one runner, check its numerics on the golden windows, time both modes at every batch size.

    A batch size that fails (out of device memory, most often) ends that runner's sweep with the
    reason recorded; the sizes measured before it are kept.
    """
    result = CudaResult(runner.name, "ok")
    t0 = time.perf_counter()
    runner.load()
    result.load_s = time.perf_counter() - t0
    try:
        gx, gy = golden
        runner.prepare(gx)
        got = runner.end_to_end(gx)
        result.max_abs_diff = float(np.abs(got - gy).max())
        result.argmax_agreement = float(np.mean(got.argmax(1) == gy.argmax(1)))
        for b in batches:
            on_batch(b)
            try:
                result.results += _one_batch(runner, tile_windows(gx, b), repeats, min_time_s, warmup)
            except Exception as exc:  # recorded in the report; the sweep stops here
                log.warning("%s: batch %d failed: %s", runner.name, b, exc)
                result.reason = f"stopped at batch {b}: {type(exc).__name__}: {str(exc)[:200]}"
                break
    finally:
        runner.close()
    return result


def _one_batch(runner: Any, x: np.ndarray, repeats: int, min_time_s: float, warmup: int) -> list[CudaFigures]:
    """Both modes at the batch size of ``x``."""
    runner.prepare(x)
    figures = []
    for mode in MODES:
        call = runner.compute if mode == "compute" else (lambda: runner.end_to_end(x))
        sync = runner.sync if mode == "compute" else (lambda: None)
        calls, p50, p99, rate = time_calls(call, sync, batch=len(x), repeats=repeats, min_time_s=min_time_s,
                                           warmup=warmup)
        figures.append(CudaFigures(len(x), mode, calls, p50, p99, rate, runner.device_peak_mib()))
    return figures


def run_cuda(args: argparse.Namespace) -> int:
    """The command with ``--device cuda``: every runner in this process, one after the other."""
    batches, names = batch_sizes(args.batch_sizes), runner_names(args.backends)
    device = device_id(args.device)
    if args.repeats < 1 or args.min_time <= 0 or args.warmup < 0:
        raise ConfigError("--repeats must be at least 1, --min-time positive, --warmup >= 0")
    reason = cuda_unavailable_reason()
    if reason is not None:
        print(f"drsn-edge bench backends --device cuda: CUDA is not available: {reason}", file=sys.stderr)
        return NO_CUDA_EXIT
    import tempfile

    from drsn_edge.bench_backends.command import model_path  # the same model choice as on the CPU
    from drsn_edge.bench_backends.cuda_runners import make_runner
    from runtime.backends import open_model
    from runtime.progress import progress_bar

    results: list[CudaResult] = []
    with tempfile.TemporaryDirectory(prefix="drsn-edge-bench-cuda-") as tmp:
        model = model_path(args, Path(tmp))
        meta = open_model(model)
        if meta.golden is None:
            raise ConfigError(f"{model} stores no golden windows; re-export it with `drsn-edge export onnx`")
        golden = meta.golden.arrays()
        with progress_bar(len(names) * len(batches), "bench cuda", unit="run",
                          disable=args.no_progress) as progress:
            for name in names:
                progress.set_postfix_str(name)
                try:
                    runner = make_runner(name, onnx_path=model, checkpoint=args.checkpoint,
                                         weights_sha256=meta.weights_sha256, device_id=device)
                    result = measure(runner, golden, batches, repeats=args.repeats, min_time_s=args.min_time,
                                     warmup=args.warmup, on_batch=lambda _b: progress.update(1))
                except DrsnEdgeError as exc:
                    result = CudaResult(name, "skipped", str(exc))
                except Exception as exc:  # one broken runner must not hide the others
                    log.exception("runner %s failed", name)
                    result = CudaResult(name, "failed", f"{type(exc).__name__}: {exc}")
                results.append(result)
        doc = report_doc(args, model, meta, batches, results, device)
    from drsn_edge.bench_backends.cuda_report import markdown_table, save

    print(markdown_table(doc))
    for path in save(doc, Path(args.out)):
        print(f"wrote {path}")
    return 0 if any(r.status == "ok" for r in results) else 1


def _gpu(index: int) -> dict[str, Any]:
    import torch

    props = torch.cuda.get_device_properties(index)
    found: dict[str, Any] = {"name": props.name, "compute_capability": f"{props.major}.{props.minor}",
                             "memory_gib": round(props.total_memory / 2**30, 1), "cuda": torch.version.cuda,
                             "cudnn": torch.backends.cudnn.version()}  # type: ignore[no-untyped-call]
    return found


def report_doc(args: argparse.Namespace, model: Path, meta: Any, batches: list[int],
               results: list[CudaResult], device: int) -> dict[str, Any]:
    packages = package_versions(("torch", "onnxruntime", "onnxruntime-gpu", "numpy"))
    command = command_line("drsn-edge bench backends --device cuda (called from Python)")
    return {
        "schema": SCHEMA, "version": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command,
        "model": model_section(model, meta),
        "checkpoint": None if args.checkpoint is None else str(args.checkpoint),
        "settings": {"batch_sizes": batches, "modes": list(MODES), "repeats": args.repeats,
                     "min_time_s": args.min_time, "warmup": args.warmup, "device_id": device},
        "host": {"gpu": _gpu(device), "platform": platform.platform(), "python": platform.python_version(),
                 "packages": packages},
        "backends": [asdict(r) for r in results],
    }

