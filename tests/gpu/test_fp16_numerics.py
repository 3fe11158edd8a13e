"""FP16, FP16 autocast and BF16 on CUDA against FP32 on the CPU, for every registered 1-D model.

The question a deployment asks before trusting a half-precision GPU path: does the network still
pick the same class, and how far do its logits move? Each registered 1-D network (untrained, with
randomised BatchNorm statistics and logits scaled to peak near 10, as in the export tests) runs on
real CWRU drive-end windows when ``../shared/data/cwru`` is there, else on simulator windows; so do
the trained models the package ships (their checkpoints), where argmax agreement means most. The
assertion is the engine gate's rule at the FP16 engine tolerance (BF16, with 3 fewer mantissa bits,
gets twice that); the figures go to ``$DRSN_EDGE_GPU_OUT`` as a table and a PNG.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drsn_edge.models import create_model, list_models, model_info
from runtime.backends.tensorrt import ENGINE_TOLERANCES
from runtime.parity import compare_logits
from tests.conftest import SHARED_DATA
from tests.gpu.numerics_report import NumericsRow, save
from tests.support.model_files import _randomise_batchnorm, _scale_logits, bearing_windows

MODELS = [n for n in list_models() if model_info(n)["dims"] == 1]
PRECISIONS = ("fp16", "autocast", "bf16")
#: (atol, rtol) per precision: the FP16 engine tolerance; BF16 keeps 8 mantissa bits, not 11
TOLERANCES = {"fp16": ENGINE_TOLERANCES["fp16"], "autocast": ENGINE_TOLERANCES["fp16"], "bf16": (0.1, 0.1)}
WINDOWS_PER_CLASS = 24
SEED = 0
#: the trained models the package ships (checkpoint beside each ONNX file)
PACKAGED = sorted((Path(__file__).resolve().parents[2] / "drsn_edge" / "assets").glob("*.pt"))


def _cwru_windows(root: Path) -> np.ndarray:
    """``WINDOWS_PER_CLASS`` z-scored 2048-sample windows from each 0 HP drive-end recording."""
    from drsn_edge.data.cwru import load_cwru
    from drsn_edge.data.windows import make_windows
    from runtime.artifact import Normalization
    from runtime.signals.normalize import normalize_windows

    picked = []
    for rec in load_cwru(root, select={"load_hp": 0}):
        windows, _ = make_windows(rec.signal, 2048, 2048)
        idx = np.linspace(0, len(windows) - 1, WINDOWS_PER_CLASS).astype(int)
        picked.append(windows[idx])
    return normalize_windows(np.concatenate(picked), Normalization(kind="zscore"))


@pytest.fixture(scope="module")
def windows() -> tuple[np.ndarray, str]:
    cwru = SHARED_DATA / "cwru"
    if (cwru / "MANIFEST.csv").is_file():
        x = _cwru_windows(cwru)
        return x, f"{len(x)} real CWRU windows (0 HP drive end, 12 kHz, 2048 samples, z-scored)"
    x, _ = bearing_windows((1, 2048), 10 * WINDOWS_PER_CLASS, seed=SEED)
    return x, f"{len(x)} simulator windows (real CWRU data not found at {cwru})"


@pytest.fixture(scope="module")
def rows(cuda_device: Any, gpu_out: Path | None) -> Iterator[list[NumericsRow]]:
    collected: list[NumericsRow] = []
    yield collected
    if gpu_out is not None and collected:
        import torch

        save(collected, gpu_out, torch.cuda.get_device_name(cuda_device))


def _run(model: Any, x: np.ndarray, precision: str, device: Any) -> np.ndarray:
    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
    net = model.to(device=device, dtype=dtype).eval()
    out = []
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=precision == "autocast"):
        for i in range(0, len(x), 64):
            out.append(net(torch.from_numpy(x[i : i + 64]).to(device=device, dtype=dtype)).float().cpu())
    return torch.cat(out).numpy()


def _compare(name: str, weights: str, model: Any, x: np.ndarray, source: str, device: Any,
             rows: list[NumericsRow]) -> None:
    """Every reduced precision of ``model`` on CUDA against FP32 on the CPU; one row each, then assert."""
    import copy

    import torch

    with torch.inference_mode():
        reference = model(torch.from_numpy(x)).float().numpy()
    failures = []
    for precision in PRECISIONS:
        got = _run(copy.deepcopy(model), x, precision, device)
        atol, rtol = TOLERANCES[precision]
        report = compare_logits(reference, got, atol=atol, rtol=rtol, reference_name="fp32 cpu",
                                candidate_name=f"{precision} cuda")
        passed = report.passed(exact_argmax=False) and bool(np.isfinite(got).all())
        rows.append(NumericsRow(name, precision, len(x), source, weights, report.argmax_agreement,
                                report.decisive_agreement, report.max_abs_diff,
                                float(np.abs(reference).max()), report.tolerance, passed))
        if not passed:
            failures.append(report.summary())
    assert not failures, f"{name}: " + "; ".join(failures)


@pytest.mark.parametrize("name", MODELS)
def test_reduced_precision_on_cuda_keeps_the_argmax_of_fp32_on_the_cpu(
    name: str, windows: tuple[np.ndarray, str], rows: list[NumericsRow], cuda_device: Any
) -> None:
    import torch

    x, source = windows
    torch.manual_seed(SEED)
    model = create_model(name, num_classes=10).eval()
    _randomise_batchnorm(model, SEED)
    _scale_logits(model, x[:64])
    _compare(name, f"untrained, seed {SEED}", model, x, source, cuda_device, rows)


@pytest.mark.parametrize("checkpoint", PACKAGED, ids=[p.stem for p in PACKAGED])
def test_packaged_trained_models_keep_their_argmax_in_reduced_precision(
    checkpoint: Path, windows: tuple[np.ndarray, str], rows: list[NumericsRow], cuda_device: Any
) -> None:
    from drsn_edge.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model()
    x, source = windows
    if tuple(model.input_shape) != x.shape[1:]:
        pytest.skip(f"{checkpoint.name} takes {tuple(model.input_shape)} windows, not {x.shape[1:]}")
    _compare(f"{checkpoint.stem} ({ckpt.model_name})", f"trained: {checkpoint.name}", model, x, source,
             cuda_device, rows)
