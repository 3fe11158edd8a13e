"""Checkpoints and ONNX files for the export, ONNX-tool and TensorRT tests, built from the registry
on generated data, plus the fixtures those test folders share (their conftest files import them).

Models are untrained, but their BatchNorm statistics and biases are randomised so that folding
and FP16 conversion act on non-trivial numbers (a fresh BatchNorm is the identity, which would
hide a wrong fold).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from drsn_edge.models import create_model, model_info
from drsn_edge.training.checkpoint import Checkpoint, save_checkpoint
from runtime.artifact import ModelInfo, ModelMetadata, Normalization, SignalSpec, TensorSpec
from runtime.signals.normalize import normalize_windows
from tests.fakes.fake_cuda import FakeGpu, install_fake_cuda_python
from tests.fakes.fake_tensorrt import FakeTensorRT, install_fake_tensorrt

CLASSES = ["normal", "inner_race", "outer_race", "ball"]
SAMPLE_RATE = 12000.0


def bearing_windows(shape: tuple[int, ...], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Normalised windows from the bearing simulator, cycling through the conditions; (x, labels)."""
    from runtime.signals.simulator import BearingSimulator

    channels, length = shape
    x = np.empty((n, channels, length), dtype=np.float32)
    labels = np.arange(n) % len(CLASSES)
    for i, label in enumerate(labels):
        for c in range(channels):
            sim = BearingSimulator(CLASSES[label], sample_rate=SAMPLE_RATE, seed=seed * 1000 + i * 10 + c)
            x[i, c] = sim.generate(length)
    return normalize_windows(x, Normalization(kind="zscore")), labels


def image_windows(shape: tuple[int, ...], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Structured images: a class-dependent bright blob on noise, standardised; (x, labels)."""
    rng = np.random.default_rng(seed)
    channels, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    labels = np.arange(n) % len(CLASSES)
    x = rng.normal(0, 0.3, size=(n, channels, h, w))
    for i, label in enumerate(labels):
        cy, cx = (h * (1 + label)) // 5, (w * (4 - label)) // 5
        x[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (0.02 * h * w))
    return ((x - x.mean()) / x.std()).astype(np.float32), labels


def windows_for(shape: tuple[int, ...], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return bearing_windows(shape, n, seed) if len(shape) == 2 else image_windows(shape, n, seed)


def _randomise_batchnorm(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.weight.copy_(0.8 + 0.4 * torch.rand(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))


def _scale_logits(model: torch.nn.Module, x: np.ndarray, target: float = 10.0) -> None:
    """Scale the last Linear layer so logits peak near ``target``, as a trained classifier's do.

    Untrained deep networks with randomised BatchNorm reach logits of 100+, where float32
    rounding alone exceeds the export gate's absolute 1e-4.
    """
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        peak = float(model(torch.from_numpy(x)).abs().max())
        last.weight.mul_(target / peak)
        last.bias.mul_(target / peak)


#: shorter windows than the 2048-sample default keep the suite fast; WDCNN's length is fixed
SHORT_INPUT = 1024


def make_checkpoint(path: Path, name: str, *, n_golden: int = 16, seed: int = 0) -> Checkpoint:
    """Write a checkpoint of registered model ``name`` with generated golden windows."""
    kwargs: dict[str, int] = {"num_classes": len(CLASSES)}
    if "input_length" in model_info(name)["options"] and name != "wdcnn":
        kwargs["input_length"] = SHORT_INPUT
    torch.manual_seed(seed)
    model = create_model(name, **kwargs).eval()
    _randomise_batchnorm(model, seed)
    shape = tuple(model.input_shape)
    x, y = windows_for(shape, n_golden, seed)
    _scale_logits(model, x)
    one_d = len(shape) == 2
    meta = ModelMetadata(
        model=ModelInfo(name=name, version="test"),
        classes=CLASSES,
        healthy_class="normal",
        signal=SignalSpec(sample_rate=SAMPLE_RATE, window=shape[-1], hop=shape[-1] // 4, channels=shape[0])
        if one_d
        else None,
        input=TensorSpec(layout="NCW" if one_d else "NCHW", shape=[-1, *shape]),
        normalization=Normalization(kind="zscore" if one_d else "none"),
    )
    ckpt = Checkpoint(name, kwargs, model.state_dict(), meta, x, y)
    save_checkpoint(path, ckpt)
    return ckpt


class ExportCache:
    """Exports each model once per session; tests share the files read-only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def checkpoint(self, name: str) -> Path:
        path = self.root / f"{name}.ckpt"
        if not path.exists():
            make_checkpoint(path, name)
        return path

    def onnx(self, name: str) -> Path:
        out = self.root / f"{name}.onnx"
        if not out.exists():
            from drsn_edge.training.checkpoint import build_model
            from export.onnx_export import onnx_from_checkpoint

            onnx_from_checkpoint(self.checkpoint(name), out, build_model=build_model)
        return out


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on a shared 2-core runner torch's thread pool is several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> ExportCache:
    """One folder per session: the test folders that import this fixture share the files."""
    return ExportCache(tmp_path_factory.getbasetemp() / "exports")


# --------------------------------------------------------------------------- fake TensorRT + CUDA

TRT_VERSIONS = ("10.3.0.30", "10.13.0.35", "11.0.0.114")


@pytest.fixture
def fake_gpu() -> FakeGpu:
    return FakeGpu()


@pytest.fixture
def make_fake_trt(monkeypatch: pytest.MonkeyPatch, fake_gpu: FakeGpu) -> Callable[[str], FakeTensorRT]:
    """Install the fake CUDA (cuda-python face) and a fake tensorrt of the given version."""

    def install(version: str) -> FakeTensorRT:
        install_fake_cuda_python(monkeypatch, fake_gpu)
        return install_fake_tensorrt(monkeypatch, version, fake_gpu)

    return install


@pytest.fixture
def model_onnx(exports: ExportCache, tmp_path: Path) -> Path:
    """A private copy of a small exported DRSN (engines and caches are written beside it)."""
    dst = tmp_path / "model.onnx"
    shutil.copyfile(exports.onnx("drsn_cs_mnist"), dst)
    return dst
