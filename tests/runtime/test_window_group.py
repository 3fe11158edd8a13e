"""WindowGroup.push_block: many sensors' chunks windowed together give exactly the windows, counts
and errors each sensor's own windower gives chunk by chunk (gaps, NaN, resampling, odd hops)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from runtime.errors import DataError
from runtime.signals.normalize import normalize_windows
from runtime.window_block import WindowBlock
from runtime.window_group import SMALL_BLOCK, WindowGroup
from runtime.windowing import SensorWindower, Window
from tests.runtime.tiny_models import make_metadata

WINDOW, RATE = 64, 1000.0


class FakeClock:
    """A monotonic clock the test advances (the windower stamps each push with it)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _group_of(meta: object, hop: int, rates: list[float], clock: FakeClock,
              normalize: bool = False) -> list[SensorWindower]:
    first = SensorWindower("s0", rates[0], meta, hop=hop, normalize=normalize, clock=clock,  # type: ignore[arg-type]
                           wall_clock=lambda: 5.0)
    rest = [SensorWindower(f"s{i}", r, meta, hop=hop, normalize=normalize, group=first.group)  # type: ignore[arg-type]
            for i, r in enumerate(rates[1:], start=1)]
    return [first, *rest]


def _by_sensor(blocks: list[WindowBlock]) -> dict[str, list[Window]]:
    out: dict[str, list[Window]] = {}
    for b in blocks:
        for w in b.windows():
            out.setdefault(w.sensor_id, []).append(w)
    return out


@pytest.mark.parametrize("hop", [16, 64, 100])
@pytest.mark.parametrize(("seed", "resampled", "normalize"), [(0, True, False), (1, True, True),
                                                              (2, False, False), (3, False, True)])
