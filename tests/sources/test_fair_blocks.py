"""Network sources hand over every frame already waiting as one block of chunks (the daemon windows
a block in one numpy pass), in the same round-robin order, with bad payloads reported and left out."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

from runtime.sources import ChunkBlock, SampleChunk
from runtime.sources.fair import FairIntake, FairQueue, frame_key
from runtime.sources.frames import encode_frame
from runtime.sources.intake import FrameIntake
from runtime.sources.udp import UdpSource, UdpSourceConfig

RATE = 1000.0


def _frame(sid: str, seq: int) -> bytes:
    return encode_frame(np.full(100, seq, np.float32), sample_rate=RATE, seq=seq, sensor_id=sid)


def test_get_ready_takes_what_is_waiting_in_turn_without_waiting() -> None:
    q: FairQueue[str] = FairQueue(capacity=16)
    for i in range(3):
        q.put("a", f"a{i}")
    q.put("b", "b0")
    assert [item for _, item in q.get_ready(3)] == ["a0", "b0", "a1"]
    assert [item for _, item in q.get_ready(10)] == ["a2"]
    assert q.get_ready(10) == [] and len(q) == 0


def test_waiting_frames_become_one_block_and_bad_ones_are_reported() -> None:
    blocks: list[ChunkBlock] = []
    errors: list[tuple[str, Exception]] = []
    intake = FrameIntake({"s1": RATE, "s2": RATE}, payload_format="binary", emit=lambda c: None,
                         report=lambda sid, exc: errors.append((sid, exc)))
    fair = FairIntake(intake, name="test-intake", emit_block=blocks.append)
    for seq in range(3):  # queued before the worker starts: all waiting at once
        for sid in ("s1", "s2"):
            fair.put(frame_key(_frame(sid, seq), "gw"), _frame(sid, seq), origin="gw")
    fair.put(("gw", None), b"garbage", origin="gw")
    fair.start()
    fair.stop()
    (block,) = blocks
    assert block.sensor_ids == ["s1", "s2", "s1", "s2", "s1", "s2"]
    assert block.seqs == [0, 0, 1, 1, 2, 2]
    assert [float(x[0]) for x in block.samples] == [0, 0, 1, 1, 2, 2]
    assert [sid for sid, _ in errors] == ["*"]


def test_the_udp_source_delivers_blocks_to_a_block_consumer() -> None:
    source = UdpSource(UdpSourceConfig.model_validate({
        "host": "127.0.0.1", "port": 0, "sensors": [{"id": f"s{i}", "sample_rate": RATE} for i in range(8)]}))
    blocks: list[ChunkBlock] = []
    singles: list[SampleChunk] = []
    got = threading.Event()

    def take(block: ChunkBlock) -> None:
        blocks.append(block)
        if sum(b.size for b in blocks) >= 8 * 5:
            got.set()

    source.start(singles.append, lambda sid, exc: None, take)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for seq in range(5):
                for i in range(8):
                    s.sendto(_frame(f"s{i}", seq), source.address)
        assert got.wait(10), f"got {sum(b.size for b in blocks)} of 40 chunks"
    finally:
        source.stop()
    assert not singles, "a block consumer gets no single chunks"
    for i in range(8):
        assert [q for b in blocks for sid, q in zip(b.sensor_ids, b.seqs, strict=True) if sid == f"s{i}"] == [
            0, 1, 2, 3, 4]


def test_put_many_drops_the_longest_queues_oldest_and_names_it() -> None:
    q: FairQueue[str] = FairQueue(capacity=4)
    victims = q.put_many([("flood", "f0"), ("flood", "f1"), ("flood", "f2"), ("calm", "c0"),
                          ("flood", "f3"), ("calm", "c1")])
    assert victims == ["flood", "flood"] and q.dropped == {"flood": 2}
    assert [item for _, item in q.get_ready(10)] == ["f2", "c0", "f3", "c1"]


def test_an_inline_intake_is_served_by_its_caller_in_turn_and_within_its_limit() -> None:
    blocks: list[ChunkBlock] = []
    intake = FrameIntake({"s1": RATE, "s2": RATE}, payload_format="binary", emit=lambda c: None,
                         report=lambda sid, exc: None)
    fair = FairIntake(intake, name="unused", emit_block=blocks.append, threaded=False)
    fair.start()  # no worker: nothing is served until the caller asks
    fair.put_many([(frame_key(_frame(sid, seq), "gw"), (_frame(sid, seq), "gw", None, 10.0 + seq))
                   for sid in ("s1", "s2") for seq in range(3)])
    assert fair.waiting == 6 and not blocks
    assert fair.serve_ready(4) == 4
    assert blocks[0].sensor_ids == ["s1", "s2", "s1", "s2"] and blocks[0].seqs == [0, 0, 1, 1]
    assert blocks[0].arrivals == [10.0, 10.0, 11.0, 11.0], "each chunk keeps its payload's arrival"
    fair.stop()  # serves the rest in the caller's thread
    assert [b.seqs for b in blocks] == [[0, 0, 1, 1], [2, 2]] and fair.waiting == 0


def test_an_inline_intake_without_a_block_consumer_stops_serving_at_its_budget() -> None:
    served: list[int] = []

    def slow(chunk: SampleChunk) -> None:
        served.append(chunk.seq)
        time.sleep(0.01)

    intake = FrameIntake({"s1": RATE}, payload_format="binary", emit=slow, report=lambda sid, exc: None)
    fair = FairIntake(intake, name="unused", threaded=False)
    for seq in range(10):
        fair.put(frame_key(_frame("s1", seq), "gw"), _frame("s1", seq), origin="gw")
    assert fair.serve_ready(budget_s=0.025) == len(served) < 10  # the socket gets its turn again
    assert served == list(range(len(served)))


def test_datagrams_that_wait_while_the_consumer_is_busy_arrive_as_one_block() -> None:
    """The UDP source drains its socket after each wake: frames that arrived meanwhile make one block,
    not one hand-over each."""
    source = UdpSource(UdpSourceConfig.model_validate({
        "host": "127.0.0.1", "port": 0, "sensors": [{"id": f"s{i}", "sample_rate": RATE} for i in range(8)]}))
    blocks: list[ChunkBlock] = []
    busy, release, done = threading.Event(), threading.Event(), threading.Event()

    def take(block: ChunkBlock) -> None:
        blocks.append(block)
        busy.set()
        release.wait(10)
        if sum(b.size for b in blocks) >= 1 + 8 * 4:
            done.set()

    source.start(lambda c: None, lambda sid, exc: None, take)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(_frame("s0", 0), source.address)
            assert busy.wait(10)
            for seq in range(1, 5):
                for i in range(8):
                    s.sendto(_frame(f"s{i}", seq), source.address)
            time.sleep(0.2)  # every datagram is in the socket's buffer before the consumer returns
            release.set()
            assert done.wait(10), [b.size for b in blocks]
    finally:
        release.set()
        source.stop()
    assert [b.size for b in blocks] == [1, 32]
    second = zip(blocks[1].sensor_ids, blocks[1].seqs, strict=True)
    assert [q for sid, q in second if sid == "s3"] == [1, 2, 3, 4]


def test_received_payloads_skip_the_queue_only_when_none_wait_and_a_block_takes_them_all() -> None:
    blocks: list[ChunkBlock] = []
    intake = FrameIntake({"s1": RATE, "s2": RATE}, payload_format="binary", emit=lambda c: None,
                         report=lambda sid, exc: None)
    fair = FairIntake(intake, name="unused", emit_block=blocks.append, threaded=False)
    assert fair.can_serve_now(2) and not fair.can_serve_now(10_000)  # more than one block: queued
    fair.serve_now([(_frame("s1", 0), "gw", None, 1.0), (_frame("s2", 0), "gw", None, 2.0)])
    assert [b.sensor_ids for b in blocks] == [["s1", "s2"]] and fair.waiting == 0
    fair.put(frame_key(_frame("s1", 1), "gw"), _frame("s1", 1), origin="gw")
    assert not fair.can_serve_now(1), "something waits: the newcomers queue behind it, in turn"
    chunks_only = FairIntake(intake, name="unused", threaded=False)
    assert not chunks_only.can_serve_now(1), "chunk by chunk is served within a time budget instead"


def test_put_many_drops_exactly_what_putting_one_at_a_time_would() -> None:
    """The heap over the longest queues gives the old rule's result: each item beyond capacity costs
    the then longest queue its oldest (the first such key on a tie)."""
    rng = np.random.default_rng(3)
    q: FairQueue[int] = FairQueue(capacity=12)
    ref: dict[str, list[int]] = {}  # the rule, item by item
    dropped: list[str] = []
    n = 0
    for _ in range(60):
        items = [(f"k{int(rng.integers(0, 4)) if rng.random() < 0.6 else 0}", n + j)
                 for j in range(int(rng.integers(1, 9)))]
        n += len(items)
        for key, item in items:
            ref.setdefault(key, []).append(item)
            if sum(map(len, ref.values())) > q.capacity:
                victim = max(ref, key=lambda k: len(ref[k]))
                ref[victim].pop(0)
                dropped.append(victim)
                if not ref[victim]:
                    del ref[victim]
        got = q.put_many(list(items))
        assert sorted(got) == sorted(dropped[len(dropped) - len(got):])
        if rng.random() < 0.3:  # serve a few in turn, as the source does between drains
            for key, item in q.get_ready(int(rng.integers(1, 5))):
                assert ref[str(key)].pop(0) == item
                if not ref[str(key)]:
                    del ref[str(key)]
    rest: dict[str, list[int]] = {}
    for key, item in q.get_ready(1000):
        rest.setdefault(str(key), []).append(item)
    assert rest == ref and len(q) == 0


def test_udp_blocks_carry_each_datagrams_arrival_from_the_kernel() -> None:
    """The arrival is when the datagram reached the socket, not when the busy source read it: a
    datagram that waited while the consumer was busy keeps its earlier stamp."""
    source = UdpSource(UdpSourceConfig.model_validate({
        "host": "127.0.0.1", "port": 0, "sensors": [{"id": "s0", "sample_rate": RATE}]}))
    seen: list[tuple[ChunkBlock, float]] = []
    busy, release, done = threading.Event(), threading.Event(), threading.Event()

    def take(block: ChunkBlock) -> None:
        seen.append((block, time.monotonic()))
        busy.set()
        release.wait(10)
        if sum(b.size for b, _ in seen) >= 2:
            done.set()

    source.start(lambda c: None, lambda sid, exc: None, take)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(_frame("s0", 0), source.address)
            assert busy.wait(10)
            sent = time.monotonic()
            s.sendto(_frame("s0", 1), source.address)
            time.sleep(0.3)  # the second datagram waits in the socket while the consumer is busy
            release.set()
            assert done.wait(10)
    finally:
        release.set()
        source.stop()
    (first, _), (second, read) = seen
    assert first.arrivals is not None and second.arrivals is not None
    (arrival,) = second.arrivals
    assert sent - 0.05 <= arrival <= read
    assert read - arrival >= 0.25, "the wait in the socket counts"
