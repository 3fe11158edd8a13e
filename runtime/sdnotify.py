"""systemd's notify protocol (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``) without a dependency.

With ``Type=notify`` and ``WatchdogSec=`` in the unit, systemd passes ``NOTIFY_SOCKET`` (a unix
datagram socket, ``@`` meaning the abstract namespace) and ``WATCHDOG_USEC``. The daemon sends
``WATCHDOG=1`` only while its own health check passes, so a daemon that can no longer deliver
(the MQTT worker gone, connections stalling) is killed and restarted by systemd even if its
main loop still runs. Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends notifications to the service manager named in the environment, if any."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = ("\0" + raw[1:]) if raw.startswith("@") else (raw or None)
        self.watchdog_s = _watchdog_seconds(env)
        self._next_ping = 0.0
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, state: str) -> bool:
        """Send one notification; False (logged once) if there is no socket or it cannot be reached."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                # never block: a reader that stopped reading must not stall the daemon's tick
                sock.sendto(state.encode(), socket.MSG_DONTWAIT, self.address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify systemd at NOTIFY_SOCKET (%s); is the unit Type=notify?", exc)
            return False
        return True

    def ready(self) -> bool:
        return self.send("READY=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def ping(self, now: float | None = None) -> bool:
        """``WATCHDOG=1`` at most every half watchdog interval; call it only when healthy."""
        if self.watchdog_s is None:
            return False
        now = time.monotonic() if now is None else now
        if now < self._next_ping:
            return False
        self._next_ping = now + self.watchdog_s / 2
        return self.send("WATCHDOG=1")


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """The watchdog interval systemd asked for, if it is meant for this process."""
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None
