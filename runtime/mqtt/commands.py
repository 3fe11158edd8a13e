"""Validation of messages on the command topic ``<prefix>/<device>/cmd``.

Commands are JSON objects with an ``action`` string, e.g. ``{"action": "reload"}``; what an
action does is up to the daemon's handler. Anyone allowed to publish on the topic can send
anything, so the parser is total: :func:`decode_command` returns a command or raises
:class:`~runtime.errors.DataError`, whatever the bytes (deep nesting, huge numbers, NaN, bad
UTF-8), and :func:`parse_command` turns every refusal into one rate-limited log line. A message
that escaped as an exception once ended paho's network thread and with it all event delivery
(paho's loop now runs on the MQTT worker, where an escape would end the worker's step).

Retained commands are refused: a retained ``reload`` would be replayed by the broker on every
reconnect.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from runtime.errors import DataError
from runtime.mqtt.config import ACTION_PATTERN
from runtime.mqtt.throttle import LogThrottle, clip

if TYPE_CHECKING:
    from runtime.mqtt.config import CommandsConfig

log = logging.getLogger(__name__)

_EXAMPLE = 'send a JSON object such as {"action": "reload"}'
#: the deepest nesting a command may have; real commands are flat objects
MAX_DEPTH = 16
DEFAULT_MAX_PAYLOAD_BYTES = 4096
log_throttle = LogThrottle(log)


class CommandError(DataError):
    """A message on the command topic that is not a usable command; ``kind`` keys the log throttle."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def decode_command(payload: bytes, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """The command document in ``payload``; raises ``CommandError`` (a ``DataError``) for anything else.

    Never raises another exception.
    """
    if len(payload) > max_bytes:
        raise CommandError(
            "size",
            f"command of {len(payload)} bytes exceeds mqtt.commands.max_payload_bytes={max_bytes}; "
            f"{_EXAMPLE}"
        )
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(
            "utf8", f"command is not UTF-8 ({exc.reason} at byte {exc.start}); {_EXAMPLE}") from None
    depth = _max_depth(text)
    if depth > MAX_DEPTH:
        raise CommandError(
            "depth", f"command nests {depth} levels deep (at most {MAX_DEPTH}); {_EXAMPLE}")
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, over-long integers, NaN, depth
        raise CommandError(
            "json", f"command is not valid JSON ({clip(str(exc), 120)}); {_EXAMPLE}") from None
    if not isinstance(doc, dict):
        raise CommandError(
            "type", f"command is a JSON {type(doc).__name__}, not an object; {_EXAMPLE}")
    action = doc.get("action")
    if not isinstance(action, str) or not ACTION_PATTERN.fullmatch(action):
        raise CommandError(
            "action",
            f"command has no valid \"action\" (got {clip(action, 60)}; 1-64 letters, digits, '_', '.' "
            f"or '-'); {_EXAMPLE}"
        )
    return doc


def parse_command(
    topic: str, payload: bytes, *, retained: bool, policy: CommandsConfig | None = None
) -> dict[str, Any] | None:
    """The command, or None (logged, at most once per kind every 10 s) when it is not to be run.

    Never raises: it runs inside paho's network loop (on the MQTT worker), where an exception
    would cut the connection.
    """
    if not payload:
        return None  # an empty message clears a retained command; nothing to do
    if retained:
        log_throttle.warning(
            "retained", "ignoring a retained command on %s; publish commands without the retain flag and "
            "clear it with an empty retained message", topic,
        )
        return None
    max_bytes = policy.max_payload_bytes if policy is not None else DEFAULT_MAX_PAYLOAD_BYTES
    try:
        doc = decode_command(payload, max_bytes)
    except CommandError as exc:
        log_throttle.warning(exc.kind, "ignoring a command on %s: %s", topic, exc)
        return None
    except Exception as exc:  # a bug in the parser must still not reach paho
        log_throttle.error("bug", "ignoring a command on %s that the parser failed on: %s", topic, clip(exc))
        return None
    if policy is not None and policy.allow is not None and doc["action"] not in policy.allow:
        log_throttle.warning(
            "refused", "ignoring command %s on %s: not in mqtt.commands.allow %s",
            clip(doc["action"], 70), topic, policy.allow,
        )
        return None
    return doc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a command")


def _max_depth(text: str) -> int:
    """The deepest bracket nesting outside strings; a cheap guard before the recursive parser."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest
