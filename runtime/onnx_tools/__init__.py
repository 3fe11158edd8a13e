"""ONNX files without torch: read and write the metadata, run on the CPU, convert FP32 -> FP16.

These run on the host after the export and on the device as well: a strongly typed TensorRT
(10.12+, 11) builds an FP16 engine only from an FP16 ONNX, so a device given the FP32 export
converts it itself, and a weakly typed TensorRT keeps the same precision-sensitive nodes in FP32.
Living below both ``export`` and the TensorRT package keeps every import pointing one way.

* :mod:`.metadata_io` - load/save ONNX files, embed the drsn-edge metadata
* :mod:`.ort_run` - ONNX Runtime on the CPU, the reference every gate measures against
* :mod:`.precision_sensitive` - the nodes that must stay FP32 (threshold means, sigmoids, logits)
* :mod:`.fp16` (+ :mod:`.fp16_graph`) - FP32 ONNX -> FP16 ONNX behind an accuracy gate
"""
