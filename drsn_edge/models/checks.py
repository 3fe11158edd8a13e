"""Argument checks shared by the networks and the registry.

Model options arrive from command lines, YAML files and checkpoints (where JSON has turned
tuples into lists), so every constructor validates them up front and names the bad option and a
valid value, instead of failing deep inside torch with a shape error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from runtime.errors import ConfigError

log = logging.getLogger(__name__)

LAYOUTS: dict[int, str] = {1: "NCW", 2: "NCHW"}


def check_dims(dims: Any) -> int:
    """Only 1-D signals and 2-D images are supported; anything else is a configuration mistake."""
    if isinstance(dims, bool) or dims not in LAYOUTS:
        raise ConfigError(f"dims={dims!r} is not supported; use dims=1 for signals (N, C, L) "
                          "or dims=2 for images (N, C, H, W)")
    return int(dims)


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; bools and fractional numbers are rejected."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def spatial_size(name: str, value: Any, dims: int) -> tuple[int, ...]:
    """A spatial input size: one int per axis, or a single int used for every axis (square images)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value] * dims
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != dims:
        raise ConfigError(f"{name} must be {dims} positive integer(s) for a {dims}-D model, got {value!r}")
    return tuple(positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))
