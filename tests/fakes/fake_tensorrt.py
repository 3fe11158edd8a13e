"""A FAKE ``tensorrt`` module that records calls and enforces the API contract of two generations.

TensorRT cannot be installed on CI machines, so the build and runtime code is driven through
this fake. It implements the subset of the real Python API the project uses, with the real
names and signatures, and behaves like the real library where that matters:

* TensorRT 10.3 (JetPack 6): ``BuilderFlag.FP16`` exists; networks are weakly typed unless
  created with ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``.
* TensorRT 10.13: as 10.3, but setting ``BuilderFlag.FP16`` on a strongly typed network is an
  API usage error.
* TensorRT 11: ``BuilderFlag.FP16`` does not exist at all; every network is strongly typed.

A build records what the real builder would have produced (strong typing, flags, the precision
the engine would effectively run in, the optimisation profile, workspace limit, timing cache).
The serialized "engine" embeds the ONNX it was parsed from, and ``execute_async_v3`` computes
the logits with ONNX Runtime on that ONNX, reading the input from and writing the output to the
fake device memory at the addresses the code under test bound, so the post-build parity gate
and the runtime backend's buffer handling run for real.
"""

from __future__ import annotations

import base64
import enum
import json
import sys
import threading
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import pytest

from tests.fakes.fake_cuda import FakeContractError, FakeGpu

PLAN_MAGIC = b"FAKEPLAN"
TIMING_MAGIC = b"FAKETC01"
SUPPORTED_OPS = frozenset(
    {
        "Abs",
        "Add",
        "BatchNormalization",
        "Cast",
        "Concat",
        "Constant",
        "Conv",
        "Div",
        "Flatten",
        "Gemm",
        "GlobalAveragePool",
        "Identity",
        "MatMul",
        "Max",
        "MaxPool",
        "AveragePool",
        "Min",
        "Mul",
        "Pad",
        "ReduceMean",
        "Relu",
        "Reshape",
        "Sigmoid",
        "Sign",
        "Slice",
        "Squeeze",
        "Sub",
        "Unsqueeze",
        "Transpose",
    }
)
_DTYPES = {onnx.TensorProto.FLOAT: 0, onnx.TensorProto.FLOAT16: 1}


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0
    DLA_MANAGED_SRAM = 1


def nptype(dtype: DataType) -> type:
    return {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT32: np.int32}[DataType(dtype)]


@dataclass
class BuildRecord:
    """What one ``build_serialized_network`` call asked the builder for."""

    tensorrt_version: str
    strongly_typed: bool
    flags: set[str]
    effective_precision: str
    onnx_has_fp16: bool
    profile: dict[str, tuple[tuple[int, ...], ...]]
    workspace_bytes: int | None
    timing_cache_entries_loaded: int
    thread: int
    #: layers the builder must run in FP32 (constraints set and obeyed); empty when it may ignore them
    fp32_layers: list[str] = field(default_factory=list)


@dataclass
class ParserErrorRecord:
    message: str
    node_index: int = -1


class FakeParserError:
    def __init__(self, record: ParserErrorRecord) -> None:
        self._r = record

    def desc(self) -> str:
        return self._r.message

    def node(self) -> int:
        return self._r.node_index

    def code(self) -> int:
        return 8


@dataclass
class FakeTensor:
    name: str
    shape: tuple[int, ...]
    dtype: DataType


