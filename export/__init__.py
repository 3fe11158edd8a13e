"""Turning a trained checkpoint into what a device runs: ONNX, FP16 ONNX and TensorRT engines.

Only :mod:`export.onnx_export` imports torch; FP16 conversion and engine building run without it.
"""
