"""Config field types and checks that several sources share.

A sensor id ends up in MQTT topics (``<prefix>/<device>/<sensor>/state``), file names and
metric labels, so it is restricted to characters that are safe in all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import Field

from runtime.errors import ConfigError

SensorId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.\-]+$",
        description="Sensor id: letters, digits, '_', '.', '-' (it becomes an MQTT topic level).",
    ),
]

Pacing = Literal["realtime", "fast"]
PACING_DESCRIPTION = (
    "realtime: release each chunk when its last sample would have been measured; "
    "fast: as fast as the daemon consumes them (tests, benchmarks, offline evaluation)."
)


def require_unique(ids: Iterable[str], what: str = "sensor id") -> None:
    """Raise ConfigError when an id repeats, because two streams would feed one windower."""
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ConfigError(f"{what} {i!r} appears twice in one source; give every sensor its own id")
        seen.add(i)
