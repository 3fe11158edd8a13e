"""Measure each column in a fresh process, so that no backend inherits another's memory, thread
pools or imported packages (torch's global thread setting, an ONNX Runtime arena)."""

from __future__ import annotations

import logging
from typing import Any

from drsn_edge.bench_backends.measurement import BackendResult, BenchSpec, measure
from drsn_edge.bench_backends.runners import make_runner
from runtime.errors import DrsnEdgeError

log = logging.getLogger(__name__)


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
    """Measure one column in a fresh process; a process that dies is a failed column, not a crash."""
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
