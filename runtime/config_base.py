"""Base class for every configuration model.

Typos in a config file must fail loudly before anything starts, so every model forbids extra
keys. Each concrete config class lives beside the code it configures (a source, a backend, the
MQTT publisher) and is assembled into the daemon's config in :mod:`runtime.config`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys and validates on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