def test_a_block_gives_what_each_sensor_gives_alone(hop: int, seed: int, resampled: bool,
                                                    normalize: bool) -> None:
    """Random chunk sizes (often all alike, as in a replay), a sequence jump, NaN chunks, a
    resampled sensor: every window (data, index, seq, times) and every count is the same, bit for
    bit also when the block is normalised in place."""
    rng = np.random.default_rng(seed)
    meta = make_metadata(WINDOW, hop=hop, rate=RATE)
    # s2 resampled: the one-chunk path every time, beside the others' block path
    rates = [RATE, RATE, 2 * RATE if resampled else RATE, RATE, RATE]
    clock = FakeClock()
    grouped = _group_of(meta, hop, rates, clock, normalize)
    alone = [SensorWindower(f"s{i}", r, meta, hop=hop, normalize=normalize, clock=clock,
                            wall_clock=lambda: 5.0) for i, r in enumerate(rates)]
    got: dict[str, list[Window]] = {}
    want: dict[str, list[Window]] = {}
    seqs = [0] * len(rates)
    errors_seen = 0
    for step in range(60):
        clock.t += 0.01
        n = 40 if rng.random() < 0.6 else int(rng.integers(1, 130))
        samples, seq_list, t0s = [], [], []
        for i in range(len(rates)):
            m = n if rng.random() < 0.9 else int(rng.integers(1, 130))
            x = rng.standard_normal(m).astype(np.float32)
            if step % 17 == 5 and i == 3:
                x[m // 2] = np.nan
            if step == 23 and i == 1:
                seqs[i] += 3  # three chunks lost
            samples.append(x)
            seq_list.append(seqs[i])
            t0s.append(1000.0 + step * 0.5 if i != 4 else None)
            seqs[i] += 1
        group = grouped[0].group
        blocks, errors = group.push_block([w.row for w in grouped], samples, seq_list, t0s)
        for sid, ws in _by_sensor(blocks).items():
            got.setdefault(sid, []).extend(ws)
        for row, exc in errors:
            assert group.sensor_ids[row] == "s3" and "NaN" in str(exc)
            errors_seen += 1
        for i, w in enumerate(alone):
            with contextlib.suppress(DataError):
                want.setdefault(w.sensor_id, []).extend(w.push(samples[i], seq=seq_list[i], t0=t0s[i]))
    assert errors_seen == 4
    for i, w in enumerate(alone):
        sid = w.sensor_id
        a, b = got.get(sid, []), want.get(sid, [])
        assert len(a) == len(b) > 0, sid
        assert [x.index for x in a] == [x.index for x in b]
        assert [x.seq for x in a] == [x.seq for x in b]
        assert [x.t_mono for x in a] == [x.t_mono for x in b]
        np.testing.assert_allclose([x.t_wall for x in a], [x.t_wall for x in b], rtol=0, atol=1e-9)
        np.testing.assert_array_equal(np.stack([x.data for x in a]), np.stack([x.data for x in b]))
        assert grouped[i].stats == w.stats, sid
    assert grouped[1].stats.gaps == 1 and grouped[3].stats.bad_chunks == 4


def test_a_bad_chunk_stops_only_its_sensor() -> None:
    """A NaN chunk and a mis-shaped one in a block: those two sensors are reported by name and
    restart; the others' windows come out of the same call."""
    meta = make_metadata(WINDOW, hop=32, rate=RATE)
    grouped = _group_of(meta, 32, [RATE] * 4, FakeClock())
    group = grouped[0].group
    good = np.ones(WINDOW, dtype=np.float32)
    bad = good.copy()
    bad[3] = np.inf
    blocks, errors = group.push_block([0, 1, 2, 3], [good, bad, good, np.ones((WINDOW, 2), np.float32)],
                                      [0, 0, 0, 0], [None] * 4)
    assert sorted(group.sensor_ids[r] for r, _ in errors) == ["s1", "s3"]
    assert any("'s1'" in str(e) and "NaN or inf" in str(e) for _, e in errors)
    assert any("'s3'" in str(e) and "shape" in str(e) for _, e in errors)
    assert sorted(_by_sensor(blocks)) == ["s0", "s2"]
    assert grouped[1].stats.bad_chunks == 1 and grouped[1].stats.dropped_samples == WINDOW


def test_block_windows_carry_their_arrival_and_sequence() -> None:
    """t_mono is when the block arrived (the chunk holding each window's last sample); a chunk
    without a sequence number gives windows without one."""
    meta = make_metadata(WINDOW, hop=64, rate=RATE)
    clock = FakeClock()
    grouped = _group_of(meta, 64, [RATE, RATE], clock)
    group = grouped[0].group
    clock.t = 7.0
    first, _ = group.push_block([0, 1], [np.zeros(48, np.float32)] * 2, [4, None], [10.0, 10.0])
    assert first == []  # 48 < 64 samples: nothing complete yet
    clock.t = 8.0
    blocks, _ = group.push_block([0, 1], [np.zeros(48, np.float32)] * 2, [5, None], [10.048, 10.048])
    block = WindowBlock.concat(blocks)  # a block this small is windowed row by row (SMALL_BLOCK)
    assert block.sensor_ids == ["s0", "s1"]
    assert block.t_mono.tolist() == [8.0, 8.0]
    assert block.seq == [5, None]
    assert block.windows()[1].seq is None
    # the window's last sample is the 64th: 16 samples into the second chunk
    np.testing.assert_allclose(block.t_wall, [10.048 + 15 / RATE] * 2)


def test_sensors_of_another_window_setting_cannot_join_a_group() -> None:
    meta = make_metadata(WINDOW, hop=32, rate=RATE)
    group = WindowGroup(WINDOW, 32, 1, RATE, meta.normalization, False, FakeClock(), lambda: 0.0)
    with pytest.raises(ValueError, match="window settings"):
        SensorWindower("x", RATE, meta, hop=16, normalize=False, group=group)


def test_sequence_numbers_as_large_as_a_frames_uint64_counter() -> None:
    """A frame's seq is a uint64: counters near 2**64 stay exact (no int64 overflow) and a jump
    there is still a gap."""
    meta = make_metadata(WINDOW, hop=64, rate=RATE)
    grouped = _group_of(meta, 64, [RATE, RATE], FakeClock())
    group = grouped[0].group
    top = 2**64 - 1
    chunk = [np.zeros(WINDOW, np.float32)] * 2
    got = []
    for seq in (top - 3, top - 2, top):  # s1 skips top - 1
        blocks, errors = group.push_block([0, 1], chunk, [seq, seq if seq != top else top - 1], [None, None])
        assert errors == []
        got += [w.seq for b in blocks for w in b.windows() if w.sensor_id == "s0"]
    assert got == [top - 3, top - 2, top]
    assert grouped[0].stats.gaps == 1 and grouped[1].stats.gaps == 0


def test_rows_raw_leaves_the_one_chunk_paths_windows_for_the_batch_to_normalise() -> None:
    """A group with ``rows_raw`` (the daemon's: its batcher normalises each batch) gives the same
    windows from the one-chunk path, raw and marked so; normalised they equal a normalising group's,
    and the block path still normalises in place."""
    meta = make_metadata(WINDOW, hop=16, rate=RATE)
    rng = np.random.default_rng(7)
    plain = _group_of(meta, 16, [RATE] * 5, FakeClock(), normalize=True)[0].group
    raw = _group_of(meta, 16, [RATE] * 5, FakeClock(), normalize=True)[0].group
    raw.rows_raw = True
    kinds = set()
    for step in range(6):
        rows = [1] if step % 2 else [0, 1, 2, 3, 4]  # a small block (row by row), then a large one
        x = [(rng.standard_normal(40) * 5 + 3).astype(np.float32) for _ in rows]
        want, _ = plain.push_block(rows, x, [step] * len(rows), [None] * len(rows))
        got, _ = raw.push_block(rows, x, [step] * len(rows), [None] * len(rows))
        assert [b.sensor_ids for b in got] == [b.sensor_ids for b in want]
        for g, w in zip(got, want, strict=True):
            assert w.normalized and g.normalized == (len(rows) >= SMALL_BLOCK)
            kinds.add(g.normalized)
            data = g.data if g.normalized else normalize_windows(g.data, meta.normalization)
            np.testing.assert_allclose(data, w.data, rtol=0, atol=1e-6)
            assert g.index.tolist() == w.index.tolist() and g.t_wall.tolist() == w.t_wall.tolist()
    assert kinds == {True, False}, "both paths cut windows"


def test_each_chunks_arrival_becomes_its_windows_t_mono_on_both_paths() -> None:
    meta = make_metadata(WINDOW, hop=32, rate=RATE)
    clock = FakeClock()
    group = _group_of(meta, 32, [RATE] * 5, clock)[0].group
    x = [np.ones(WINDOW, np.float32)] * 5
    blocks, _ = group.push_block([0, 1, 2, 3, 4], x, [0] * 5, [None] * 5, [1.0, 2.0, 3.0, 4.0, 5.0])
    got = {w.sensor_id: w.t_mono for b in blocks for w in b.windows()}  # the block path
    assert got == {"s0": 1.0, "s1": 2.0, "s2": 3.0, "s3": 4.0, "s4": 5.0}
    blocks, _ = group.push_block([1, 3], x[:2], [1, 1], [None, None], [7.0, 8.0])  # row by row
    assert sorted((w.sensor_id, w.t_mono) for b in blocks for w in b.windows()) == [
        ("s1", 7.0), ("s1", 7.0), ("s3", 8.0), ("s3", 8.0)]
    blocks, _ = group.push_block([0], x[:1], [1], [None])  # no arrivals: stamped on windowing
    assert {w.t_mono for b in blocks for w in b.windows()} == {clock.t}
