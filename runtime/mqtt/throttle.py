"""Rate-limited logging for messages that anyone on the network can trigger at will.

A broker that lets anyone publish to the command topic also lets anyone fill the daemon's log:
2,000 malformed messages must not become 2,000 log lines. :class:`LogThrottle` lets the first
message of each kind through, then at most one per interval, and says how many it held back.
"""

from __future__ import annotations

import logging
import threading
import time


class LogThrottle:
    """At most one log line per ``key`` every ``interval_s`` seconds; suppressed ones are counted."""

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0) -> None:
        self._log = logger
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, level: int, key: str, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless ``key`` was logged less than ``interval_s`` ago; True if logged."""
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -1e18) < self.interval_s:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            msg += f" ({held} similar messages suppressed in the last {self.interval_s:.0f} s)"
        self._log.log(level, msg, *args)
        return True

    def reset(self) -> None:
        """Forget what was logged (tests that read the log start from a clean slate)."""
        with self._lock:
            self._last.clear()
            self._held.clear()

    def warning(self, key: str, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, key, msg, *args)

    def error(self, key: str, msg: str, *args: object) -> bool:
        return self.log(logging.ERROR, key, msg, *args)


def clip(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, so a 10 MB string cannot become a 10 MB log line."""
    text = repr(value) if not isinstance(value, str) else repr(value[: limit + 1])
    return text if len(text) <= limit else text[: limit - 1] + "…"
