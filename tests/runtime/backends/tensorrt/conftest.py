"""Model files, the fake TensorRT and the fake CUDA layers, shared with the other model-file test
folders (defined in tests/support/model_files.py)."""

from tests.support.model_files import (  # noqa: F401 - fixtures are found by name
    _one_torch_thread,
    exports,
    fake_gpu,
    make_fake_trt,
    model_onnx,
)
