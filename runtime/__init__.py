"""drsn-edge device runtime: everything a Jetson or edge box needs to classify vibration windows.

This package never imports torch (a test enforces it), so a device installs it without the
training stack. It depends on numpy/scipy, pydantic, paho-mqtt and, per backend, onnxruntime
or TensorRT.
"""

__all__: list[str] = []
