"""ONNX -> TensorRT engine through the recording fake of ``tensorrt``, for both API generations."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from runtime.artifact import read_engine_file, read_onnx_metadata, sha256_file
from runtime.backends.tensorrt.build import engine_from_onnx
from runtime.backends.tensorrt.cache import ensure_engine
from runtime.errors import BackendUnavailableError, ModelFileError, ParityError
from runtime.onnx_tools.fp16 import fp16_from_onnx
from runtime.onnx_tools.metadata_io import write_metadata_file
from runtime.onnx_tools.precision_sensitive import find_sensitive_nodes
from tests.fakes.fake_cuda import FakeGpu
from tests.fakes.fake_tensorrt import FakeTensorRT
from tests.support.model_files import TRT_VERSIONS, ExportCache

pytestmark = pytest.mark.fake_tensorrt
MakeTrt = Callable[[str], FakeTensorRT]
SAMPLE = (1, 28, 28)


@pytest.mark.parametrize("version", TRT_VERSIONS)
def test_fp16_build_follows_the_tensorrt_generation(
    version: str, make_fake_trt: MakeTrt, model_onnx: Path
) -> None:
    fake = make_fake_trt(version)
    engine = engine_from_onnx(model_onnx, precision="fp16")

    (build,) = fake.builds
    assert build.effective_precision == "fp16"
    if version.startswith("10.3"):
        # JetPack 6: weakly typed network from the FP32 ONNX, FP16 chosen by the builder flag
        assert not build.strongly_typed and not build.onnx_has_fp16
        assert build.flags == {"FP16", "OBEY_PRECISION_CONSTRAINTS"}
        # ... with the threshold means, sigmoids and logits held in FP32 by obeyed constraints
        sensitive = find_sensitive_nodes(onnx.load(str(model_onnx)))
        assert sensitive.abs_means and sensitive.sigmoids and sensitive.logits
        assert sorted(build.fp32_layers) == sorted(sensitive.all)
    else:
        # 10.12+ / 11: strongly typed, the FP16 ONNX carries the precision, no FP16 flag
        assert build.strongly_typed and "FP16" not in build.flags and build.onnx_has_fp16
        assert build.fp32_layers == []  # the FP16 ONNX itself keeps those nodes FP32
        twin = model_onnx.with_name("model.fp16.onnx")
        assert read_onnx_metadata(twin).export["fp16_gate"]["source_sha256"] == sha256_file(model_onnx)
    if version.startswith("11"):
        assert not hasattr(fake.module.BuilderFlag, "FP16")
    assert build.profile == {"input": ((1, *SAMPLE), (8, *SAMPLE), (32, *SAMPLE))}
    assert build.workspace_bytes == 1024 << 20

    # header round trip: the device learns everything from the engine file alone
    meta, info, blob = read_engine_file(engine)
    assert meta.to_json() == read_onnx_metadata(model_onnx).to_json()
    assert (info.tensorrt_version, info.gpu_name, info.compute_capability) == (version, fake.gpu.name, "8.7")
    assert (info.precision, info.profile, info.strongly_typed) == ("fp16", (1, 8, 32), build.strongly_typed)
    assert info.onnx_sha256 == sha256_file(model_onnx) and blob.startswith(b"FAKEPLAN")
    # the post-build gate ran the engine on the golden windows
    assert fake.executions and "execute_async_v3" in fake.calls


@pytest.mark.parametrize("version", ["10.3.0.30", "11.0.0.114"])
def test_fp32_build_uses_the_fp32_onnx_and_no_fp16_flag(
    version: str, make_fake_trt: MakeTrt, model_onnx: Path
) -> None:
    fake = make_fake_trt(version)
    engine = engine_from_onnx(model_onnx, precision="fp32", batch=(2, 4, 16), workspace_mb=256)
    (build,) = fake.builds
    assert build.effective_precision == "fp32" and "FP16" not in build.flags and not build.onnx_has_fp16
    assert build.profile["input"][2] == (16, *SAMPLE) and build.workspace_bytes == 256 << 20
    assert engine.name == "model.fp32.engine"


def test_timing_cache_is_loaded_saved_and_survives_corruption(
    make_fake_trt: MakeTrt, model_onnx: Path
) -> None:
    fake = make_fake_trt("10.3.0.30")
    cache = model_onnx.parent / "timing.cache"
    engine_from_onnx(model_onnx, timing_cache=cache)
    engine_from_onnx(model_onnx, timing_cache=cache)
    assert [b.timing_cache_entries_loaded for b in fake.builds] == [0, 1]
    cache.write_bytes(b"garbage from another TensorRT")
    engine_from_onnx(model_onnx, timing_cache=cache)
    assert fake.builds[-1].timing_cache_entries_loaded == 0
    assert cache.read_bytes().startswith(b"FAKETC01")


def test_engine_cache_hits_and_rebuilds_on_every_key_change(
    make_fake_trt: MakeTrt, fake_gpu: FakeGpu, model_onnx: Path
) -> None:
    fake = make_fake_trt("10.3.0.30")
    first = ensure_engine(model_onnx)
    assert ensure_engine(model_onnx) == first and len(fake.builds) == 1  # hit: no-op

    ensure_engine(model_onnx, batch=(1, 4, 8))  # new profile
    assert len(fake.builds) == 2 and read_engine_file(first)[1].profile == (1, 4, 8)
    write_metadata_file(
        model_onnx, read_onnx_metadata(model_onnx), training={"retrained": True}
    )  # new export
    ensure_engine(model_onnx, batch=(1, 4, 8))
    assert len(fake.builds) == 3 and read_engine_file(first)[1].onnx_sha256 == sha256_file(model_onnx)
    fake_gpu.name = "NVIDIA Jetson AGX Thor (fake)"  # another device
    ensure_engine(model_onnx, batch=(1, 4, 8))
    assert len(fake.builds) == 4
    upgraded = make_fake_trt("10.13.0.35")  # a JetPack upgrade
    ensure_engine(model_onnx, batch=(1, 4, 8))
    assert len(upgraded.builds) == 1 and read_engine_file(first)[1].tensorrt_version == "10.13.0.35"
    ensure_engine(model_onnx, batch=(1, 4, 8))
    assert len(upgraded.builds) == 1


def test_cache_never_overwrites_foreign_files_or_other_models(
    make_fake_trt: MakeTrt, model_onnx: Path, exports: ExportCache, tmp_path: Path
) -> None:
    make_fake_trt("10.3.0.30")
    bare = tmp_path / "bare.engine"
    bare.write_bytes(b"\x00serialized plan from trtexec" * 10)
    with pytest.raises(ModelFileError, match="not a drsn-edge engine"):
        ensure_engine(model_onnx, bare)
    assert bare.read_bytes().startswith(b"\x00serialized")

    other_onnx = tmp_path / "other.onnx"
    other_onnx.write_bytes(exports.onnx("drsn_cw_mnist").read_bytes())
    shared = tmp_path / "shared.engine"
    ensure_engine(other_onnx, shared)
    before = shared.read_bytes()
    with pytest.raises(ModelFileError, match=r"another model.*drsn_cw_mnist"):
        ensure_engine(model_onnx, shared)
    assert shared.read_bytes() == before


def test_an_unreadable_engine_of_ours_is_rebuilt(make_fake_trt: MakeTrt, model_onnx: Path) -> None:
    fake = make_fake_trt("10.3.0.30")
    engine = ensure_engine(model_onnx)
    engine.write_bytes(engine.read_bytes()[:20])  # magic intact, header cut
    assert ensure_engine(model_onnx) == engine and len(fake.builds) == 2
    read_engine_file(engine)


def test_post_build_gate_discards_a_wrong_engine(make_fake_trt: MakeTrt, model_onnx: Path) -> None:
    fake = make_fake_trt("10.13.0.35")
    fake.corrupt_outputs = True
    with pytest.raises(ParityError, match=r"tensorrt.*discarded"):
        engine_from_onnx(model_onnx)
    assert not model_onnx.with_name("model.fp16.engine").exists()


def test_parser_errors_name_the_operator(make_fake_trt: MakeTrt, model_onnx: Path, tmp_path: Path) -> None:
    make_fake_trt("10.3.0.30")
    model = onnx.load(str(model_onnx))
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    relu.op_type = "Elu"  # valid ONNX, unknown to the fake parser
    bad = tmp_path / "elu.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(ModelFileError, match=r"parser rejected.*Elu"):
        engine_from_onnx(bad)


def test_weak_tensorrt_given_the_fp16_file_builds_from_its_fp32_source(
    make_fake_trt: MakeTrt, model_onnx: Path, tmp_path: Path
) -> None:
    fake = make_fake_trt("10.3.0.30")
    fp16 = model_onnx.with_name("model.fp16.onnx")
    fp16_from_onnx(model_onnx, fp16)
    engine_from_onnx(fp16)
    assert not fake.builds[0].onnx_has_fp16 and "FP16" in fake.builds[0].flags
    lonely = tmp_path / "alone" / "model.fp16.onnx"
    lonely.parent.mkdir()
    lonely.write_bytes(fp16.read_bytes())
    with pytest.raises(ModelFileError, match="needs the FP32 export"):
        engine_from_onnx(lonely)


def test_missing_tensorrt_names_the_extra(monkeypatch: pytest.MonkeyPatch, model_onnx: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailableError, match=r"drsn-edge\[trt\].*JetPack"):
        engine_from_onnx(model_onnx)


def test_unmatched_layer_names_leave_the_build_unconstrained_with_a_warning(
    make_fake_trt: MakeTrt, model_onnx: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A parser that named every layer and tensor its own way: no constraints, no OBEY flag, a warning."""
    from runtime.backends.tensorrt.precision import pin_sensitive_layers

    fake = make_fake_trt("10.3.0.30")
    trt = fake.module
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(0)
    assert trt.OnnxParser(network, None).parse(model_onnx.read_bytes())
    for i, layer in enumerate(network.layers):
        layer.name = f"(Unnamed Layer* {i})"
        for t in range(layer.num_outputs):
            layer.get_output(t).name = f"(Unnamed tensor {i}.{t})"
    config = builder.create_builder_config()
    with caplog.at_level("WARNING"):
        assert pin_sensitive_layers(trt, network, config, model_onnx) == []
    assert config.flags == set() and not any(layer.precision_is_set for layer in network.layers)
    assert "only the parity gate guards" in caplog.text
