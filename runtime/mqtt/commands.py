"""Validation of messages on the command topic ``<prefix>/<device>/cmd``.

Commands are JSON objects with an ``action`` string, e.g. ``{"action": "reload"}``; what an
action does is up to the daemon's handler. Retained commands are refused: a retained ``reload``
would be replayed by the broker on every reconnect.
"""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)

_EXAMPLE = 'send a JSON object such as {"action": "reload"}'


def parse_command(topic: str, payload: bytes, *, retained: bool) -> dict[str, Any] | None:
    """The command document, or None (logged) when the message is not a usable command."""
    if not payload:
        return None  # an empty message clears a retained command; nothing to do
    if retained:
        log.warning(
            "ignoring a retained command on %s; publish commands without the retain flag and clear it "
            "with an empty retained message", topic,
        )
        return None
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("ignoring a command on %s that is not JSON (%s); %s", topic, exc, _EXAMPLE)
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("action"), str) or not doc["action"]:
        log.warning("ignoring a command on %s without an \"action\" string; %s", topic, _EXAMPLE)
        return None
    return doc
