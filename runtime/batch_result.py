"""What one backend call gives the result path: a batch's windows, logits and probabilities.

The windows' fields come as arrays (the batcher moves :class:`~runtime.window_block.WindowBlock`
blocks, not one object per window); :class:`~runtime.window_block.Window` objects are built only
for the consumers that ask for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from runtime.window_block import Window, WindowBlock


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32, shifted by the row max so large logits cannot overflow."""
    z = np.asarray(logits, dtype=np.float32)
    # the ufuncs' own reductions (the array methods add a Python layer each) and one buffer: the
    # same numbers as z.max / e.sum / e / s, at a fraction of a small batch's per-call overhead
    e: np.ndarray = np.exp(z - np.maximum.reduce(z, axis=-1, keepdims=True))
    e /= np.add.reduce(e, axis=-1, keepdims=True)
    return e


@dataclass(frozen=True, slots=True)
class InferenceResult:
    """The classification of one window."""

    window: Window
    logits: np.ndarray
    probs: np.ndarray
    batch_size: int
    infer_s: float
    latency_s: float

    @property
    def sensor_id(self) -> str:
        return self.window.sensor_id


class BatchResult:
    """One backend call: its windows and their logits/probabilities, row-aligned.

    ``infer_s`` is the backend call alone; ``t_done`` (monotonic) minus a window's ``t_mono`` is
    that window's latency from receipt to classification. The windows' fields come as arrays
    (:attr:`sensor_ids`, :attr:`index`, :attr:`t_mono`, :attr:`t_wall`: the batcher moves blocks,
    not objects); :attr:`windows` builds one :class:`Window` per row on first use, for the
    consumers that want objects.
    """

    __slots__ = ("_windows", "block", "features", "infer_s", "inputs", "logits", "probs", "t_done")

    def __init__(self, windows: Sequence[Window] | None, logits: np.ndarray, probs: np.ndarray,
                 infer_s: float, t_done: float, features: np.ndarray | None = None,
                 inputs: np.ndarray | None = None, *, block: WindowBlock | None = None) -> None:
        if block is None:
            if windows is None:
                raise ValueError("a BatchResult needs its windows or their block")
            block = WindowBlock.of_windows(windows, mixed=True)
        self.block = block
        self._windows = None if windows is None else list(windows)
        self.logits, self.probs, self.infer_s, self.t_done = logits, probs, infer_s, t_done
        #: float32 (N, F) pooled features from the same backend call; None for a model without them
        self.features = features
        #: the normalised model inputs of the call, (N, C, W) (a novelty score may read the windows)
        self.inputs = inputs

    @property
    def windows(self) -> list[Window]:
        if self._windows is None:
            self._windows = self.block.windows()
        return self._windows

    @property
    def sensor_ids(self) -> list[str]:
        """The sensor of each row."""
        return self.block.sensor_ids

    @property
    def index(self) -> np.ndarray:
        """int64: each row's per-sensor window counter (``Window.index``)."""
        return self.block.index

    @property
    def t_mono(self) -> np.ndarray:
        """float64: monotonic receipt of the chunk that held each window's last sample."""
        return self.block.t_mono

    @property
    def t_wall(self) -> np.ndarray:
        """float64: wall-clock time of each window's last sample."""
        return self.block.t_wall

    @property
    def size(self) -> int:
        return self.block.size

    def latencies(self) -> np.ndarray:
        """Per-window latency from receipt of the last sample to the end of inference, seconds."""
        latency: np.ndarray = self.t_done - self.block.t_mono
        return latency

    def results(self) -> list[InferenceResult]:
        n = self.size
        return [
            InferenceResult(w, self.logits[i], self.probs[i], n, self.infer_s, self.t_done - w.t_mono)
            for i, w in enumerate(self.windows)
        ]
