"""Rate-limited logging for errors that a hostile or broken input can repeat thousands of times a second.

A flood of malformed messages, or a model that fails every batch, must be visible in the log
without drowning it: 2,000 bad messages once produced 52,000 lines of tracebacks. A
:class:`LogThrottle` writes the first occurrence of each kind (with its traceback, when asked),
then at most one line per kind every ``every_s`` seconds, saying how many were left out.
Counting every occurrence is the metrics' job; the log only has to say that it is happening.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class LogThrottle:
    """At most one line per key every ``every_s`` seconds; the suppressed ones are counted."""

    def __init__(self, logger: logging.Logger, every_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, key: str, level: int, msg: str, *args: object, exc_info: bool = False) -> bool:
        """Log ``msg % args`` unless ``key`` was logged less than ``every_s`` ago; True when written.

        A traceback (``exc_info``) is written only with the first line of a key: the later lines
        of the same kind would repeat it.
        """
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            skipped = self._suppressed.pop(key, 0)
        if skipped:
            msg = f"{msg} (and {skipped} more like it in the last {self.every_s:g} s)"
        self.logger.log(level, msg, *args, exc_info=exc_info and last is None)
        return True

    def suppressed(self, key: str) -> int:
        """Occurrences of ``key`` not written since its last line."""
        with self._lock:
            return self._suppressed.get(key, 0)
