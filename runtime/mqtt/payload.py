"""Compact JSON encoding of what the daemon publishes: typed payloads, or plain dicts.

The daemon's payloads are the models of :mod:`runtime.mqtt.messages` (built in
:mod:`runtime.results`), encoded by pydantic's serializer. Plain dicts remain for callers that
add fields on the way (the envelope monitor annotates events) and for tests: numpy scalars and
arrays are converted to plain numbers and lists here instead of failing deep inside ``json``;
anything else that JSON cannot express raises :class:`~runtime.errors.DataError` naming the
offending type.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic_core import PydanticSerializationError

from runtime.errors import DataError
from runtime.mqtt.messages import Payload


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


def encode_payload(payload: Payload | Mapping[str, Any], what: str) -> bytes:
    """Encode a typed payload (wire names, ``schema`` included) or a plain dict as compact JSON."""
    if not isinstance(payload, Payload):
        return encode_json(payload, what)
    try:
        return payload.model_dump_json(by_alias=True).encode("utf-8")
    except PydanticSerializationError as exc:  # an extra field holding something JSON cannot express
        raise DataError(f"{what} payload cannot be encoded as JSON: {exc}; pass plain numbers, strings, "
                        "lists and dicts") from exc
