"""Learn a machine's baseline on the host from recordings of it running healthy, with an ONNX model.

The same windows, normalisation and model output the daemon uses, so a baseline learned here is
the one the daemon would have learned from the same signal; it is written where the daemon's state
directory keeps baselines (``<state_dir>/baselines/<sensor>.json``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.artifact import ModelMetadata, read_onnx_metadata, sha256_file
from runtime.errors import ConfigError, DataError
from runtime.novelty import Baseline, BaselineLearner, baseline_path
from runtime.onnx_tools.ort_run import cpu_session, run_outputs
from runtime.signals.normalize import normalize_windows
from runtime.signals.readers import read_signal
from runtime.signals.resample import resample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearnedBaseline:
    baseline: Baseline
    path: Path
    windows: int
    files: int


def model_key(meta: ModelMetadata, model_path: str | Path) -> str:
    """What a baseline is tied to: the weights' sha256 (same for FP32, FP16 and engines), else the file's."""
    return meta.weights_sha256 or sha256_file(model_path)


def windows_of(
    signal: np.ndarray, rate: float | None, meta: ModelMetadata, hop: int | None, source: str
) -> np.ndarray:
    """Cut one recording into the model's normalised windows, resampled to its rate when needed."""
    if meta.signal is None:
        raise ConfigError(f"{source}: the model takes images, not signals; a baseline needs a 1-D model")
    if rate is None:
        raise DataError(f"{source} states no sample rate; pass --rate")
    x = np.asarray(signal, dtype=np.float32)
    x = x if x.ndim == 1 else x[0]
    if abs(rate - meta.signal.sample_rate) > 1e-6 * rate:
        x = resample(x, rate, meta.signal.sample_rate).astype(np.float32)
    w, step = meta.signal.window, hop or meta.signal.hop
    n = (len(x) - w) // step + 1
    if n < 1:
        raise DataError(f"{source} holds {len(x)} samples, fewer than one {w}-sample window")
    idx = np.arange(w)[None, :] + step * np.arange(n)[:, None]
    return normalize_windows(x[idx][:, None, :], meta.normalization)


def learn_baseline(
    model_path: str | Path,
    recordings: Sequence[str | Path],
    *,
    state_dir: str | Path,
    sensor: str,
    hop: int | None = None,
    key: str | None = None,
    rate: float | None = None,
) -> LearnedBaseline:
    """Features of every window of ``recordings`` -> a :class:`Baseline` saved for ``sensor``."""
    meta = read_onnx_metadata(model_path)
    if meta.features_name is None:
        raise ConfigError(
            f"{model_path} has no features output; re-export it with `drsn-edge export onnx` "
            "to learn a baseline"
        )
    session = cpu_session(model_path)
    learner: BaselineLearner | None = None
    count = 0
    for rec in recordings:
        signal, found_rate = read_signal(rec, key=key, sample_rate=rate)
        x = windows_of(signal, found_rate, meta, hop, str(rec))
        feats = run_outputs(session, x)[meta.features_name]
        if learner is None:
            learner = BaselineLearner(feats.shape[1], model_key(meta, model_path), sensor=sensor)
        learner.add(feats)
        count += len(x)
        log.info("%s: %d windows", rec, len(x))
    if learner is None:
        raise ConfigError("no recordings given; pass files of the machine running healthy")
    baseline = learner.finish()
    path = baseline.save(baseline_path(state_dir, sensor))
    return LearnedBaseline(baseline, path, count, len(recordings))
