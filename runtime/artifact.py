"""The self-describing model artifact: one versioned JSON document that travels with the model.

Everything the device needs to run a model (class names, which class is healthy, sample rate,
window, hop, input layout, normalisation, weight hash, golden windows for parity checks) is
stored *inside* the model file so that the daemon's config only names the file:

* ONNX files carry it in ``metadata_props`` under the key :data:`METADATA_KEY`.
* TensorRT engine files start with a header: :data:`ENGINE_MAGIC`, a little-endian ``uint32``
  length, then a JSON object ``{"model": <ModelMetadata>, "engine": <EngineInfo>}``, then the
  serialized engine bytes.

This module is torch-free; the export step writes these documents, the runtime reads them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from runtime.config_base import StrictModel
from runtime.errors import ModelFileError

METADATA_KEY = "drsn_edge"
SCHEMA_NAME = "drsn-edge/model"
#: 2: optional ``features_name`` (a second ONNX output, the pooled features) and ``novelty``
SCHEMA_VERSION = 2
ENGINE_MAGIC = b"DRSNENG1"
_LEN = struct.Struct("<I")
MAX_HEADER_BYTES = 16 * 1024 * 1024


class Normalization(StrictModel):
    """How a window is scaled before the network sees it (applied identically in training and on device)."""

    kind: Literal["none", "zscore", "global"] = Field(
        "zscore",
        description="none: raw samples; zscore: per-window (x - mean) / std; global: (x - mean) / std "
        "with the dataset's mean and std below.",
    )
    mean: float = Field(0.0, description="Dataset mean, used by kind=global.")
    std: float = Field(1.0, gt=0, description="Dataset standard deviation, used by kind=global.")
    eps: float = Field(1e-8, gt=0, description="Added to the std to avoid dividing by zero on flat windows.")


class SignalSpec(StrictModel):
    """The sampled signal a 1-D model expects."""

    sample_rate: float = Field(..., gt=0, description="Samples per second the model was trained at.")
    window: int = Field(..., gt=0, description="Samples per window (the model's input length).")
    hop: int = Field(..., gt=0, description="Default hop between consecutive windows, in samples.")
    channels: int = Field(1, gt=0, description="Number of signal channels per window.")
    units: str = Field("g", description="Physical unit of the samples, for display only.")


class TensorSpec(StrictModel):
    """Name, layout and shape of the model's input (batch axis is -1: dynamic)."""

    name: str = Field("input", description="ONNX input name.")
    layout: Literal["NCW", "NCHW"] = Field("NCW", description="NCW for 1-D signals, NCHW for images.")
    shape: list[int] = Field(..., min_length=2, description="Shape with -1 for the dynamic batch axis.")
    dtype: Literal["float32", "float16"] = Field("float32", description="Input element type.")


class ModelInfo(StrictModel):
    """Which network this is."""

    name: str = Field(..., description="Registry name, e.g. drsn_cw_paper.")
    version: str = Field("1", description="User-chosen model version, shown on MQTT state topics.")
    config: dict[str, Any] = Field(default_factory=dict, description="Constructor arguments.")
    num_parameters: int = Field(0, ge=0, description="Trainable parameters.")


