"""One row per plugin: everything about a backend or a source derives from its registry row."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import pytest
from pydantic import Field, TypeAdapter

from runtime import backends
from runtime.backends import AutoBackendConfig, BackendConfig, backend_class, resolve_kind
from runtime.backends.base import Backend
from runtime.backends.registry import BACKEND_ROWS
from runtime.config import validate_config_dict
from runtime.errors import BackendUnavailableError, ConfigError
from runtime.sources import SOURCES, SourceConfig
from runtime.sources.config import SourceConfigBase

BACKEND_ADAPTER: TypeAdapter[Any] = TypeAdapter(BackendConfig)


@pytest.mark.parametrize("row", BACKEND_ROWS, ids=lambda r: r.name)
def test_each_backend_row_gives_its_config_union_member_auto_field_and_class(row: Any) -> None:
    assert row.config.model_fields["type"].default == row.name
    assert isinstance(BACKEND_ADAPTER.validate_python({"type": row.name}), row.config)
    auto = AutoBackendConfig()
    assert isinstance(getattr(auto, row.name), row.config)
    assert AutoBackendConfig.model_fields[row.name].description
    cls = backend_class(row.name)
    assert issubclass(cls, Backend) and f"{cls.__module__}:{cls.__name__}" == row.implementation


@pytest.mark.parametrize("row", BACKEND_ROWS, ids=lambda r: r.name)
def test_a_missing_package_names_the_rows_extra(row: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # the package's presence is the external boundary: report every package as absent
    monkeypatch.setattr(backends, "is_installed", lambda package: False)
    with pytest.raises(BackendUnavailableError, match=rf"drsn-edge\[{row.extra}\]") as err:
        backends.require(row.name)
    assert row.package in str(err.value)


def test_auto_prefers_rows_in_order_and_falls_back_to_the_last_that_runs_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed: set[str] = set()
    monkeypatch.setattr(backends, "is_installed", lambda package: package in installed)
    onnx_rows = [row for row in BACKEND_ROWS if ".onnx" in row.suffixes]
    assert [r.name for r in onnx_rows] == ["tensorrt", "onnxruntime"]
    assert resolve_kind("m.onnx") == "onnxruntime"  # nothing installed: the fallback names its extra
    installed.add("onnxruntime")
    assert resolve_kind("m.onnx") == "onnxruntime"
    installed.add("tensorrt")
    assert resolve_kind("m.onnx") == "tensorrt"
    with pytest.raises(ConfigError, match="ONNX Runtime cannot run"):
        resolve_kind("m.plan", "onnxruntime")


def test_the_source_union_is_the_rows() -> None:
    members = get_args(get_args(SourceConfig)[0])
    assert members == tuple(config for config, _ in SOURCES.values())
    assert all(issubclass(config, SourceConfigBase) for config in members)


def test_a_source_config_must_say_its_sensor_ids() -> None:
    """The daemon's config checks ids and paths through methods, so a source cannot skip them by
    naming its list differently: a config class without ``sensor_ids`` cannot even be created."""

    class Devices(SourceConfigBase):
        type: Literal["devices"] = Field("devices", description="test")
        devices: list[str] = Field(default_factory=list, description="test")

    with pytest.raises(TypeError, match="sensor_ids"):
        Devices()


def test_ids_are_unique_across_sources_and_replay_paths_resolve(tmp_path: Path) -> None:
    synthetic = {"type": "synthetic", "sensors": [{"id": "pump", "condition": "normal"}]}
    replay = {"type": "replay", "files": [{"id": "fan", "path": "rec/fan.wav"}]}
    cfg = validate_config_dict({"model": "m.onnx", "sources": [synthetic, replay]}, base_dir=tmp_path)
    assert cfg.sources[1].paths() == [tmp_path / "rec" / "fan.wav"]
    assert [s.sensor_ids() for s in cfg.sources] == [["pump"], ["fan"]]
    replay["files"] = [{"id": "pump", "path": "rec/pump.wav"}]
    with pytest.raises(ConfigError, match="'pump' appears in sources\\[0\\] and sources\\[1\\]"):
        validate_config_dict({"model": "m.onnx", "sources": [synthetic, replay]}, base_dir=tmp_path)
