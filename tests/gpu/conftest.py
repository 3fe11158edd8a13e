"""GPU tests: they run where PyTorch sees a CUDA device and skip elsewhere, saying why.

``scripts/gpu-check.sh`` runs this folder on a GPU machine and collects what the tests write to
``$DRSN_EDGE_GPU_OUT`` (the FP16 numerics table). The TensorRT-path tests also need cuda-python
or pycuda, the bindings the backend allocates its buffers with; each library is a parameter and
is skipped alone when it is not installed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def cuda_skip_reason() -> str | None:
    """Why CUDA cannot be used from PyTorch here, or None when it can."""
    try:
        import torch
    except ImportError:
        return "torch is not installed (`pip install 'drsn-edge[train]'` with a CUDA build of PyTorch)"
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        return (
            f"CUDA is not available to PyTorch {torch.__version__} ({build}); these tests need an "
            "NVIDIA GPU, its driver and a CUDA build of PyTorch"
        )
    return None


def cuda_library_installed(library: str) -> bool:
    """Whether the CUDA bindings ``library`` (cuda-python or pycuda) import here."""
    if library == "pycuda":
        return importlib.util.find_spec("pycuda") is not None
    for name in ("cuda.bindings", "cuda.cudart"):
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except ModuleNotFoundError:
            continue
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = cuda_skip_reason()
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def cuda_device() -> Any:
    """The first CUDA device, with TF32 off so that FP32 means FP32 in every comparison."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch.device("cuda", 0)


@pytest.fixture(params=["cuda-python", "pycuda"])
def cuda_library(request: pytest.FixtureRequest) -> str:
    """Each CUDA binding the TensorRT backend supports, skipped alone when it is not installed."""
    library = str(request.param)
    if not cuda_library_installed(library):
        install = "pip install cuda-python" if library == "cuda-python" else "pip install pycuda"
        pytest.skip(f"{library} is not installed (`{install}`); the backend's other CUDA binding is tested")
    return library


@pytest.fixture(scope="session")
def gpu_out() -> Iterator[Path | None]:
    """Where the tests leave their figures for scripts/gpu-check.sh ($DRSN_EDGE_GPU_OUT), if set."""
    out = os.environ.get("DRSN_EDGE_GPU_OUT")
    if not out:
        yield None
        return
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    yield path
