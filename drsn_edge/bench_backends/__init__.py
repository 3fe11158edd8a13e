"""`drsn-edge bench backends`: the same model on every available backend, across batch sizes.

Which backend to deploy, and at which batch size, is a measurement, not a guess: this command
runs one drsn-edge model through ONNX Runtime FP32 and FP16 on the CPU, PyTorch eager (the
reference people know; it needs the checkpoint, since the ONNX file holds no torch weights) and
TensorRT where installed, and reports latency p50/p99, windows per second and peak memory, plus
how far each backend's logits are from the reference logits stored in the model (golden windows).

Method: the input is the model's own golden windows (real, normalised), tiled to the batch size.
Each (backend, batch) is warmed up, then timed in ``--repeats`` repeats of enough calls to last
``--min-time`` seconds; p50/p99 are per-call latencies and windows/s is batch x calls / repeat
time, each the median over repeats. Peak memory is the process's peak resident set size during
load + runs minus the RSS before the backend was loaded (Linux: VmHWM, reset per batch through
/proc/self/clear_refs; elsewhere the lifetime peak, which only ever grows). One intra-op thread by
default, so figures compare backends rather than thread pools.

The package: :mod:`.columns` (what is measured, one column per registered backend and
precision, plus PyTorch eager), :mod:`.runners` (turning a column into a loaded runner),
:mod:`.measurement` (timing and memory), :mod:`.isolation` (one process per column),
:mod:`.report` (JSON, Markdown, PNG) and :mod:`.command` (arguments and the run); with
``--device cuda``, :mod:`.cuda` (with :mod:`.cuda_runners` and :mod:`.cuda_report`) measures
PyTorch eager and CUDA graphs and ONNX Runtime CUDA on a GPU instead. Heavy packages
are imported inside :func:`run`; :func:`add_arguments` is cheap because ``drsn-edge bench``
imports it to build its parser.
"""

from drsn_edge.bench_backends.command import add_arguments, run

__all__ = ["add_arguments", "run"]
