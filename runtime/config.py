"""The daemon's configuration: one typed object, loaded from YAML or TOML, validated before start.

Each part's config class lives beside the code it configures (sources, backends, MQTT, fault
state); this module assembles them. Strings may reference environment variables as ``${NAME}``
or ``${NAME:-default}``, so secrets such as the broker password stay out of the file. Relative
paths (model files, the outbox) are resolved against the config file's folder.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from runtime.backends import AutoBackendConfig, BackendConfig
from runtime.config_base import StrictModel
from runtime.diagnostics.config import DiagnosticsConfig
from runtime.errors import ConfigError
from runtime.fault_state_config import FaultStateConfig
from runtime.mqtt.config import MqttConfig
from runtime.novelty.sensor import BaselineConfig, NoveltyConfig
from runtime.sources import SourceConfig

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class BatchingConfig(StrictModel):
    """How windows from many sensors are grouped into one backend call."""

    max_batch: int = Field(32, ge=1, le=4096, description="Most windows per backend call.")
    max_wait_ms: float = Field(
        5.0, ge=0, description="Longest a window waits for others to fill a batch, counted from the "
        "arrival of its last sample (for UDP the socket's receive time); bounds the latency batching adds."
    )
    max_queue: int = Field(
        4096, ge=1, description="Windows queued for inference; when full the oldest window of the sensor "
        "with the most queued is dropped and counted per sensor (drsn_edge_windows_dropped_total{sensor})."
    )


class SensorOverride(StrictModel):
    """Per-sensor settings that differ from the daemon-wide ones."""

    model: Path | None = Field(None, description="A different model file for this sensor.")
    hop: int | None = Field(
        None, gt=0, description="Hop between windows in model samples (default: the model's)."
    )
    fault_state: FaultStateConfig | None = Field(
        None, description="Different smoothing/hysteresis for this sensor."
    )
    enabled: bool = Field(True, description="False ignores this sensor's samples.")
    diagnostics: DiagnosticsConfig | None = Field(
        None, description="Envelope evidence for this sensor's bearing (docs/diagnostics.md)."
    )
    novelty: NoveltyConfig | None = Field(
        None, description="Different novelty settings for this sensor (docs/novelty.md)."
    )
    baseline: BaselineConfig | None = Field(
        None, description="Learn this machine's own healthy baseline, then report drift as the state "
        "anomalous (needs state_dir and a calibrated model; docs/novelty.md)."
    )


class MetricsConfig(StrictModel):
    """Prometheus exporter."""

    prometheus_port: int | None = Field(
        None, ge=0, le=65535,
        description="Serve Prometheus metrics on this port (0: any free port; None: off).",
    )
    prometheus_addr: str = Field("0.0.0.0", description="Address the Prometheus exporter binds to.")


class LoggingConfig(StrictModel):
    """Log output of the daemon."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe level logged."
    )
    format: Literal["text", "json"] = Field(
        "text", description="text for people, json (one object per line) for journald/Loki/Elasticsearch."
    )


#: a novelty flag must last this long by default: the windows straddling a sudden change (a fault
#: stepping in) are briefly unlike every training window; a machine that is unfamiliar stays so
DEFAULT_NOVELTY_MIN_DURATION_S = 1.0


class DaemonConfig(StrictModel):
    """Everything `drsn-edge run` needs; see `drsn-edge validate-config --reference`."""

    model: Path = Field(
        ..., description="Model file (.onnx with drsn-edge metadata, or a drsn-edge .engine)."
    )
    backend: BackendConfig = Field(
        default_factory=AutoBackendConfig,
        description="Inference backend; auto picks TensorRT when installed.",
    )
    sources: list[SourceConfig] = Field(..., min_length=1, description="Where samples come from.")
    sensors: dict[str, SensorOverride] = Field(
        default_factory=dict, description="Per-sensor overrides, by sensor id."
    )
    fault_state: FaultStateConfig = Field(
        default_factory=FaultStateConfig, description="How window predictions become a fault state."
    )
    novelty: NoveltyConfig = Field(
        default_factory=lambda: NoveltyConfig(
            threshold="p99.9", min_duration_s=DEFAULT_NOVELTY_MIN_DURATION_S
        ),
        description="When a sensor's windows are unlike the model's training data (state unfamiliar). "
        "Without this block: on at p99.9 with min_duration_s 1 for a model that carries novelty "
        "statistics (off, with one warning, for one that does not); {threshold: off} turns it off. "
        "Figures behind the default: docs/novelty.md.",
    )
    state_dir: Path | None = Field(
        None, description="Folder of the daemon's learned state (baselines/<sensor>.json); needed by "
        "sensors.<id>.baseline. Baselines found there (e.g. from `drsn-edge baseline`) are scored."
    )
    batching: BatchingConfig = Field(
        default_factory=BatchingConfig, description="Cross-sensor micro-batching."
    )
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="Broker connection, topics and outbox.")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Prometheus exporter.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Log level and format.")
    exit_when_sources_finish: bool = Field(
        False, description="Stop the daemon once every finite source (e.g. a replay without loop) has ended."
    )
    prediction_qos: Literal[0, 1] = Field(
        0,
        description="QoS of the per-window predictions of mqtt.publish_predictions. 0: sent only while "
        "connected, never stored. 1: each goes through the outbox like an event and leaves it on the "
        "broker's PUBACK (one SQLite write per batch); they share mqtt.outbox.max_messages with the "
        "events, so size the outbox for the outage to ride out (64 sensors fill 100,000 rows in about "
        "a minute) or the drop policy will discard events too.",
    )

    @model_validator(mode="after")
    def _unique_sensors(self) -> DaemonConfig:
        seen: dict[str, int] = {}
        for i, src in enumerate(self.sources):
            for sid in src.sensor_ids():
                if sid in seen:
                    raise ValueError(f"sensor id {sid!r} appears in sources[{seen[sid]}] and sources[{i}]; "
                                     "sensor ids must be unique per daemon")
                seen[sid] = i
        unknown = sorted(set(self.sensors) - set(seen))
        if unknown:
            raise ValueError(f"sensors {unknown} have overrides but no source serves them; check the ids")
        learning = sorted(sid for sid, ov in self.sensors.items() if ov.baseline is not None)
        if learning and self.state_dir is None:
            raise ValueError(f"sensors {learning} learn a baseline but state_dir is not set; set state_dir "
                             "to a folder the daemon may write (baselines survive restarts there)")
        return self


