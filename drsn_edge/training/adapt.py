"""``drsn-edge adapt``: a checkpoint adapted to a new machine's unlabelled recordings with AdaBN.

The target recordings are cut into windows with the model's own window, hop and normalisation
(resampled to its rate first), the BatchNorm statistics are re-estimated on them
(:mod:`.adabn`), and a new checkpoint is written whose metadata names the parent and the data
it was adapted on. It exports like any other checkpoint.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from drsn_edge.training.adabn import adapt_batchnorm
from drsn_edge.training.checkpoint import Checkpoint, save_checkpoint
from drsn_edge.training.finetune import Parent, load_parent
from runtime.errors import ConfigError, DataError
from runtime.signals.normalize import normalize_windows

log = logging.getLogger(__name__)


def unlabelled_signals(path: str | Path, sample_rate: float) -> list[tuple[str, np.ndarray]]:
    """Every signal file under ``path`` (or the one file), resampled to ``sample_rate``; labels ignored."""
    from runtime.signals.readers import SUPPORTED_SUFFIXES, read_signal
    from runtime.signals.resample import resample

    root = Path(path)
    if not root.exists():
        raise ConfigError(f"--data {root} does not exist")
    files = (
        [root]
        if root.is_file()
        else sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    )
    if not files:
        raise DataError(f"no signal files ({', '.join(SUPPORTED_SUFFIXES)}) under {root}")
    out = []
    for f in files:
        samples, rate = read_signal(f)
        if rate is None:
            raise DataError(f"{f} declares no sample rate; add a sidecar JSON with sample_rate, or use WAV")
        x = samples if abs(rate - sample_rate) < 1e-6 else resample(samples, rate, sample_rate)
        out.append((str(f), np.asarray(x, dtype=np.float32)))
    return out


def windows_of(signals: list[tuple[str, np.ndarray]], window: int, hop: int, norm: Any) -> np.ndarray:
    """Normalised model inputs (N, C, window) from whole signals."""
    from drsn_edge.data.windows import make_windows

    parts = [make_windows(x, window, hop)[0] for _, x in signals]
    x = np.concatenate(parts) if parts else np.zeros((0, 1, window), np.float32)
    return normalize_windows(x, norm)


def adapt_checkpoint(parent: Parent, windows: np.ndarray, data_record: dict[str, Any]) -> Checkpoint:
    """A copy of the parent whose BatchNorm statistics come from ``windows``; weights untouched."""
    model = parent.ckpt.build_model()
    layers = adapt_batchnorm(model, windows)
    child = copy.copy(parent.ckpt)
    child.state_dict = {k: v.detach().clone() for k, v in model.state_dict().items()}
    meta = parent.ckpt.metadata.model_copy(deep=True)
    meta.training["parent"] = {
        **parent.citation(),
        "method": "adabn",
        "batchnorm_layers": layers,
        "adapted_on": {**data_record, "windows": len(windows)},
    }
    # a parent's test figures were measured on its own machine, not on this one
    meta.training["metrics"] = {"parent_metrics": meta.training.get("metrics", {})}
    if meta.novelty is not None:
        # the parent's feature statistics describe features that AdaBN has just moved
        log.warning(
            "the parent's novelty statistics no longer fit the adapted features and are dropped; "
            "run `drsn-edge calibrate` on the adapted checkpoint with labelled data of the machine"
        )
        meta.novelty = None
    child.metadata = meta
    return child


def run_adapt(
    ref: str, spec: Any, data_path: str | None, out: str | Path, hop: int | None = None
) -> dict[str, Any]:
    """Load, window, adapt and save; returns what was done (for the command's report)."""
    parent = load_parent(ref)
    meta = parent.ckpt.metadata
    if meta.signal is None:
        raise ConfigError(f"{parent.path} is an image model; AdaBN here adapts 1-D signal models")
    rate, window = float(meta.signal.sample_rate), int(meta.signal.window)
    hop = hop or int(meta.signal.hop)
    if spec is None:
        if data_path is None:
            raise ConfigError("adapt needs --data: a folder or file of the target machine's recordings")
        signals = unlabelled_signals(data_path, rate)
        record: dict[str, Any] = {"source": "files", "path": str(data_path), "recordings": len(signals)}
    else:
        from drsn_edge.training.pipeline import load_recordings

        spec.sample_rate = rate
        spec.validate()
        recs = load_recordings(spec, spec.select)
        signals = [(str(r.meta.get("source", i)), r.signal) for i, r in enumerate(recs)]
        record = {"source": spec.source, "path": spec.path, "select": spec.select, "recordings": len(recs)}
    x = windows_of(signals, window, hop, meta.normalization)
    if x.shape[1] != meta.signal.channels:
        raise DataError(
            f"the recordings have {x.shape[1]} channel(s), {parent.path} takes {meta.signal.channels}"
        )
    child = adapt_checkpoint(parent, x, {**record, "hop": hop})
    save_checkpoint(out, child)
    digest = hashlib.sha256(Path(out).read_bytes()).hexdigest()
    log.info("adapted %s on %d windows from %d recordings -> %s", parent.name, len(x), len(signals), out)
    return {
        "parent": parent.name,
        "windows": len(x),
        "recordings": len(signals),
        "out": str(out),
        "sha256": digest,
        "batchnorm_layers": child.metadata.training["parent"]["batchnorm_layers"],
    }