class FakeLayer:
    """One layer per ONNX node, named and with outputs named as the real parser names them.

    Precision constraints follow the real contract: ``precision`` and ``set_output_type`` take a
    ``trt.DataType``, the output index must exist, and both are API usage errors on a strongly
    typed network (whose types come from the ONNX alone).
    """

    def __init__(self, network: FakeNetwork, name: str, op_type: str, outputs: list[str]) -> None:
        self._network, self.name, self.type = network, name, op_type
        self._outputs = [FakeTensor(o, (), DataType.FLOAT) for o in outputs]
        self._precision: DataType | None = None
        self.output_types: dict[int, DataType] = {}

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_output(self, index: int) -> FakeTensor:
        return self._outputs[index]

    @property
    def precision(self) -> DataType | None:
        return self._precision

    @precision.setter
    def precision(self, dtype: DataType) -> None:
        self._check_constrainable(dtype)
        self._precision = dtype

    @property
    def precision_is_set(self) -> bool:
        return self._precision is not None

    def set_output_type(self, index: int, dtype: DataType) -> None:
        self._check_constrainable(dtype)
        if not 0 <= index < len(self._outputs):
            raise FakeContractError(
                f"set_output_type({index}) on layer {self.name} with {self.num_outputs} outputs"
            )
        self.output_types[index] = dtype

    def _check_constrainable(self, dtype: Any) -> None:
        if not isinstance(dtype, DataType):
            raise FakeContractError(f"layer precision needs a trt.DataType, got {dtype!r}")
        if self._network.strongly_typed:
            raise FakeContractError(f"precision constraints on layer {self.name} of a strongly typed network")


@dataclass
class FakeNetwork:
    flags: int
    strongly_typed: bool
    inputs: list[FakeTensor] = field(default_factory=list)
    outputs: list[FakeTensor] = field(default_factory=list)
    layers: list[FakeLayer] = field(default_factory=list)
    onnx_bytes: bytes = b""
    parsed: bool = False

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def get_layer(self, index: int) -> FakeLayer:
        return self.layers[index]

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    def get_input(self, index: int) -> FakeTensor:
        return self.inputs[index]

    def get_output(self, index: int) -> FakeTensor:
        return self.outputs[index]


class FakeProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

    def set_shape(self, name: str, min: Any, opt: Any, max: Any) -> None:
        shapes = tuple(tuple(int(d) for d in s) for s in (min, opt, max))
        if any(len(s) != len(shapes[0]) for s in shapes):
            raise FakeContractError(f"profile shapes of {name} differ in rank: {shapes}")
        if any(not (a <= b <= c) for a, b, c in zip(*shapes, strict=True)):
            raise FakeContractError(f"profile of {name} is not min <= opt <= max: {shapes}")
        self.shapes[name] = shapes


class FakeTimingCache:
    def __init__(self, version: str, entries: int, valid: bool = True) -> None:
        self.version, self.entries, self.valid = version, entries, valid

    def serialize(self) -> bytearray:
        return bytearray(
            TIMING_MAGIC + json.dumps({"version": self.version, "entries": self.entries}).encode()
        )


class FakeHostMemory(bytearray):
    """Stands in for ``IHostMemory``: a buffer ``bytes()`` can copy."""


class FakeExecutionContext:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}

    def set_input_shape(self, name: str, shape: Any) -> bool:
        fake = self.engine.fake
        fake.calls.append("set_input_shape")
        if name not in self.engine.input_names:
            raise FakeContractError(f"set_input_shape on {name!r}, which is not an input")
        shape = tuple(int(d) for d in shape)
        lo, _, hi = self.engine.profile[name]
        if len(shape) != len(lo) or any(not (a <= s <= c) for a, s, c in zip(lo, shape, hi, strict=True)):
            return False
        self.shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        if name in self.shapes:
            return self.shapes[name]
        return (self.shapes[self.engine.input_names[0]][0], *self.engine.io[name]["shape"][1:])

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        fake = self.engine.fake
        fake.calls.append("set_tensor_address")
        if name not in self.engine.io:
            raise FakeContractError(f"set_tensor_address on unknown tensor {name!r}")
        if not isinstance(ptr, int):
            raise FakeContractError(
                f"set_tensor_address needs an int device pointer, got {type(ptr).__name__}"
            )
        fake.gpu.device_region(ptr, 1)
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        fake, engine = self.engine.fake, self.engine
        fake.calls.append("execute_async_v3")
        if not isinstance(stream_handle, int) or stream_handle not in fake.gpu.streams:
            raise FakeContractError(
                f"execute_async_v3 needs a live CUDA stream handle (int), got {stream_handle!r}"
            )
        if not fake.gpu.device_made_current_on_this_thread():
            raise FakeContractError(
                "execute_async_v3 on a thread where the CUDA device was never made current"
            )
        missing = [n for n in engine.input_names if n not in self.shapes] + [
            n for n in engine.io if n not in self.addresses
        ]
        if missing:
            raise FakeContractError(f"execute_async_v3 before shapes/addresses were set for {missing}")
        feeds = {}
        for name in engine.input_names:
            dtype = nptype(engine.io[name]["dtype"])
            shape = self.shapes[name]
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            feeds[name] = np.frombuffer(fake.gpu.read(self.addresses[name], nbytes), dtype=dtype).reshape(
                shape
            )
        outputs = engine.session().run(engine.output_names, feeds)
        for name, value in zip(engine.output_names, outputs, strict=True):
            value = np.asarray(value, dtype=nptype(engine.io[name]["dtype"]))
            if fake.corrupt_outputs:
                value = -value
            fake.gpu.write(self.addresses[name], value.tobytes())
        fake.executions.append(
            {"batch": self.shapes[engine.input_names[0]][0], "thread": threading.get_ident()}
        )
        return True


