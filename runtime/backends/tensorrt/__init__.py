"""TensorRT on the device: run an engine file, or build (once), gate and cache one from an ONNX file.

Engines are built where they run, because a plan only runs on the TensorRT version and GPU it was
built with, so the whole build lives here on the device side:

* :mod:`.backend` - :class:`TensorRTBackend`, the tensor-API runner (and its golden check at load)
* :mod:`.config` - :class:`TensorRTConfig`, importable without TensorRT
* :mod:`.build` - ONNX -> engine file with the drsn-edge header
* :mod:`.cache` - build only when the cached engine's key (ONNX hash, TensorRT, GPU, precision,
  profile) differs
* :mod:`.gate` - the post-build check against ONNX Runtime on the golden windows
* :mod:`.source` - which ONNX file (FP32 or FP16 twin) a build recipe parses
* :mod:`.compat` - the one place that knows TensorRT versions differ
* :mod:`.precision` - FP32 constraints on sensitive layers for weakly typed FP16 builds
* :mod:`.trt` - the lazily imported ``tensorrt`` module, its logger, the engine tolerances
"""

from __future__ import annotations

from runtime.backends.tensorrt.backend import TensorRTBackend
from runtime.backends.tensorrt.config import TensorRTConfig
from runtime.backends.tensorrt.trt import ENGINE_TOLERANCES

__all__ = ["ENGINE_TOLERANCES", "TensorRTBackend", "TensorRTConfig"]
