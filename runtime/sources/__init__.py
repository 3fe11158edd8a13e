"""Sample sources: where the daemon's vibration samples come from.

Every source is one file holding its config class and its :class:`~runtime.sources.base.Source`
subclass. :data:`SOURCES` maps a config's ``type`` to both, explicitly, so what exists does not
depend on import order; :data:`SourceConfig` is the discriminated union the daemon's config uses,
and :func:`create_source` builds the source a config describes.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from runtime.config_base import StrictModel
from runtime.sources.base import SOURCE_WIDE, SampleChunk, Source
from runtime.sources.mqtt_raw import MqttRawSource, MqttRawSourceConfig
from runtime.sources.replay import ReplaySource, ReplaySourceConfig
from runtime.sources.synthetic import SyntheticSource, SyntheticSourceConfig
from runtime.sources.udp import UdpSource, UdpSourceConfig

SOURCES: dict[str, tuple[type[StrictModel], type[Source[Any]]]] = {
    "synthetic": (SyntheticSourceConfig, SyntheticSource),
    "replay": (ReplaySourceConfig, ReplaySource),
    "mqtt_raw": (MqttRawSourceConfig, MqttRawSource),
    "udp": (UdpSourceConfig, UdpSource),
}

SourceConfig = Annotated[
    SyntheticSourceConfig | ReplaySourceConfig | MqttRawSourceConfig | UdpSourceConfig,
    Field(discriminator="type"),
]


def create_source(config: StrictModel) -> Source[Any]:
    """Build the source for a validated config (one of the :data:`SourceConfig` members)."""
    for config_cls, source_cls in SOURCES.values():
        if type(config) is config_cls:
            return source_cls(config)
    known = ", ".join(sorted(SOURCES))
    raise TypeError(f"{type(config).__name__} is not a source config; source types are {known}")


__all__ = [
    "SOURCES",
    "SOURCE_WIDE",
    "SampleChunk",
    "Source",
    "SourceConfig",
    "create_source",
]