class FakeEngine:
    def __init__(self, fake: FakeTensorRT, doc: dict[str, Any]) -> None:
        self.fake, self.doc = fake, doc
        self.onnx_bytes = base64.b64decode(doc["onnx_b64"])
        self.io: dict[str, dict[str, Any]] = doc["io"]
        self.input_names = [n for n, v in self.io.items() if v["mode"] == "input"]
        self.output_names = [n for n, v in self.io.items() if v["mode"] == "output"]
        self.profile = {k: tuple(tuple(s) for s in v) for k, v in doc["profile"].items()}
        self._session: Any = None

    @property
    def num_io_tensors(self) -> int:
        return len(self.io)

    @property
    def num_optimization_profiles(self) -> int:
        return 1

    def get_tensor_name(self, index: int) -> str:
        return [*self.input_names, *self.output_names][index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode.INPUT if self.io[name]["mode"] == "input" else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType(self.io[name]["dtype"])

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.io[name]["shape"])

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
        if profile_index != 0 or name not in self.profile:
            raise FakeContractError(f"no profile {profile_index} for input {name!r}")
        return list(self.profile[name])

    def create_execution_context(self) -> FakeExecutionContext:
        self.fake.calls.append("create_execution_context")
        return FakeExecutionContext(self)

    def session(self) -> Any:
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            self._session = ort.InferenceSession(self.onnx_bytes, opts, providers=["CPUExecutionProvider"])
        return self._session


