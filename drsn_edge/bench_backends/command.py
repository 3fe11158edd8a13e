"""`drsn-edge bench backends`: the arguments and the run; the work lives in the package's modules."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from drsn_edge.bench_backends.columns import COLUMNS
from runtime.errors import ConfigError

COLUMN_NAMES = tuple(COLUMNS)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", type=Path,
                   help="drsn-edge ONNX model (default: the packaged simulator model, or an export of "
                   "--checkpoint when only that is given)")
    p.add_argument("--checkpoint", type=Path,
                   help="the checkpoint the model was exported from: enables the PyTorch eager column")
    p.add_argument("--device", default="cpu", metavar="{cpu,cuda,cuda:N}",
                   help="cpu (default), or cuda: PyTorch eager and CUDA graphs, ONNX Runtime CUDA "
                   "(drsn_edge.bench_backends.cuda; exit status 3 when no CUDA device is usable)")
    p.add_argument("--batch-sizes", help="comma-separated (default 1,8,32,256; with --device cuda "
                   "1,8,32,128,512,2048,8192)")
    p.add_argument("--backends",
                   help=f"comma-separated subset of {', '.join(COLUMN_NAMES)} (default: all; with "
                   "--device cuda of torch-fp32-eager, torch-fp16-eager, torch-fp32-graph, torch-fp16-graph, "
                   "onnxruntime-cuda)")
    p.add_argument("--repeats", type=int, default=5,
                   help="timed repeats; figures are their median (default 5)")
    p.add_argument("--min-time", type=float, default=0.5,
                   help="seconds each repeat lasts at least (default 0.5)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls before each batch size (default 3)")
    p.add_argument("--threads", type=int, default=1,
                   help="intra-op threads for every backend (default 1, for comparability)")
    p.add_argument("--out", type=Path, default=Path("bench-results/backends"),
                   help="folder for backends.json, backends.md and backends.png")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_list(text: str, what: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ConfigError(f"--{what} is empty; give a comma-separated list")
    if allowed is not None and (bad := [i for i in items if i not in allowed]):
        raise ConfigError(f"--{what}: unknown {bad}; choose from {', '.join(allowed)}")
    return items


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(t) for t in parse_list(text, "batch-sizes")]
    except ValueError:
        raise ConfigError(f"--batch-sizes {text!r} must be comma-separated integers, e.g. 1,8,32") from None
    if any(b < 1 for b in sizes):
        raise ConfigError(f"--batch-sizes {text!r}: every batch size must be at least 1")
    return sorted(set(sizes))


def model_path(args: argparse.Namespace, workdir: Path) -> Path:
    """The model given, else an export of the checkpoint given, else the packaged model."""
    if args.model is not None:
        return Path(args.model)
    if args.checkpoint is not None:
        from drsn_edge.training.checkpoint import build_model
        from export.onnx_export import onnx_from_checkpoint

        return onnx_from_checkpoint(
            args.checkpoint, workdir / f"{Path(args.checkpoint).stem}.onnx", build_model=build_model
        ).path
    from drsn_edge.assets import packaged_model

    return packaged_model()


def run(args: argparse.Namespace) -> int:
    from drsn_edge.bench_backends.isolation import run_isolated
    from drsn_edge.bench_backends.measurement import BackendResult, BenchSpec
    from drsn_edge.bench_backends.report import markdown_table, report_doc, save
    from drsn_edge.bench_backends.runners import prepare
    from runtime.backends import open_model
    from runtime.progress import progress_bar

    if args.device != "cpu":
        from drsn_edge.bench_backends.cuda import run_cuda

        return run_cuda(args)
    batches = _batch_sizes(args.batch_sizes or "1,8,32,256")
    chosen = parse_list(args.backends or ",".join(COLUMN_NAMES), "backends", COLUMN_NAMES)
    if args.repeats < 1 or args.threads < 1 or args.min_time <= 0 or args.warmup < 0:
        raise ConfigError("--repeats and --threads must be at least 1, --min-time positive, --warmup >= 0")
    results: list[BackendResult] = []
    with tempfile.TemporaryDirectory(prefix="drsn-edge-bench-") as tmp:
        workdir = Path(tmp)
        model = model_path(args, workdir)
        meta = open_model(model)
        if meta.golden is None:
            raise ConfigError(f"{model} stores no golden windows; re-export it with `drsn-edge export onnx`")
        with progress_bar(len(chosen) * len(batches), "bench backends", disable=args.no_progress) as progress:
            for name in chosen:
                target = prepare(COLUMNS[name], model, meta, args.checkpoint, workdir)
                if isinstance(target, str):
                    results.append(BackendResult(name, "skipped", target))
                    progress.update(len(batches))
                    continue
                ckpt = None if args.checkpoint is None else str(args.checkpoint)
                spec = BenchSpec(name, str(target), ckpt, meta.weights_sha256, tuple(batches), args.repeats,
                                 args.min_time, args.warmup, args.threads, tmp)
                results.append(run_isolated(spec, progress))
        doc = report_doc(args, model, meta, batches, results)
    print(markdown_table(doc))
    for path in save(doc, Path(args.out)):
        print(f"wrote {path}")
    return 0 if any(r.status == "ok" for r in results) else 1
