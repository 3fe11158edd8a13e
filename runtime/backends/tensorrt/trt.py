"""What every part of the TensorRT package shares: the lazily imported module, its logger, and the
engine tolerances of the golden and post-build gates.

``tensorrt`` is imported only inside :func:`import_tensorrt`, so the package imports (and its
config validates) on machines without a GPU.
"""

from __future__ import annotations

import weakref
from typing import Any

from runtime.backends.golden import FP32_TOLERANCE
from runtime.errors import BackendUnavailableError

#: (atol, rtol) for engine logits against FP32 reference logits, per engine precision
#: (FP32 is the load-time golden gate's own tolerance; FP16 kernels get five times its room)
ENGINE_TOLERANCES: dict[str, tuple[float, float]] = {"fp32": FP32_TOLERANCE, "fp16": (5e-2, 5e-2)}

_LOGGERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or :class:`BackendUnavailableError` naming how to install it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailableError(
            "the tensorrt backend needs TensorRT's Python package; install it with "
            "`pip install 'drsn-edge[trt]'` (on Jetson, TensorRT comes with JetPack: `apt install "
            "python3-libnvinfer`), or use the onnxruntime backend"
        ) from exc
    return tensorrt


def trt_logger(trt: Any) -> Any:
    """One ``trt.Logger`` per TensorRT module: TensorRT wants a single logger for its lifetime."""
    if trt not in _LOGGERS:
        _LOGGERS[trt] = trt.Logger(trt.Logger.WARNING)
    return _LOGGERS[trt]
