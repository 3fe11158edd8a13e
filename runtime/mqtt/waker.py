"""A wake-up flag the MQTT worker can wait on together with the broker socket, in one ``select``.

The worker runs paho's network loop itself (no loop thread of paho's): it sleeps in ``select``
on the broker socket and this flag's socket at once, so one wait serves both news from the
daemon (a new outbox row, a state, a close) and bytes from the broker (a PUBACK, a command). A
:class:`threading.Event` cannot be selected on, which is why paho's own thread existed and every
message crossed two more threads. Semantics follow ``threading.Event``: :meth:`set` from any
thread, :meth:`clear` by the waiting thread before it looks for news, :meth:`wait` returns at
once while set.
"""

from __future__ import annotations

import contextlib
import select
import socket


class Waker:
    """A settable flag backed by a socket pair (``fileno`` is the end to select on for reading)."""

    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)
        self._set = False

    def set(self) -> None:
        """Raise the flag and wake a ``select`` on it (any thread; cheap when already raised)."""
        if self._set:  # a byte is on its way and the waiter has not cleared yet: it will see the news
            return
        self._set = True
        with contextlib.suppress(OSError):  # a full buffer already wakes the waiter; closed: nobody waits
            self._w.send(b"\0")

    def is_set(self) -> bool:
        return self._set

    def clear(self) -> None:
        """Lower the flag and drop the wake-up bytes (the waiting thread, before it looks for news).

        One ``recv``: a raised flag has sent one byte (a few when setters raced); bytes left over
        only make the next ``select`` return at once, and that wake drains them.
        """
        self._set = False
        with contextlib.suppress(OSError):  # BlockingIOError: nothing was sent
            self._r.recv(4096)

    def wait(self, timeout: float) -> bool:
        """Sleep until :meth:`set` or ``timeout`` seconds; whether the flag is raised."""
        if not self._set:
            with contextlib.suppress(OSError, ValueError):  # closed: return as after the timeout
                select.select([self._r], [], [], max(0.0, timeout))
        return self._set

    def fileno(self) -> int:
        return self._r.fileno()

    def close(self) -> None:
        self._r.close()
        self._w.close()