class Golden(StrictModel):
    """A few real input windows and the reference logits, for parity checks on the target."""

    inputs_b64: str = Field(..., description="float32 little-endian inputs, base64.")
    logits_b64: str = Field(..., description="float32 little-endian reference logits (FP32 ONNX), base64.")
    shape: list[int] = Field(..., description="Input shape (N, ...).")
    num_classes: int = Field(..., gt=0)
    features_b64: str | None = Field(
        None, description="float32 little-endian reference features (FP32 ONNX), base64; None without them."
    )
    num_features: int | None = Field(None, gt=0, description="Width of the features output.")

    @classmethod
    def from_arrays(
        cls, inputs: np.ndarray, logits: np.ndarray, features: np.ndarray | None = None
    ) -> Golden:
        x = np.ascontiguousarray(inputs, dtype="<f4")
        y = np.ascontiguousarray(logits, dtype="<f4")
        f = None if features is None else np.ascontiguousarray(features, dtype="<f4")
        return cls(
            inputs_b64=base64.b64encode(x.tobytes()).decode("ascii"),
            logits_b64=base64.b64encode(y.tobytes()).decode("ascii"),
            shape=list(x.shape),
            num_classes=int(y.shape[-1]),
            features_b64=None if f is None else base64.b64encode(f.tobytes()).decode("ascii"),
            num_features=None if f is None else int(f.shape[-1]),
        )

    def features(self) -> np.ndarray | None:
        """The reference features (N, F) float32, or None for a model exported without them."""
        if self.features_b64 is None or self.num_features is None:
            return None
        try:
            f = np.frombuffer(base64.b64decode(self.features_b64, validate=True), dtype="<f4")
            return f.reshape(self.shape[0], self.num_features).astype(np.float32)
        except (ValueError, IndexError) as exc:
            raise ModelFileError(
                f"the model's golden features are corrupt ({str(exc)[:200]}); re-export the model"
            ) from exc

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Decode to (inputs, logits) float32 arrays; ModelFileError when they do not fit together."""
        try:
            x = np.frombuffer(base64.b64decode(self.inputs_b64, validate=True), dtype="<f4")
            y = np.frombuffer(base64.b64decode(self.logits_b64, validate=True), dtype="<f4")
            if not self.shape or any(d <= 0 for d in self.shape):
                raise ValueError(f"shape {self.shape} is not (N, ...) with positive sizes")
            x = x.reshape(self.shape)
            y = y.reshape(self.shape[0], self.num_classes)
        except ValueError as exc:  # bad base64 (binascii.Error), byte counts that do not fit the shape
            raise ModelFileError(
                f"the model's golden windows are corrupt ({str(exc)[:200]}); re-export the model"
            ) from exc
        return x.astype(np.float32), y.astype(np.float32)


class ModelMetadata(StrictModel):
    """The document stored in every model artifact (schema ``drsn-edge/model`` v2; v1 files still read)."""

    schema_name: Literal["drsn-edge/model"] = Field("drsn-edge/model", alias="schema")
    schema_version: int = Field(SCHEMA_VERSION, description="Bumped on incompatible changes.")
    model: ModelInfo
    classes: list[str] = Field(..., min_length=2, description="Class names in logit order.")
    healthy_class: str = Field(..., description="The class that means 'no fault'.")
    signal: SignalSpec | None = Field(None, description="Sampling of 1-D models; None for images.")
    input: TensorSpec
    output_name: str = Field("logits", description="ONNX output name (raw logits, softmax not applied).")
    features_name: str | None = Field(
        None,
        description="ONNX output holding the pooled features (N, F) in front of the final layer; None: the "
        "model has no such output and novelty scoring is off.",
    )
    novelty: dict[str, Any] | None = Field(
        None,
        description="Feature statistics and thresholds of the novelty score (runtime.novelty.NoveltyStats, "
        "parsed when used); None: not calibrated, novelty off.",
    )
    normalization: Normalization = Field(default_factory=Normalization)
    precision: Literal["fp32", "fp16"] = Field("fp32", description="Precision of the stored weights.")
    weights_sha256: str = Field("", description="sha256 of the trained weights (state dict bytes).")
    training: dict[str, Any] = Field(default_factory=dict, description="Data summary and metrics.")
    export: dict[str, Any] = Field(default_factory=dict, description="Export gates and their figures.")
    golden: Golden | None = Field(None, description="Golden windows for parity checks on the device.")

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _check(self) -> ModelMetadata:
        if self.schema_version > SCHEMA_VERSION:
            raise ValueError(
                f"model metadata schema v{self.schema_version} is newer than this drsn-edge understands "
                f"(v{SCHEMA_VERSION}); upgrade drsn-edge on this device"
            )
        if self.healthy_class not in self.classes:
            raise ValueError(f"healthy_class {self.healthy_class!r} is not one of the classes {self.classes}")
        if (
            self.signal is not None
            and self.input.layout == "NCW"
            and self.input.shape[-1] != self.signal.window
        ):
            raise ValueError(
                f"input shape {self.input.shape} does not end in the signal window {self.signal.window}"
            )
        return self

    @property
    def healthy_index(self) -> int:
        return self.classes.index(self.healthy_class)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "model file") -> ModelMetadata:
        """Parse the metadata document; any defect is a :class:`ModelFileError` naming it."""
        try:
            return cls.model_validate(json.loads(text))
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ModelFileError(
                f"{source}: drsn-edge metadata is invalid: {str(err['msg'])[:200]} "
                f"at {'.'.join(str(p) for p in err['loc'])[:200]}; re-export the model"
            ) from exc
        except RecursionError as exc:
            raise ModelFileError(f"{source}: drsn-edge metadata is nested too deeply; re-export the model") \
                from exc
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, integers of thousands of digits
            raise ModelFileError(
                f"{source}: drsn-edge metadata is not valid JSON ({str(exc)[:200]}); re-export the model"
            ) from exc


class EngineInfo(StrictModel):
    """What a TensorRT engine was built for; a mismatch with the device means rebuild."""

    onnx_sha256: str = Field(..., description="sha256 of the ONNX file the engine was built from.")
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: Literal["fp32", "fp16"]
    profile: tuple[int, int, int] = Field(
        ..., description="Batch (min, opt, max) of the optimisation profile."
    )
    strongly_typed: bool = False


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_onnx_metadata(path: str | Path) -> ModelMetadata:
    """Read the drsn-edge metadata of an ONNX file without building a session.

    Uses the ``onnx`` package when present (exact, validates the protobuf), otherwise
    onnxruntime's model metadata, so a device with only one of them still works.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"model file {p} does not exist; check the path in your config")
    props = _onnx_props(p)
    if METADATA_KEY not in props:
        raise ModelFileError(
            f"{p} has no drsn-edge metadata (metadata_props[{METADATA_KEY!r}]); it was not exported by "
            "`drsn-edge export onnx`. Export the checkpoint with drsn-edge so the device knows its classes, "
            "rate and window"
        )
    return ModelMetadata.from_json(props[METADATA_KEY], source=str(p))


