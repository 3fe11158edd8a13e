"""A stand-in for the model, for measuring the daemon alone: ``bench daemon --backend null``.

On a GPU the model costs a few microseconds per window at batch 32; what is left is the
daemon's own Python work per window (windowing, batching, fault state, payloads, publishing),
which sets how many sensors one device can serve. :class:`NullBackend` answers every batch with
the same logits at a constant, near-zero cost, so the benchmark's windows per second and CPU
time per window are the daemon's own. It is not a backend anyone can configure: the benchmark
hands it to :class:`~runtime.daemon.Daemon` (``make_backend``) instead of the config's.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from runtime.artifact import ModelMetadata
from runtime.backends.base import Backend


class NullBackend(Backend):
    """Returns one fixed row of logits per window (the healthy class, clearly); no model is run."""

    name: ClassVar[str] = "null"
    #: there is no model to prove: the golden gate does not apply to a stand-in
    checks_golden_in_load: ClassVar[bool] = True

    def __init__(self, model_path: str | Path, metadata: ModelMetadata) -> None:
        super().__init__(model_path, metadata)
        row = np.zeros(self.num_classes, dtype=np.float32)
        row[metadata.classes.index(metadata.healthy_class)] = 8.0
        self._row = row
        self._out = np.empty((0, self.num_classes), dtype=np.float32)
        #: a calibrated model's stand-in also answers features, the healthy class's calibrated mean
        #: (a familiar window), so the daemon's novelty path runs as in healthy service and its cost
        #: can be measured without the model
        stats = metadata.novelty if metadata.features_name is not None else None
        means = stats.get("means") if isinstance(stats, dict) else None
        healthy = metadata.classes.index(metadata.healthy_class)
        mean: np.ndarray | None
        try:
            mean = np.asarray(means[healthy], dtype=np.float64).ravel() if means else None
        except (TypeError, ValueError, IndexError):  # not the statistics' shape: no features, novelty off
            mean = None
        score = stats.get("score") if isinstance(stats, dict) else None
        bands = stats.get("envelope_bands", 0) if isinstance(stats, dict) else 0
        if mean is not None and isinstance(bands, int) and 0 < bands < mean.size:
            mean = mean[: mean.size - bands]  # the window's envelope bands follow the features
        if mean is not None and score in ("sqrt_mahalanobis", "sqrt_envelope_mahalanobis"):
            mean = np.sign(mean) * mean * mean  # the means are signed square roots of the features
        self._feature_row = None if mean is None else mean.astype(np.float32)
        self._width = 0 if self._feature_row is None else self._feature_row.size
        self._features = np.empty((0, self._width), dtype=np.float32)

    def _load(self) -> None:
        # features only where the real backend would have them: the graph must have the output too
        self.has_features = self._width > 0 and has_features_output(self.model_path, self.metadata)

    def _infer_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        n = batch.shape[0]
        if self._feature_row is None:  # has_features is False: the base class never asks
            return self._infer(batch), None
        if self._features.shape[0] != n:
            self._features = np.tile(self._feature_row, (n, 1))
        return self._infer(batch), self._features

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        n = batch.shape[0]
        if self._out.shape[0] != n:  # one allocation per batch size, like a backend's output buffer
            self._out = np.tile(self._row, (n, 1))
        return self._out

    def _close(self) -> None:
        pass


def has_features_output(path: Path, metadata: ModelMetadata) -> bool:
    """Whether the ONNX graph at ``path`` has the features output its metadata names (read once by
    ONNX Runtime, as the real backend would; a file it cannot read has none)."""
    if metadata.features_name is None:
        return False
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:  # the stand-in then simply has no features (novelty off)
        return False
    return metadata.features_name in {o.name for o in session.get_outputs()}


def healthy_only(recordings: list[Path]) -> list[Path]:
    """The recordings of the healthy machine (``normal*``), which the sensors replay when the stand-in
    classifies: it answers the healthy class and, for a calibrated model, the healthy features, and a
    novelty score that also reads the windows (envelope bands) would flag a fault recording's
    windows as unfamiliar beside them, which healthy service never does. All of them if none is."""
    healthy = [p for p in recordings if p.name.startswith("normal")]
    return healthy or recordings


def null_backend(path: Path, metadata: ModelMetadata) -> Backend:
    """The ``make_backend`` the benchmark passes to the daemon for ``--backend null``."""
    return NullBackend(path, metadata)
