"""Sample sources: where the daemon's vibration samples come from.

Every source is one file holding its config class (a :class:`~runtime.sources.config.SourceConfigBase`)
and its :class:`~runtime.sources.base.Source` subclass. :data:`SOURCES` is the one row per source,
mapping a config's ``type`` to both, explicitly, so what exists does not depend on import order;
:data:`SourceConfig`, the discriminated union the daemon's config uses, derives from it, and
:func:`create_source` builds the source a config describes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, Union

from pydantic import Field

from runtime.sources.base import SOURCE_WIDE, ChunkBlock, SampleChunk, Source
from runtime.sources.config import SourceConfigBase
from runtime.sources.mqtt_raw import MqttRawSource, MqttRawSourceConfig
from runtime.sources.replay import ReplaySource, ReplaySourceConfig
from runtime.sources.synthetic import SyntheticSource, SyntheticSourceConfig
from runtime.sources.udp import UdpSource, UdpSourceConfig

#: source type -> (config class, source class); the only place a source is declared
SOURCES: dict[str, tuple[type[SourceConfigBase], type[Source[Any]]]] = {
    "synthetic": (SyntheticSourceConfig, SyntheticSource),
    "replay": (ReplaySourceConfig, ReplaySource),
    "mqtt_raw": (MqttRawSourceConfig, MqttRawSource),
    "udp": (UdpSourceConfig, UdpSource),
}

if TYPE_CHECKING:
    SourceConfig: TypeAlias = SourceConfigBase
else:
    SourceConfig = Annotated[
        Union[tuple(config for config, _ in SOURCES.values())],  # noqa: UP007 - built from the rows
        Field(discriminator="type"),
    ]


def create_source(config: SourceConfigBase) -> Source[Any]:
    """Build the source for a validated config (one of the :data:`SourceConfig` members)."""
    for config_cls, source_cls in SOURCES.values():
        if type(config) is config_cls:
            return source_cls(config)
    known = ", ".join(sorted(SOURCES))
    raise TypeError(f"{type(config).__name__} is not a source config; source types are {known}")


__all__ = [
    "SOURCES",
    "SOURCE_WIDE",
    "ChunkBlock",
    "SampleChunk",
    "Source",
    "SourceConfig",
    "SourceConfigBase",
    "create_source",
]
