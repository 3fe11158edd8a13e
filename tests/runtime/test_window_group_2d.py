"""The block path's fast inputs: a 2-D block of chunks (a replay cohort read as one slice) and a
block the source vouches is finite give exactly what a list of chunks and each sensor's own
windower give (windows bit for bit, indices, sequence numbers, times, counts and errors)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.errors import DataError
from runtime.window_block import Window
from runtime.windowing import SensorWindower
from tests.runtime.test_window_group import RATE, WINDOW, FakeClock, _by_sensor, _group_of
from tests.runtime.tiny_models import make_metadata

steps_plan = st.lists(
    st.tuples(
        st.sampled_from([40, 40, 40, 1, 17, 64, 130]),  # this step's chunk length (one for all sensors)
        st.sampled_from(["ok"] * 6 + ["nan", "gap", "ragged", "none_seq"]),  # what one sensor does
        st.integers(0, 7),  # which sensor
    ),
    min_size=1, max_size=40)


@settings(max_examples=80, deadline=None)
@given(sensors=st.integers(1, 8), hop=st.sampled_from([16, 24, 64, 100]), normalize=st.booleans(),
       plan=steps_plan, seed=st.integers(0, 2**16))
def test_a_2d_block_and_a_vouched_block_window_as_a_list_block_and_each_sensor_alone(
        sensors: int, hop: int, normalize: bool, plan: list[tuple[int, str, int]], seed: int) -> None:
    """Chunks of odd lengths, hops that do not divide them, a NaN chunk, a sequence jump, a ragged
    chunk (another length: the list and one-chunk paths), a chunk without a sequence number, and
    blocks smaller than the block path takes (row by row)."""
    _windows_alike(WINDOW, sensors, hop, normalize, plan, seed)


@settings(max_examples=30, deadline=None)
@given(sensors=st.integers(8, 12), hop=st.sampled_from([128, 256, 100]), plan=steps_plan,
       seed=st.integers(0, 2**16))
def test_windows_of_a_length_whose_sums_share_blocks_are_normalised_as_each_sensor_alone(
        sensors: int, hop: int, plan: list[tuple[int, str, int]], seed: int) -> None:
    """Windows of 512 at hops of 128 or 256: the block path sums overlapping windows from shared
    blocks (sum_block, in cuts of SHARED_SUMS_FROM windows or more); the normalised windows keep
    each sensor's own windower's bits."""
    _windows_alike(512, sensors, hop, True, [(16 * n, event, who) for n, event, who in plan], seed)


def _windows_alike(window: int, sensors: int, hop: int, normalize: bool, plan: list[tuple[int, str, int]],
                   seed: int) -> None:
    rng = np.random.default_rng(seed)
    meta = make_metadata(window, hop=hop, rate=RATE)
    feeds: dict[str, Any] = {
        "2d": _group_of(meta, hop, [RATE] * sensors, FakeClock(), normalize),
        "list": _group_of(meta, hop, [RATE] * sensors, FakeClock(), normalize),
    }
    alone = [SensorWindower(f"s{i}", RATE, meta, hop=hop, normalize=normalize, clock=FakeClock(),
                            wall_clock=lambda: 5.0) for i in range(sensors)]
    got: dict[str, dict[str, list[Window]]] = {name: {} for name in feeds}
    errors: dict[str, list[tuple[str, str]]] = {name: [] for name in [*feeds, "alone"]}
    seqs = [0] * sensors
    for step, (n, event, who) in enumerate(plan):
        who %= sensors
        samples = [(rng.standard_normal(n) * 3 + 1).astype(np.float32) for _ in range(sensors)]
        seq: list[int | None] = list(seqs)
        if event == "nan":
            samples[who][n // 2] = np.nan
        elif event == "gap":
            seq[who] = seqs[who] = seqs[who] + 2
        elif event == "ragged":
            samples[who] = samples[who][: max(n // 2, 1)]
        elif event == "none_seq":
            seq[who] = None
        seqs = [s + 1 for s in seqs]
        t0s = [1000.0 + step * 0.25] * sensors
        lengths = {x.size for x in samples}
        finite = all(np.isfinite(x).all() for x in samples)
        for name, windowers in feeds.items():
            group = windowers[0].group
            if name == "2d" and len(lengths) == 1:
                blocks, errs = group.push_block(list(range(sensors)), np.stack(samples), seq, t0s,
                                                finite=finite)
            else:
                blocks, errs = group.push_block(list(range(sensors)), samples, seq, t0s)
            for sid, ws in _by_sensor(blocks).items():
                got[name].setdefault(sid, []).extend(ws)
            errors[name] += [(group.sensor_ids[row], str(exc)) for row, exc in errs]
        for i, w in enumerate(alone):
            try:
                got.setdefault("alone", {}).setdefault(w.sensor_id, []).extend(
                    w.push(samples[i], seq=seq[i], t0=t0s[i]))
            except DataError as exc:
                errors["alone"].append((w.sensor_id, str(exc)))
    assert sorted(errors["2d"]) == sorted(errors["list"]) == sorted(errors["alone"])
    for i in range(sensors):
        sid = f"s{i}"
        want = got.get("alone", {}).get(sid, [])
        for name, windowers in feeds.items():
            have = got[name].get(sid, [])
            assert [(w.index, w.seq, w.t_mono) for w in have] == [(w.index, w.seq, w.t_mono) for w in want]
            np.testing.assert_allclose([w.t_wall for w in have], [w.t_wall for w in want], rtol=0, atol=1e-9)
            if want:
                np.testing.assert_array_equal(np.stack([w.data for w in have]),
                                              np.stack([w.data for w in want]))
            assert windowers[i].stats == alone[i].stats, (name, sid)


def test_a_vouched_block_skips_the_check_and_a_2d_block_with_nan_is_still_caught() -> None:
    """``finite`` is the caller's promise (kept, the windows come out as usual); a 2-D block without
    it is checked, and its NaN row is reported for that sensor alone."""
    meta = make_metadata(WINDOW, hop=32, rate=RATE)
    grouped = _group_of(meta, 32, [RATE] * 4, FakeClock())
    group = grouped[0].group
    x = np.ones((4, WINDOW), np.float32)
    blocks, errors = group.push_block([0, 1, 2, 3], x, [0] * 4, [None] * 4, finite=True)
    assert errors == [] and sum(b.size for b in blocks) == 4
    x[2, 5] = np.nan
    blocks, errors = group.push_block([0, 1, 2, 3], x, [1] * 4, [None] * 4)
    assert [group.sensor_ids[r] for r, _ in errors] == ["s2"]
    assert sorted(_by_sensor(blocks)) == ["s0", "s1", "s3"]
    assert grouped[2].stats.bad_chunks == 1
