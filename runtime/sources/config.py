"""The base of every source's config class: what the daemon's config asks of any source.

``runtime.config`` checks that sensor ids are unique across sources and resolves relative paths
against the config file's folder. It asks each source through these methods rather than by
attribute name, so a source that names its list ``channels`` or ``devices`` cannot silently skip
either check.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path

from runtime.config_base import StrictModel


class SourceConfigBase(StrictModel, abc.ABC):
    """A source's options; subclasses add a ``type`` literal and their fields."""

    @abc.abstractmethod
    def sensor_ids(self) -> list[str]:
        """The sensor ids this source serves."""

    def paths(self) -> list[Path]:
        """Files this source reads (none unless it reads files)."""
        return []

    def resolve_paths(self, fix: Callable[[Path], Path]) -> None:
        """Replace each path of :meth:`paths` by ``fix(path)``; sources that read files override it."""
