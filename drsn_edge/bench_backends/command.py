"""`drsn-edge bench backends`: the same model on every available backend, across batch sizes.

Which backend to deploy, and at which batch size, is a measurement, not a guess: this command
runs one drsn-edge model through ONNX Runtime FP32 and FP16 on the CPU, PyTorch eager (the
reference people know; it needs the checkpoint, since the ONNX file holds no torch weights) and
TensorRT where installed, and reports latency p50/p99, windows per second and peak memory, plus
how far each backend's logits are from the reference logits stored in the model (golden windows).

Method: the input is the model's own golden windows (real, normalised), tiled to the batch size.
Each (backend, batch) is warmed up, then timed in ``--repeats`` repeats of enough calls to last
``--min-time`` seconds; p50/p99 are per-call latencies and windows/s is batch x calls / repeat
time, each the median over repeats. Peak memory is the process's peak resident set size during
load + runs minus the RSS before the backend was loaded (Linux: VmHWM, reset per batch through
/proc/self/clear_refs; elsewhere the lifetime peak, which only ever grows). One intra-op thread by
default, so figures compare backends rather than thread pools.

Heavy packages are imported inside :func:`run`; :func:`add_arguments` is cheap because
``drsn-edge bench`` imports this module to build its parser.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from runtime.errors import ConfigError, DrsnEdgeError

log = logging.getLogger(__name__)

SCHEMA = "drsn-edge/bench-backends"
BACKEND_NAMES = ("pytorch", "onnxruntime-fp32", "onnxruntime-fp16", "tensorrt-fp16")
_MIB = 1024 * 1024
_MAX_CALLS = 2000
_CLEAR_REFS = Path("/proc/self/clear_refs")
_MEMORY_METHOD = "peak RSS (VmHWM, reset per batch size) minus RSS before load"
_MEMORY_FALLBACK = "lifetime peak RSS minus RSS before load"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", type=Path,
                   help="drsn-edge ONNX model (default: the packaged simulator model, or an export of "
                   "--checkpoint when only that is given)")
    p.add_argument("--checkpoint", type=Path,
                   help="the checkpoint the model was exported from: enables the PyTorch eager column")
    p.add_argument("--device", default="cpu", metavar="{cpu,cuda,cuda:N}",
                   help="cpu (default), or cuda: PyTorch eager and CUDA graphs, ONNX Runtime CUDA "
                   "(drsn_edge.bench_cuda; exit status 3 when no CUDA device is usable)")
    p.add_argument("--batch-sizes", help="comma-separated (default 1,8,32,256; with --device cuda "
                   "1,8,32,128,512,2048,8192)")
    p.add_argument("--backends",
                   help=f"comma-separated subset of {', '.join(BACKEND_NAMES)} (default: all; with "
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


# -- what one backend measured -----------------------------------------------------------------

@dataclass
class BatchFigures:
    batch: int
    calls: int
    p50_ms: float
    p99_ms: float
    windows_per_s: float
    peak_rss_delta_mib: float


@dataclass
class BackendResult:
    name: str
    status: str  # ok | skipped | failed
    reason: str = ""
    load_s: float | None = None
    max_abs_diff: float | None = None  # vs the golden (ONNX Runtime FP32) logits
    argmax_agreement: float | None = None
    results: list[BatchFigures] = field(default_factory=list)


class Runner(Protocol):
    """What the timing loop needs; runtime backends satisfy it, PyTorch gets an adapter."""

    def load(self) -> None: ...

    def infer(self, batch: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


class TorchRunner:
    """PyTorch eager on the CPU, rebuilt from the checkpoint (its model name, config and weights)."""

    def __init__(self, checkpoint: Path, threads: int, weights_sha256: str) -> None:
        self.checkpoint, self.threads, self.weights_sha256 = checkpoint, threads, weights_sha256
        self._model: Any = None

    def load(self) -> None:
        import torch

        from drsn_edge.training.checkpoint import load_checkpoint

        torch.set_num_threads(self.threads)
        ckpt = load_checkpoint(self.checkpoint)
        if self.weights_sha256 and ckpt.metadata.weights_sha256 != self.weights_sha256:
            raise ConfigError(
                f"{self.checkpoint} holds other weights than the benchmarked model (sha256 "
                f"{ckpt.metadata.weights_sha256[:12]} vs {self.weights_sha256[:12]}); pass the checkpoint "
                "the ONNX file was exported from, or omit the model to benchmark an export of the checkpoint"
            )
        self._model = ckpt.build_model()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return np.asarray(self._model(torch.from_numpy(batch)).float().numpy())

    def close(self) -> None:
        self._model = None


# -- memory --------------------------------------------------------------------------------------

def _proc_status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_mib() -> float:
    kib = _proc_status_kib("VmRSS")
    return kib / 1024 if kib is not None else _lifetime_peak_mib()


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False where that is not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    kib = _proc_status_kib("VmHWM")
    return kib / 1024 if kib is not None else _lifetime_peak_mib()


def _lifetime_peak_mib() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / _MIB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


# -- timing --------------------------------------------------------------------------------------

def tile_windows(golden: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` real windows: the golden windows repeated as often as needed."""
    reps = math.ceil(batch / len(golden))
    return np.ascontiguousarray(np.concatenate([golden] * reps)[:batch], dtype=np.float32)


