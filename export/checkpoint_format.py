"""The checkpoint file: everything the export step needs, readable without training code.

A checkpoint is one ``torch.save`` file holding a plain dict (no pickled classes beyond tensors
and numpy arrays), so it loads with ``weights_only=True``:

``format``/``version``
    ``"drsn-edge-checkpoint"`` / 1.
``model_name``, ``model_kwargs``
    ``create_model(model_name, **model_kwargs)`` rebuilds the network (the host's model
    registry does that: :func:`drsn_edge.training.checkpoint.build_model`).
``state_dict``
    The weights.
``metadata``
    A :class:`runtime.artifact.ModelMetadata` as a JSON-able dict (classes, healthy class,
    signal spec, input spec, normalisation, training summary and metrics); ``golden`` is empty
    here, the export step fills it with ONNX logits.
``golden_inputs``, ``golden_labels``
    Up to 64 real, already normalised windows (float32) from the validation or test span, for
    export parity gates.
``epoch``, ``history``
    Training progress.

The format lives in ``export`` because the export reads it and ``export`` must not import the
host package above it; torch is imported only when a file is read or written.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from runtime.artifact import ModelMetadata
from runtime.errors import ModelFileError

if TYPE_CHECKING:
    import torch

FORMAT = "drsn-edge-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """The contents of a checkpoint file."""

    model_name: str
    model_kwargs: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    metadata: ModelMetadata
    golden_inputs: np.ndarray
    golden_labels: np.ndarray
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


C = TypeVar("C", bound=Checkpoint)


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """Hash of the weights in a stable order, independent of pickling details."""
    h = hashlib.sha256()
    for k in sorted(state_dict):
        h.update(k.encode())
        h.update(state_dict[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> None:
    """Write atomically (temp file + rename) so an interrupted run never leaves a half file."""
    import torch

    meta = ckpt.metadata.model_copy(update={"weights_sha256": weights_sha256(ckpt.state_dict)})
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "model_name": ckpt.model_name,
        "model_kwargs": ckpt.model_kwargs,
        "state_dict": {k: v.detach().cpu() for k, v in ckpt.state_dict.items()},
        "metadata": meta.model_dump(mode="json", by_alias=True),
        "golden_inputs": torch.from_numpy(np.ascontiguousarray(ckpt.golden_inputs, dtype=np.float32)),
        "golden_labels": torch.from_numpy(np.ascontiguousarray(ckpt.golden_labels, dtype=np.int64)),
        "epoch": int(ckpt.epoch),
        "history": ckpt.history,
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(doc, buf)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(p)


def load_checkpoint_as(path: str | Path, cls: type[C]) -> C:
    """Load and validate a checkpoint into ``cls`` (a :class:`Checkpoint` or a subclass of it)."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"checkpoint {p} does not exist; train one with `drsn-edge train`")
    try:
        doc = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(
            f"{p} is not a readable drsn-edge checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(
            f"{p} is not a drsn-edge checkpoint (missing format {FORMAT!r}); use `drsn-edge train`"
        )
    if int(doc.get("version", 0)) > VERSION:
        raise ModelFileError(f"{p} is checkpoint format v{doc['version']}; upgrade drsn-edge to read it")
    meta = ModelMetadata.model_validate(doc["metadata"])
    ckpt = cls(
        model_name=doc["model_name"],
        model_kwargs=dict(doc["model_kwargs"]),
        state_dict=doc["state_dict"],
        metadata=meta,
        golden_inputs=doc["golden_inputs"].numpy(),
        golden_labels=doc["golden_labels"].numpy(),
        epoch=int(doc.get("epoch", 0)),
        history=list(doc.get("history", [])),
    )
    if meta.weights_sha256 and weights_sha256(ckpt.state_dict) != meta.weights_sha256:
        raise ModelFileError(f"{p}: weights do not match their recorded sha256; the file is corrupt")
    return ckpt


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint; errors name the file and what to do."""
    return load_checkpoint_as(path, Checkpoint)
