"""Compact JSON encoding of the dicts the daemon publishes.

The daemon builds payloads from numpy results, so numpy scalars and arrays are converted to plain
numbers and lists here instead of failing deep inside ``json``; anything else that JSON cannot
express raises :class:`~runtime.errors.DataError` naming the offending type.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

from runtime.errors import DataError


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return obj.tolist()
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def encode_json(payload: Mapping[str, Any], what: str) -> bytes:
    """Encode ``payload`` as compact UTF-8 JSON; ``what`` names it in the error message."""
    try:
        text = json.dumps(payload, separators=(",", ":"), default=_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        bad = [k for k, v in payload.items() if isinstance(v, float) and not math.isfinite(v)]
        hint = f" (non-finite numbers in {bad})" if bad else ""
        raise DataError(
            f"{what} payload cannot be encoded as JSON{hint}: {exc}; pass plain numbers, strings, "
            "lists and dicts"
        ) from exc
    return text.encode("utf-8")