class FakeTensorRT:
    """Builds the fake module for one TensorRT ``version`` on one fake GPU, and records its use."""

    def __init__(self, version: str, gpu: FakeGpu) -> None:
        self.version, self.gpu = version, gpu
        self.major, self.minor = (int(p) for p in version.split(".")[:2])
        self.calls: list[str] = []
        self.builds: list[BuildRecord] = []
        self.executions: list[dict[str, Any]] = []
        self.corrupt_outputs = False
        self.module = self._make_module()

    @property
    def always_strongly_typed(self) -> bool:
        return self.major >= 11

    def _make_module(self) -> types.ModuleType:
        trt = types.ModuleType("tensorrt")
        trt.__version__ = self.version  # type: ignore[attr-defined]
        trt.DataType, trt.TensorIOMode, trt.MemoryPoolType, trt.nptype = (
            DataType,
            TensorIOMode,
            MemoryPoolType,
            nptype,
        )
        flags = ["INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS"]
        if self.major < 11:  # TensorRT 11 dropped weak typing and the flags that steer it
            flags = ["FP16", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", *flags]
        trt.BuilderFlag = enum.IntEnum("BuilderFlag", flags)
        net_flags = {"STRONGLY_TYPED": 1} if self.major >= 11 else {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}
        trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", net_flags)
        fake = self

        class Logger:
            INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

            def __init__(self, min_severity: int = 2) -> None:
                self.min_severity = min_severity

        trt.Logger = Logger
        trt.Builder = lambda logger: _FakeBuilder(fake, logger)
        trt.OnnxParser = lambda network, logger: _FakeParser(fake, network)
        trt.Runtime = lambda logger: _FakeRuntime(fake)
        return trt

    # -- helpers used by the builder
    def make_timing_cache(self, data: bytes) -> FakeTimingCache:
        raw = bytes(data)
        if not raw:
            return FakeTimingCache(self.version, 0)
        if not raw.startswith(TIMING_MAGIC):
            return FakeTimingCache(self.version, 0, valid=False)
        doc = json.loads(raw[len(TIMING_MAGIC) :])
        return FakeTimingCache(doc["version"], int(doc["entries"]), valid=doc["version"] == self.version)


class _FakeBuilderConfig:
    def __init__(self, fake: FakeTensorRT) -> None:
        self.fake = fake
        self.flags: set[str] = set()
        self.pool_limits: dict[str, int] = {}
        self.profiles: list[FakeProfile] = []
        self.timing_cache: FakeTimingCache | None = None

    def set_flag(self, flag: Any) -> None:
        if not isinstance(flag, self.fake.module.BuilderFlag):
            raise FakeContractError(f"set_flag needs a trt.BuilderFlag, got {flag!r}")
        self.flags.add(flag.name)

    def set_memory_pool_limit(self, pool: MemoryPoolType, pool_size: int) -> None:
        if not isinstance(pool, MemoryPoolType) or not isinstance(pool_size, int) or pool_size <= 0:
            raise FakeContractError(f"set_memory_pool_limit({pool!r}, {pool_size!r})")
        self.pool_limits[pool.name] = pool_size

    def add_optimization_profile(self, profile: FakeProfile) -> int:
        if not profile.shapes:
            raise FakeContractError("add_optimization_profile with an empty profile")
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, serialized_timing_cache: bytes) -> FakeTimingCache:
        return self.fake.make_timing_cache(serialized_timing_cache)

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        if not cache.valid and not ignore_mismatch:
            return False
        self.timing_cache = cache
        return True

    def get_timing_cache(self) -> FakeTimingCache:
        if self.timing_cache is None:
            raise FakeContractError("get_timing_cache before set_timing_cache")
        return self.timing_cache


class _FakeBuilder:
    def __init__(self, fake: FakeTensorRT, logger: Any) -> None:
        self.fake, self.logger = fake, logger

    def create_network(self, flags: int = 0) -> FakeNetwork:
        self.fake.calls.append("create_network")
        strong_bit = 1 << int(self.fake.module.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        strongly_typed = self.fake.always_strongly_typed or bool(flags & strong_bit)
        return FakeNetwork(flags=flags, strongly_typed=strongly_typed)

    def create_builder_config(self) -> _FakeBuilderConfig:
        return _FakeBuilderConfig(self.fake)

    def create_optimization_profile(self) -> FakeProfile:
        return FakeProfile()

    def build_serialized_network(
        self, network: FakeNetwork, config: _FakeBuilderConfig
    ) -> FakeHostMemory | None:
        fake = self.fake
        fake.calls.append("build_serialized_network")
        if not network.parsed:
            raise FakeContractError("build_serialized_network on a network no parser filled")
        if network.strongly_typed and "FP16" in config.flags:
            raise FakeContractError("BuilderFlag.FP16 is an API usage error on a strongly typed network")
        if len(config.profiles) != 1:
            raise FakeContractError(f"expected exactly one optimisation profile, got {len(config.profiles)}")
        profile = config.profiles[0].shapes
        for tensor in network.inputs:
            _check_profile_covers(tensor, profile)
        has_fp16 = _has_fp16(network.onnx_bytes)
        precision = (
            ("fp16" if has_fp16 else "fp32")
            if network.strongly_typed
            else ("fp16" if "FP16" in config.flags else "fp32")
        )
        loaded = config.timing_cache.entries if config.timing_cache else 0
        constrained = [layer.name for layer in network.layers if layer.precision == DataType.FLOAT]
        obeyed = {"OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS"} & config.flags
        fake.builds.append(
            BuildRecord(
                fake.version,
                network.strongly_typed,
                set(config.flags),
                precision,
                has_fp16,
                dict(profile),
                config.pool_limits.get("WORKSPACE"),
                loaded,
                threading.get_ident(),
                constrained if obeyed and precision == "fp16" else [],
            )
        )
        if config.timing_cache is not None:
            config.timing_cache = FakeTimingCache(fake.version, loaded + 1)
        doc = {
            "version": fake.version,
            "gpu": fake.gpu.name,
            "precision": precision,
            "onnx_b64": base64.b64encode(network.onnx_bytes).decode(),
            "io": {
                t.name: {"mode": mode, "dtype": int(t.dtype), "shape": list(t.shape)}
                for mode, ts in (("input", network.inputs), ("output", network.outputs))
                for t in ts
            },
            "profile": {k: [list(s) for s in v] for k, v in profile.items()},
        }
        return FakeHostMemory(PLAN_MAGIC + json.dumps(doc).encode())


def _check_profile_covers(tensor: FakeTensor, profile: dict[str, tuple[tuple[int, ...], ...]]) -> None:
    if tensor.name not in profile:
        raise FakeContractError(f"dynamic input {tensor.name} has no optimisation profile")
    for shape in profile[tensor.name]:
        fixed_dims = [(d, s) for d, s in zip(tensor.shape, shape, strict=False) if d != -1]
        if len(shape) != len(tensor.shape) or any(d != s for d, s in fixed_dims):
            raise FakeContractError(f"profile shape {shape} does not fit input {tensor.name} {tensor.shape}")


def _has_fp16(onnx_bytes: bytes) -> bool:
    model = onnx.load_from_string(onnx_bytes)
    return any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)