def substitute_env(text: str, env: dict[str, str] | None = None) -> str:
    """Replace ``${NAME}`` / ``${NAME:-default}``; a missing variable without default is an error."""
    env = dict(os.environ) if env is None else env

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"config references ${{{name}}} but the environment has no {name}; "
                          f"export it or write ${{{name}:-default}}")

    return _ENV.sub(repl, text)


def parse_config_text(text: str, suffix: str) -> dict[str, Any]:
    """Parse YAML (.yaml/.yml), TOML (.toml) or JSON (.json) into a dict."""
    try:
        if suffix in (".yaml", ".yml"):
            data = _load_yaml(text)
        elif suffix == ".toml":
            data = _load_toml(text)
        elif suffix == ".json":
            data = json.loads(text, object_pairs_hook=_unique_json_keys)
        else:
            raise ConfigError(f"config files end in .yaml, .yml, .toml or .json, not {suffix!r}")
    except ConfigError:
        raise
    except RecursionError as exc:
        raise ConfigError(f"config is nested too deeply to parse as {suffix.lstrip('.').upper()}; "
                          "a daemon config is a few levels deep") from exc
    except Exception as exc:  # each parser has its own error types (YAMLError, TOMLDecodeError, ...)
        raise ConfigError(f"config is not valid {suffix.lstrip('.').upper()}: {_clip(str(exc))}") from exc
    if not isinstance(data, dict):
        raise ConfigError("config must be a mapping of settings at the top level")
    return data


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _unique_json_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: a key given twice is an error (json's default keeps the last silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"config key {_clip(key, 80)!r} appears twice in one mapping; remove one "
                              "(only the last would take effect)")
        out[key] = value
    return out


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate keys (PyYAML keeps the last one silently)."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when PyYAML has it: faster

    class UniqueKeyLoader(base):  # type: ignore[misc,valid-type]
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        own = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
        loader.flatten_mapping(node)  # merged (<<) entries come first; the mapping's own may override them
        merged = len(node.value) - own
        out: dict[Any, Any] = {}
        explicit: set[Any] = set()
        for i, (key_node, value_node) in enumerate(node.value):
            key = loader.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError as exc:
                raise ConfigError(f"config line {key_node.start_mark.line + 1}: a mapping key must be "
                                  "a plain value, not a list or mapping") from exc
            if i >= merged and key in explicit:
                raise ConfigError(
                    f"config line {key_node.start_mark.line + 1}: key {_clip(str(key), 80)!r} appears "
                    f"twice in one mapping (first on line {_first_line(node, key_node, loader) + 1}); "
                    "remove one: only the last would take effect"
                )
            if i >= merged:
                explicit.add(key)
            out[key] = loader.construct_object(value_node, deep=deep)
        return out

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=UniqueKeyLoader)


def _first_line(node: Any, dup: Any, loader: Any) -> int:
    """Line of the first occurrence of the duplicated key (for the error message)."""
    want = loader.construct_object(dup)
    for key_node, _ in node.value[::-1]:
        if key_node is not dup and loader.construct_object(key_node) == want:
            return int(key_node.start_mark.line)
    return int(dup.start_mark.line)


def _load_toml(text: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10 (JetPack 6)
        try:
            import tomli as tomllib
        except ImportError as exc:
            raise ConfigError("TOML configs on Python 3.10 need `pip install tomli`; or use YAML") from exc
    return tomllib.loads(text)


def load_config(path: str | Path, env: dict[str, str] | None = None) -> DaemonConfig:
    """Read, substitute, validate; relative paths are taken relative to the config file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {p} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                          "save it as UTF-8") from exc
    except OSError as exc:
        raise ConfigError(f"config file {p} cannot be read ({exc.strerror}); check its permissions") from exc
    data = parse_config_text(substitute_env(text, env), p.suffix.lower())
    return validate_config_dict(data, base_dir=p.resolve().parent, source=str(p))


def validate_config_dict(
    data: dict[str, Any], base_dir: Path | None = None, source: str = "config"
) -> DaemonConfig:
    try:
        cfg = DaemonConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source} is invalid:\n{format_errors(exc)}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{source} is nested too deeply to validate; check its structure") from exc
    if base_dir is not None:
        _resolve_paths(cfg, base_dir)
    return cfg


def format_errors(exc: ValidationError) -> str:
    """One line per problem: the dotted location and pydantic's message."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  - {_clip(loc, 200)}: {_clip(err['msg'])}")
    return "\n".join(lines)


def _resolve_paths(cfg: DaemonConfig, base: Path) -> None:
    def fix(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    cfg.model = fix(cfg.model)
    for ov in cfg.sensors.values():
        if ov.model is not None:
            ov.model = fix(ov.model)
    cfg.mqtt.outbox.path = fix(cfg.mqtt.outbox.path)
    if cfg.state_dir is not None:
        cfg.state_dir = fix(cfg.state_dir)
    for src in cfg.sources:
        src.resolve_paths(fix)