def _onnx_props(p: Path) -> dict[str, str]:
    try:
        import onnx
    except ImportError:
        onnx = None  # type: ignore[assignment]
    if onnx is not None:
        try:
            proto = onnx.load(str(p), load_external_data=False)
        except Exception as exc:  # protobuf raises DecodeError and friends
            raise ModelFileError(
                f"{p} is not a readable ONNX file ({type(exc).__name__}: {exc}); re-export it"
            ) from exc
        if not proto.graph.node:
            raise ModelFileError(f"{p} is not a readable ONNX file (empty graph); re-export it")
        return {e.key: e.value for e in proto.metadata_props}
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelFileError(
            "reading ONNX metadata needs `onnx` or `onnxruntime`; install drsn-edge[ort]"
        ) from exc
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelFileError(f"{p} is not a readable ONNX file ({exc}); re-export it") from exc
    return dict(sess.get_modelmeta().custom_metadata_map)


def write_engine_file(
    path: str | Path, model: ModelMetadata, engine: EngineInfo, engine_bytes: bytes
) -> None:
    """Write header + serialized engine atomically (temp file then rename)."""
    header = json.dumps(
        {"model": json.loads(model.to_json()), "engine": engine.model_dump(mode="json")}, sort_keys=True
    ).encode("utf-8")
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(ENGINE_MAGIC)
        f.write(_LEN.pack(len(header)))
        f.write(header)
        f.write(engine_bytes)
    tmp.replace(p)


def read_engine_file(
    path: str | Path, *, with_engine: bool = True
) -> tuple[ModelMetadata, EngineInfo, bytes]:
    """Parse an engine file; raise :class:`ModelFileError` naming what is wrong and how to fix it."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"engine file {p} does not exist; build it with `drsn-edge build-engine`")
    with open(p, "rb") as f:
        magic = f.read(len(ENGINE_MAGIC))
        if magic != ENGINE_MAGIC:
            raise ModelFileError(
                f"{p} is not a drsn-edge engine (no {ENGINE_MAGIC.decode()} header); a bare TensorRT plan "
                "carries no classes or rate. Build it with `drsn-edge build-engine model.onnx`"
            )
        raw_len = f.read(_LEN.size)
        if len(raw_len) != _LEN.size:
            raise ModelFileError(f"{p} is truncated inside its header; rebuild the engine")
        (n,) = _LEN.unpack(raw_len)
        if n > MAX_HEADER_BYTES:
            raise ModelFileError(
                f"{p} declares a {n}-byte header, which is not plausible; the file is corrupt"
            )
        raw = f.read(n)
        if len(raw) != n:
            raise ModelFileError(
                f"{p} is truncated inside its header ({len(raw)} of {n} bytes); rebuild the engine"
            )
        body = f.read() if with_engine else b""
    try:
        doc = json.loads(raw)
        meta = ModelMetadata.model_validate(doc["model"])
        info = EngineInfo.model_validate(doc["engine"])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # ValueError: JSON, UTF-8, pydantic
        raise ModelFileError(f"{p} has a corrupt engine header ({str(exc)[:300]}); rebuild the engine") \
            from exc
    if with_engine and not body:
        raise ModelFileError(f"{p} holds a header but no engine bytes (truncated); rebuild the engine")
    return meta, info, body