class _FakeParser:
    def __init__(self, fake: FakeTensorRT, network: FakeNetwork) -> None:
        self.fake, self.network = fake, network
        self.errors: list[ParserErrorRecord] = []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> FakeParserError:
        return FakeParserError(self.errors[index])

    def parse(self, model: bytes, path: str | None = None) -> bool:
        self.fake.calls.append("OnnxParser.parse")
        if self.network.parsed:
            raise FakeContractError("parse called twice on one network")
        try:
            proto = onnx.load_from_string(bytes(model))
        except Exception as exc:  # the real parser reports protobuf failures as an error, not a raise
            self.errors.append(ParserErrorRecord(f"Failed to parse the ONNX model: {exc}"))
            return False
        if not proto.graph.node:
            self.errors.append(ParserErrorRecord("the ONNX graph is empty"))
            return False
        for i, node in enumerate(proto.graph.node):
            if node.op_type not in SUPPORTED_OPS:
                self.errors.append(ParserErrorRecord(f"No importer registered for op: {node.op_type}", i))
        if self.errors:
            return False
        inits = {t.name for t in proto.graph.initializer}
        self.network.inputs = [_tensor(v) for v in proto.graph.input if v.name not in inits]
        self.network.outputs = [_tensor(v) for v in proto.graph.output]
        self.network.layers = [
            FakeLayer(self.network, node.name or f"{node.op_type}_{i}", node.op_type, list(node.output))
            for i, node in enumerate(proto.graph.node)
        ]
        self.network.onnx_bytes, self.network.parsed = bytes(model), True
        return True


def _tensor(value: onnx.ValueInfoProto) -> FakeTensor:
    tt = value.type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
    return FakeTensor(value.name, shape, DataType(_DTYPES[tt.elem_type]))


class _FakeRuntime:
    def __init__(self, fake: FakeTensorRT) -> None:
        self.fake = fake

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> FakeEngine | None:
        self.fake.calls.append("deserialize_cuda_engine")
        raw = bytes(serialized_engine)
        if not raw.startswith(PLAN_MAGIC):
            return None
        try:
            doc = json.loads(raw[len(PLAN_MAGIC) :])
        except ValueError:
            return None  # a truncated plan: the real runtime logs an error and returns None
        if doc["version"] != self.fake.version or doc["gpu"] != self.fake.gpu.name:
            return None
        return FakeEngine(self.fake, doc)


def install_fake_tensorrt(monkeypatch: pytest.MonkeyPatch, version: str, gpu: FakeGpu) -> FakeTensorRT:
    """Make ``import tensorrt`` return a fresh fake of ``version`` for this test."""
    fake = FakeTensorRT(version, gpu)
    monkeypatch.setitem(sys.modules, "tensorrt", fake.module)
    return fake
