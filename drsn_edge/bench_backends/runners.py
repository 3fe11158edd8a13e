"""Turn a benchmark column into a runner: a runtime backend from the registry, or PyTorch eager.

Also decides, before any measuring process starts, which model file a column runs (the FP16
conversion for an ONNX-level FP16 column) or why it cannot run here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.bench_backends.columns import COLUMNS, Column
from drsn_edge.bench_backends.measurement import BenchSpec, Runner
from runtime.backends.registry import ROWS
from runtime.errors import ConfigError, DrsnEdgeError


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


def make_runner(spec: BenchSpec) -> Runner:
    """The not yet loaded runner of ``spec.backend`` (a column name)."""
    from runtime.backends import create_backend

    column = COLUMNS[spec.backend]
    if column.backend is None:
        assert spec.checkpoint is not None
        return TorchRunner(Path(spec.checkpoint), spec.threads, spec.weights_sha256)
    return create_backend(spec.model, column.backend, **column.profile.options(spec, column.precision))


def prepare(column: Column, model: Path, meta: Any, checkpoint: Path | None, workdir: Path) -> Path | str:
    """The model file ``column`` runs, or why it cannot run here (checked before any process starts)."""
    from runtime.backends import is_installed

    if column.backend is None:
        if checkpoint is None:
            return ("no --checkpoint: the ONNX file holds no PyTorch weights; pass the checkpoint it was "
                    "exported from")
        return model if is_installed("torch") else "torch is not installed; `pip install 'drsn-edge[train]'`"
    row = ROWS[column.backend]
    if not is_installed(row.package):
        return f"{row.package} is not installed: `pip install 'drsn-edge[{row.extra}]'`{row.install_hint}"
    if column.precision == "fp32" and meta.precision != "fp32":
        return f"{model.name} is already FP16; pass the FP32 export for this column"
    if column.precision != "fp16" or meta.precision == "fp16" or column.profile.builds_fp16:
        return model
    from runtime.onnx_tools.fp16 import fp16_from_onnx

    dst = workdir / f"{model.stem}.fp16.onnx"
    try:
        fp16_from_onnx(model, dst)
    except DrsnEdgeError as exc:
        return f"FP16 conversion refused: {exc}"
    return dst
