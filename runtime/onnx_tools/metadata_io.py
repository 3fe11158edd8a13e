"""Load, save and annotate ONNX files; the one place that writes the drsn-edge metadata.

Reading the metadata goes through :func:`runtime.artifact.read_onnx_metadata` so that the device
and the export step can never disagree on where it lives or how it is validated.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import onnx

from runtime.artifact import METADATA_KEY, ModelMetadata, read_onnx_metadata
from runtime.errors import ModelFileError

log = logging.getLogger(__name__)

__all__ = ["embed_metadata", "load_onnx", "metadata_of", "read_metadata", "save_onnx", "write_metadata_file"]

read_metadata = read_onnx_metadata


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Load an ONNX file or raise :class:`ModelFileError` naming the file and the fix.

    Protobuf happily "parses" many random byte strings into an empty message, so an empty graph
    counts as unreadable too.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(
            f"ONNX file {p} does not exist; export one with `drsn-edge export onnx CKPT -o {p}`"
        )
    try:
        model = onnx.load(str(p))
    except Exception as exc:  # protobuf's DecodeError and friends share no useful base class
        raise ModelFileError(
            f"{p} is not a readable ONNX file ({type(exc).__name__}: {exc}); it is corrupt or truncated: "
            "re-export it with `drsn-edge export onnx`"
        ) from exc
    if not model.graph.node or not model.graph.input or not model.graph.output:
        raise ModelFileError(
            f"{p} is not a readable ONNX file (no graph inside); it is corrupt or truncated: re-export it"
        )
    return model


def metadata_of(model: onnx.ModelProto, source: str = "ONNX model") -> ModelMetadata:
    """The drsn-edge metadata of an in-memory model."""
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise ModelFileError(
            f"{source} has no drsn-edge metadata (metadata_props[{METADATA_KEY!r}]); it was not exported by "
            "`drsn-edge export onnx`: export the checkpoint with drsn-edge"
        )
    return ModelMetadata.from_json(props[METADATA_KEY], source=source)


def embed_metadata(model: onnx.ModelProto, metadata: ModelMetadata) -> None:
    """Write (or replace) the metadata document in ``model.metadata_props``, in place."""
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    for key, value in [*kept, (METADATA_KEY, metadata.to_json())]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def save_onnx(model: onnx.ModelProto, path: str | Path) -> Path:
    """Save atomically (temp file, then rename) so a crash never leaves half a model behind."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(p)
    return p


def write_metadata_file(path: str | Path, metadata: ModelMetadata, **updates: Any) -> ModelMetadata:
    """Replace the metadata of an ONNX file on disk; ``updates`` are applied to ``metadata`` first."""
    model = load_onnx(path)
    meta = metadata.model_copy(update=updates) if updates else metadata
    meta = ModelMetadata.model_validate(meta.model_dump(by_alias=True))
    embed_metadata(model, meta)
    save_onnx(model, path)
    log.debug("wrote drsn-edge metadata into %s", path)
    return meta
