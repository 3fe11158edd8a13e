"""The worker's wake-up flag: set from any thread, seen by select, cleared before looking for news."""

from __future__ import annotations

import select
import threading
import time

from runtime.mqtt.waker import Waker


def test_set_wakes_a_select_and_clear_lowers_the_flag() -> None:
    w = Waker()
    assert not w.wait(0.0) and not select.select([w], [], [], 0.0)[0]
    threading.Timer(0.05, w.set).start()
    t0 = time.monotonic()
    assert select.select([w], [], [], 5.0)[0] == [w] and time.monotonic() - t0 < 4.0
    assert w.is_set() and w.wait(5.0)  # stays raised until cleared
    w.clear()
    assert not w.is_set() and not select.select([w], [], [], 0.0)[0]  # the byte was drained
    w.close()


def test_bytes_left_by_racing_setters_wake_once_more_and_are_drained_then() -> None:
    w = Waker()
    for _ in range(3):  # setters that raced a clear: several bytes for one raised flag
        w._set = False
        w.set()
    w.clear()
    assert not select.select([w], [], [], 0.0)[0]  # one recv took every byte
    w.close()
    w.clear()  # after the close (a publish after the publisher stopped): nothing raises
    w.set()
    assert w.wait(0.0) is True
    idle = Waker()
    assert not idle.wait(0.01)  # nobody set it: the timeout passes
    idle.close()
