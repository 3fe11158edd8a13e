"""Turning a trained checkpoint into what a device runs: ONNX, FP16 ONNX and TensorRT engines.

Only :mod:`export.onnx_export` imports torch; FP16 conversion and engine building run without it.

* :func:`export.onnx_export.onnx_from_checkpoint` - checkpoint -> ONNX, gated against PyTorch
* :func:`export.fp16.fp16_from_onnx` - FP32 ONNX -> FP16 ONNX, gated against FP32
* :func:`export.engine_builder.engine_from_onnx` - ONNX -> TensorRT engine file (on the device)
* :func:`export.engine_cache.ensure_engine` - the same, built only when the cached one is stale
* :mod:`export.trt_compat` - the one place that knows TensorRT versions differ

Nothing is imported here, so ``import export`` stays cheap and torch-free.
"""
