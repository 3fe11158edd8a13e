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
from pydantic import ValidationError

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
    version = doc.get("version", 0)
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise ModelFileError(f"{p} is checkpoint format v{version}; upgrade drsn-edge to read it")
    try:
        ckpt = _parse(doc, cls)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(
            f"{p} is a malformed drsn-edge checkpoint ({_what(exc)}); it was damaged or "
            "written by something else: train it again with `drsn-edge train`, or copy the original again"
        ) from exc
    if ckpt.metadata.weights_sha256 and weights_sha256(ckpt.state_dict) != ckpt.metadata.weights_sha256:
        raise ModelFileError(f"{p}: weights do not match their recorded sha256; the file is corrupt")
    return ckpt


def _what(exc: Exception) -> str:
    """What is wrong, in one line: the missing key, or the first invalid metadata field and why."""
    if isinstance(exc, KeyError):
        return f"missing {exc}"
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        return f"metadata field {where or '(the whole object)'}: {first['msg']}, {exc.error_count()} error(s)"
    return str(exc)


def _parse(doc: dict[str, Any], cls: type[C]) -> C:
    """The checkpoint in ``doc``; any missing or wrong-typed field raises KeyError/TypeError/ValueError."""
    import torch

    version = doc.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise TypeError(f"version must be an integer, got {version!r}")
    name, kwargs, state = doc["model_name"], doc["model_kwargs"], doc["state_dict"]
    if not isinstance(name, str) or not name:
        raise TypeError(f"model_name must be a non-empty string, got {name!r}")
    if not isinstance(kwargs, dict):
        raise TypeError(f"model_kwargs must be a dict, got {type(kwargs).__name__}")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise TypeError("state_dict must map parameter names to tensors")
    golden = {key: doc[key] for key in ("golden_inputs", "golden_labels")}
    for key, value in golden.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{key} must be a tensor, got {type(value).__name__}")
    epoch, history = doc.get("epoch", 0), doc.get("history", [])
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not isinstance(history, list):
        raise TypeError("epoch must be an integer and history a list")
    return cls(
        model_name=name,
        model_kwargs=dict(kwargs),
        state_dict=state,
        metadata=ModelMetadata.model_validate(doc["metadata"]),
        golden_inputs=golden["golden_inputs"].numpy(),
        golden_labels=golden["golden_labels"].numpy(),
        epoch=epoch,
        history=history,
    )


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint; errors name the file and what to do."""
    return load_checkpoint_as(path, Checkpoint)
