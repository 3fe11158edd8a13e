"""Acknowledged outbox rows are deleted together while PUBACKs keep coming, and all of them by a
clean stop, so a restart re-sends none (a crash in between only re-sends, which QoS 1 allows)."""

from __future__ import annotations

import time
from pathlib import Path

from runtime.mqtt.outbox import NewMessage, Outbox
from runtime.mqtt.publisher import Ack, MqttPublisher
from runtime.mqtt.publisher_acks import DELETE_EVERY_S
from tests.mqtt.support import make_config, wait_until
from tests.support.broker import MosquittoBroker


def test_a_steady_stream_of_pubacks_is_deleted_in_few_transactions_and_a_stop_deletes_the_rest(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    cfg = make_config(broker, tmp_path)
    acks: list[Ack] = []
    pub = MqttPublisher(cfg, Outbox.from_config(cfg.outbox), on_acked=acks.append)
    pub.start()
    try:
        assert wait_until(lambda: pub.connected)
        commits: list[float] = []
        pub.outbox.fault_injection = lambda op: commits.append(time.monotonic())  # every COMMIT
        n, gap = 100, 0.005  # one batch's results every 5 ms for half a second
        for i in range(n):
            pub.enqueue([NewMessage(pub.topics.predictions, f'{{"n": {i}}}'.encode(), 1, False)])
            time.sleep(gap)
        assert wait_until(lambda: len(acks) == n, 10)
        assert wait_until(lambda: pub.outbox.depth == 0, 2)  # the last delete follows within 50 ms
        deletes = len(commits) - n  # each enqueue is one commit; the rest are deletes
        # one delete per PUBACK would be ~100; coalesced, about one per DELETE_EVERY_S of the stream
        assert 1 <= deletes <= 3 * (n * gap / DELETE_EVERY_S) + 5, deletes
    finally:
        pub.close(timeout=1.0)
    assert pub.outbox.depth == 0
    pub.outbox.close()
    with Outbox.from_config(cfg.outbox) as again:
        assert len(again) == 0  # nothing acknowledged is left to re-send