def time_batch(runner: Runner, x: np.ndarray, *, repeats: int, min_time_s: float, warmup: int,
               rss_before_load: float) -> BatchFigures:
    """Warm up, size the repeats to ``min_time_s``, time them; medians over repeats."""
    reset_peak_rss()
    for _ in range(max(warmup, 1)):
        runner.infer(x)
    t0 = time.perf_counter()
    runner.infer(x)
    single = max(time.perf_counter() - t0, 1e-6)
    calls = int(min(max(math.ceil(min_time_s / single), 5), _MAX_CALLS))
    p50s, p99s, rates = [], [], []
    for _ in range(repeats):
        lat = np.empty(calls)
        start = time.perf_counter()
        for i in range(calls):
            t = time.perf_counter()
            runner.infer(x)
            lat[i] = time.perf_counter() - t
        wall = time.perf_counter() - start
        p50s.append(float(np.percentile(lat, 50)))
        p99s.append(float(np.percentile(lat, 99)))
        rates.append(len(x) * calls / wall)
    return BatchFigures(batch=len(x), calls=calls, p50_ms=1e3 * float(np.median(p50s)),
                        p99_ms=1e3 * float(np.median(p99s)), windows_per_s=float(np.median(rates)),
                        peak_rss_delta_mib=max(peak_rss_mib() - rss_before_load, 0.0))


def measure(runner: Runner, spec: BenchSpec, golden: tuple[np.ndarray, np.ndarray],
            on_batch: Callable[[int], None]) -> BackendResult:
    """Load one backend, check its logits on the golden windows, time every batch size."""
    result = BackendResult(spec.backend, "ok")
    rss0 = current_rss_mib()
    t0 = time.perf_counter()
    runner.load()  # imports the backend's package; TensorRT also builds its engine here
    result.load_s = time.perf_counter() - t0
    try:
        gx, gy = golden
        got = np.concatenate([runner.infer(gx[i:i + 1]) for i in range(len(gx))])
        result.max_abs_diff = float(np.abs(got - gy).max())
        result.argmax_agreement = float(np.mean(got.argmax(1) == gy.argmax(1)))
        for b in spec.batches:
            on_batch(b)
            result.results.append(time_batch(runner, tile_windows(gx, b), repeats=spec.repeats,
                                             min_time_s=spec.min_time_s, warmup=spec.warmup,
                                             rss_before_load=rss0))
    finally:
        runner.close()
    return result


# -- one backend per process ---------------------------------------------------------------------

@dataclass(frozen=True)
class BenchSpec:
    """What a measuring process needs (picklable: it crosses to a spawned process)."""

    backend: str
    model: str  # the FP32 ONNX file (or the FP16 file for onnxruntime-fp16)
    checkpoint: str | None
    weights_sha256: str
    batches: tuple[int, ...]
    repeats: int
    min_time_s: float
    warmup: int
    threads: int
    workdir: str


def make_runner(spec: BenchSpec) -> Runner:
    """The not yet loaded runner of ``spec.backend``."""
    from runtime.backends import create_backend

    if spec.backend == "pytorch":
        assert spec.checkpoint is not None
        return TorchRunner(Path(spec.checkpoint), spec.threads, spec.weights_sha256)
    if spec.backend.startswith("onnxruntime"):
        return create_backend(spec.model, "onnxruntime", providers=["CPUExecutionProvider"],
                              intra_op_threads=spec.threads, inter_op_threads=1)
    top = max(spec.batches)
    return create_backend(spec.model, "tensorrt", precision="fp16", batch=(1, min(32, top), top),
                          cache_dir=Path(spec.workdir))


