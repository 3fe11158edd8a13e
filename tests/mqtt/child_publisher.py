"""A real publisher in a child process, for tests that kill it with SIGKILL.

Usage: ``python -m tests.mqtt.child_publisher <config.json> <events> [wait] [batch]``. It starts a
publisher, publishes one state and ``<events>`` events, with ``wait`` waits (up to 5 s) until the
broker acknowledged them all, prints ``READY <outbox depth>`` and then sleeps until killed. With
``batch`` each event goes out as an inference batch does: the event and a results message
(``<prefix>/<device>/predictions``, ``{"n": i}``) in one :meth:`MqttPublisher.publish_batch`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from runtime.mqtt.config import MqttConfig
from runtime.mqtt.outbox import NewMessage, Outbox
from runtime.mqtt.publisher import MqttPublisher


def main(config_path: str, events: int, wait: bool, batch: bool = False) -> None:
    cfg = MqttConfig.model_validate_json(Path(config_path).read_text())
    pub = MqttPublisher(cfg, Outbox.from_config(cfg.outbox))
    pub.start()
    pub.publish_state("spindle", {"state": "healthy", "class": "normal", "confidence": 0.99})
    for i in range(events):
        if batch:
            result = NewMessage(pub.topics.predictions, f'{{"n": {i}}}'.encode(), 1, False)
            pub.publish_batch([("spindle", {"state": "fault", "n": i})], [result])
        else:
            pub.publish_event("spindle", {"state": "fault", "n": i})
    deadline = time.monotonic() + 5.0
    while wait and time.monotonic() < deadline and (pub.outbox.depth or not pub.connected):
        time.sleep(0.01)
    print(f"READY {pub.outbox.depth}", flush=True)
    while True:
        time.sleep(1.0)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), "wait" in sys.argv[3:], "batch" in sys.argv[3:])
