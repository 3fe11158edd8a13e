"""Host conversion: a trained checkpoint becomes a self-describing ONNX file.

* :func:`export.onnx_export.onnx_from_checkpoint` - checkpoint -> ONNX, gated against PyTorch
  (the only step that imports torch)
* :mod:`export.checkpoint_format` - the checkpoint file format, read here without training code

What the device may also need lives below, in ``runtime``: FP16 conversion, ONNX metadata I/O and
the CPU reference in :mod:`runtime.onnx_tools`; the TensorRT engine build, cache and gate in
:mod:`runtime.backends.tensorrt`; the parity comparator in :mod:`runtime.parity`.

Nothing is imported here, so ``import export`` stays cheap and torch-free.
"""
