"""The one small base class every inference backend implements.

A backend is constructed from a model file and its :class:`~runtime.artifact.ModelMetadata`,
then ``load()``-ed once, called with ``infer(batch) -> logits`` (or ``infer_outputs(batch)`` for
the logits and the pooled features of one and the same call, which the novelty path scores) from a
single inference thread, and ``close()``-d. The base class checks the input's shape and dtype in
one place so that every backend fails the same way on a wrong window length or layout, and
:meth:`Backend.load` ends with the golden gate (:mod:`runtime.backends.golden`): a model whose
graph disagrees with its metadata, or that does not reproduce its golden windows, never serves.
"""

from __future__ import annotations

import abc
import logging
import time
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np

from runtime.artifact import ModelMetadata
from runtime.backends.golden import golden_gate
from runtime.errors import DataError

log = logging.getLogger(__name__)


class Outputs(NamedTuple):
    """Both outputs of one backend call, row-aligned with the batch."""

    #: float32 (N, classes)
    logits: np.ndarray
    #: float32 (N, F) pooled features, or None for a model without a ``features`` output (novelty off)
    features: np.ndarray | None


class Backend(abc.ABC):
    """Runs one model. Subclasses implement :meth:`_load`, :meth:`_infer` and :meth:`_close`."""

    #: key in :data:`runtime.backends.BACKENDS`
    name: ClassVar[str] = ""

    def __init__(self, model_path: str | Path, metadata: ModelMetadata) -> None:
        self.model_path = Path(model_path)
        self.metadata = metadata
        self.sample_shape: tuple[int, ...] = tuple(int(d) for d in metadata.input.shape[1:])
        self.num_classes = len(metadata.classes)
        self._loaded = False
        #: set by ``_load`` when the model's graph has the ``features`` output and the backend returns it
        self.has_features = False
        #: CPU seconds of the calling thread inside :meth:`infer` / :meth:`infer_outputs`, and the windows
        #: they classified: the model's own cost per window, which ``bench daemon`` compares between the
        #: bare loop and the daemon (the same call can cost more where other threads share its core and
        #: cache). Thread time, so a call preempted by another thread is not charged for it.
        self.call_cpu_s = 0.0
        self.call_windows = 0

    #: largest batch the backend accepts in one call (None: unbounded)
    max_batch: int | None = None
    #: True for backends whose ``_load`` runs the golden windows itself (with their own tolerances)
    checks_golden_in_load: ClassVar[bool] = False

    def load(self) -> None:
        """Prepare the model (session, engine, buffers), then prove it on its golden windows. Idempotent.

        A model that fails the gate is closed again and the error (with the figures) raised.
        """
        if self._loaded:
            return
        self._load()
        if not self.checks_golden_in_load:
            try:
                golden_gate(self)
            except Exception:
                self._close()
                raise
        self._loaded = True
        if not self.has_features:
            log.warning(
                "%s has no features output%s; it classifies as before but novelty scoring is off for it: "
                "re-export the model with `drsn-edge export` (and calibrate it) to turn novelty on",
                self.model_path.name,
                "" if self.metadata.features_name is None
                else f" (the metadata names {self.metadata.features_name!r}, the graph lacks it)",
            )

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Classify a batch of normalised windows; return float32 logits of shape (N, classes)."""
        if not self._loaded:
            self.load()
        x = self.check_input(batch)
        t0 = time.thread_time()
        logits = self._infer(x)
        self.call_cpu_s += time.thread_time() - t0
        self.call_windows += x.shape[0]
        return np.asarray(logits, dtype=np.float32).reshape(x.shape[0], self.num_classes)

    def infer_outputs(self, batch: np.ndarray) -> Outputs:
        """Logits and, where the model has them, features of a batch from one backend call."""
        if not self._loaded:
            self.load()
        x = self.check_input(batch)
        n = x.shape[0]
        t0 = time.thread_time()
        logits, features = self._infer_outputs(x) if self.has_features else (self._infer(x), None)
        self.call_cpu_s += time.thread_time() - t0
        self.call_windows += n
        logits = np.asarray(logits, dtype=np.float32).reshape(n, self.num_classes)
        if features is not None:
            features = np.asarray(features, dtype=np.float32).reshape(n, -1)
        return Outputs(logits, features)

    def check_input(self, batch: np.ndarray) -> np.ndarray:
        x = np.asarray(batch)
        if x.ndim != len(self.sample_shape) + 1 or tuple(x.shape[1:]) != self.sample_shape:
            raise DataError(
                f"batch of shape {tuple(x.shape)} does not match the model input (N, "
                f"{', '.join(map(str, self.sample_shape))}) of {self.model_path.name}; window and channel "
                "count come from the model metadata"
            )
        if x.shape[0] == 0:
            raise DataError("empty batch: call infer with at least one window")
        if self.max_batch is not None and x.shape[0] > self.max_batch:
            raise DataError(
                f"batch of {x.shape[0]} exceeds this backend's maximum of {self.max_batch}; "
                "lower max_batch in the config or rebuild the engine with a larger profile"
            )
        if x.dtype != np.float32:
            x = x.astype(np.float32)
        return np.ascontiguousarray(x)

    def close(self) -> None:
        if self._loaded:
            self._close()
            self._loaded = False

    def __enter__(self) -> Backend:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def _load(self) -> None: ...

    @abc.abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray: ...

    def _infer_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits and features from one call; backends that set ``has_features`` override it."""
        return self._infer(batch), None

    def _close(self) -> None:
        """Release resources; backends that hold none keep this default."""
        return None