def _child(conn: Any, spec: BenchSpec) -> None:
    """Body of the measuring process: report each batch size started, then the result."""
    from runtime.backends import open_model

    logging.basicConfig(level=logging.WARNING)
    try:
        meta = open_model(spec.model)
        assert meta.golden is not None
        runner = make_runner(spec)
        result = measure(runner, spec, meta.golden.arrays(), lambda b: conn.send(("batch", b)))
    except DrsnEdgeError as exc:  # a missing package, a gate, a wrong checkpoint: say why, go on
        result = BackendResult(spec.backend, "skipped", str(exc))
    except Exception as exc:
        log.exception("backend %s failed", spec.backend)
        result = BackendResult(spec.backend, "failed", f"{type(exc).__name__}: {exc}")
    conn.send(("result", result))
    conn.close()


def run_isolated(spec: BenchSpec, progress: Any) -> BackendResult:
    """Measure one backend in a fresh process, so that no backend inherits another's memory,
    thread pools or imported packages (torch's global thread setting, an ONNX Runtime arena)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, spec), name=f"bench-{spec.backend}", daemon=True)
    proc.start()
    child.close()
    result: BackendResult | None = None
    started = 0
    try:
        while result is None:
            try:
                kind, value = parent.recv()
            except EOFError:
                break
            if kind == "batch":
                progress.update(1 if started else 0)
                started += 1
                progress.set_postfix_str(f"{spec.backend} batch {value}")
            else:
                result = value
    finally:
        proc.join(30)
    progress.update(len(spec.batches) - max(started - 1, 0))
    if result is None:
        why = f"the measuring process died (exit code {proc.exitcode})"
        return BackendResult(spec.backend, "failed", why)
    return result


# -- the command ---------------------------------------------------------------------------------

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


def _model_path(args: argparse.Namespace, workdir: Path) -> Path:
    """The model given, else an export of the checkpoint given, else the packaged model."""
    if args.model is not None:
        return Path(args.model)
    if args.checkpoint is not None:
        from drsn_edge.training.checkpoint import build_model
        from export.onnx_export import onnx_from_checkpoint

        return onnx_from_checkpoint(
            args.checkpoint, workdir / f"{Path(args.checkpoint).stem}.onnx", build_model=build_model
        ).path
    from drsn_edge.demo.session import packaged_model

    return packaged_model()


def prepare(name: str, model: Path, meta: Any, args: argparse.Namespace, workdir: Path) -> Path | str:
    """The model file ``name`` runs, or the reason it cannot run here (checked before any process starts)."""
    from runtime.backends import is_installed

    if name == "pytorch":
        if args.checkpoint is None:
            return ("no --checkpoint: the ONNX file holds no PyTorch weights; pass the checkpoint it was "
                    "exported from")
        return model if is_installed("torch") else "torch is not installed; `pip install 'drsn-edge[train]'`"
    if name == "tensorrt-fp16" and not is_installed("tensorrt"):
        return ("tensorrt is not installed (NVIDIA GPUs and Jetson only: `pip install 'drsn-edge[trt]'`, or "
                "JetPack's python3-libnvinfer)")
    if name == "onnxruntime-fp32" and meta.precision != "fp32":
        return f"{model.name} is already FP16; pass the FP32 export for this column"
    if name != "onnxruntime-fp16" or meta.precision == "fp16":
        return model
    from runtime.onnx_tools.fp16 import fp16_from_onnx

    dst = workdir / f"{model.stem}.fp16.onnx"
    try:
        fp16_from_onnx(model, dst)
    except DrsnEdgeError as exc:
        return f"FP16 conversion refused: {exc}"
    return dst


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from runtime.backends import open_model

    if args.device != "cpu":
        from drsn_edge.bench_cuda import run_cuda

        return run_cuda(args)
    batches = _batch_sizes(args.batch_sizes or "1,8,32,256")
    chosen = parse_list(args.backends or ",".join(BACKEND_NAMES), "backends", BACKEND_NAMES)
    if args.repeats < 1 or args.threads < 1 or args.min_time <= 0 or args.warmup < 0:
        raise ConfigError("--repeats and --threads must be at least 1, --min-time positive, --warmup >= 0")
    results: list[BackendResult] = []
    with tempfile.TemporaryDirectory(prefix="drsn-edge-bench-") as tmp:
        workdir = Path(tmp)
        model = _model_path(args, workdir)
        meta = open_model(model)
        if meta.golden is None:
            raise ConfigError(f"{model} stores no golden windows; re-export it with `drsn-edge export onnx`")
        with tqdm(total=len(chosen) * len(batches), desc="bench backends", unit="run", file=sys.stderr,
                  disable=args.no_progress) as progress:
            for name in chosen:
                target = prepare(name, model, meta, args, workdir)
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


# -- reports -------------------------------------------------------------------------------------

def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for pkg in ("onnxruntime", "torch", "tensorrt", "numpy"):
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return found


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report_doc(args: argparse.Namespace, model: Path, meta: Any, batches: list[int],
               results: list[BackendResult]) -> dict[str, Any]:
    import os

    argv = sys.argv[1:]
    command = shlex.join(["drsn-edge", *argv]) if argv[:2] == ["bench", "backends"] else \
        "drsn-edge bench backends (called from Python)"
    return {
        "schema": SCHEMA, "version": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command,
        "model": {"path": str(model), "name": meta.model.name, "version": meta.model.version,
                  "weights_sha256": meta.weights_sha256, "parameters": meta.model.num_parameters,
                  "input": meta.input.shape, "classes": meta.classes},
        "checkpoint": None if args.checkpoint is None else str(args.checkpoint),
        "settings": {"batch_sizes": batches, "repeats": args.repeats, "min_time_s": args.min_time,
                     "warmup": args.warmup, "threads": args.threads,
                     "memory": _MEMORY_METHOD if _CLEAR_REFS.exists() else _MEMORY_FALLBACK},
        "host": {"cpu": _cpu_name(), "cpus": os.cpu_count(), "platform": platform.platform(),
                 "python": platform.python_version(), "packages": _versions()},
        "backends": [asdict(r) for r in results],
    }


def markdown_table(doc: dict[str, Any]) -> str:
    """The figures as a Markdown table, then the numerics and the skipped backends with reasons."""
    lines = ["| backend | batch | p50 ms | p99 ms | windows/s | peak RSS delta MiB |",
             "|---|---:|---:|---:|---:|---:|"]
    for b in doc["backends"]:
        for r in b["results"]:
            lines.append(f"| {b['name']} | {r['batch']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
                         f"{r['windows_per_s']:,.0f} | {r['peak_rss_delta_mib']:.1f} |")
    lines += ["", "| backend | load s | max abs logit diff vs golden | argmax agreement |",
              "|---|---:|---:|---:|"]
    for b in doc["backends"]:
        if b["status"] == "ok":
            lines.append(f"| {b['name']} | {b['load_s']:.2f} | {b['max_abs_diff']:.2e} | "
                         f"{100 * b['argmax_agreement']:.1f}% |")
    skipped = [b for b in doc["backends"] if b["status"] != "ok"]
    if skipped:
        lines += ["", *[f"- {b['name']} {b['status']}: {b['reason']}" for b in skipped]]
    return "\n".join(lines)


def _markdown(doc: dict[str, Any]) -> str:
    m, s, h = doc["model"], doc["settings"], doc["host"]
    pkgs = ", ".join(f"{k} {v}" for k, v in h["packages"].items())
    return "\n".join([
        f"# Backends: {m['name']} version {m['version']}", "",
        f"`{doc['command']}`", "",
        f"Model {Path(m['path']).name} ({m['parameters']:,} parameters, input {m['input']}); "
        f"{s['threads']} intra-op thread(s), {s['repeats']} repeats of >= {s['min_time_s']} s, medians over "
        f"repeats. Memory: {s['memory']}.", "",
        f"Host: {h['cpu']} ({h['cpus']} CPUs), {h['platform']}, Python {h['python']}, {pkgs}. "
        f"Created {doc['created']}.", "",
        markdown_table(doc), ""])


def plot(doc: dict[str, Any], path: Path) -> Path | None:
    """Throughput and p50 latency against batch size, one line per backend; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullLocator
    except ImportError:
        print("no PNG: matplotlib is not installed (`pip install matplotlib`)", file=sys.stderr)
        return None
    fig, (ax_rate, ax_lat) = plt.subplots(1, 2, figsize=(11, 4.2))
    for b in doc["backends"]:
        if not b["results"]:
            continue
        xs = [r["batch"] for r in b["results"]]
        ax_rate.plot(xs, [r["windows_per_s"] for r in b["results"]], marker="o", label=b["name"])
        ax_lat.plot(xs, [r["p50_ms"] for r in b["results"]], marker="o", label=b["name"])
    batches = doc["settings"]["batch_sizes"]
    for ax, title in ((ax_rate, "throughput (windows/s)"), (ax_lat, "latency p50 per call (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("batch size")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    ax_rate.legend()
    m, s = doc["model"], doc["settings"]
    fig.suptitle(f"{m['name']} version {m['version']}: backends on {doc['host']['cpu']}, "
                 f"{s['threads']} thread(s)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def save(doc: dict[str, Any], out: Path) -> list[Path]:
    """Write backends.json, backends.md and (with matplotlib) backends.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "backends.json", out / "backends.md"]
    paths[0].write_text(json.dumps(doc, indent=2) + "\n")
    paths[1].write_text(_markdown(doc))
    png = plot(doc, out / "backends.png")
    return paths + ([png] if png is not None else [])
