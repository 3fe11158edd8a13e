"""Leakage-free splits: no window shares samples across splits, whole recordings stay together."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from drsn_edge.data.noise import NoiseSpec, snr_db
from drsn_edge.data.recordings import Recording, select
from drsn_edge.data.splits import prepare_splits
from drsn_edge.data.synthetic import synthetic_recordings
from runtime.errors import DataError

WINDOW = 256


@pytest.fixture(scope="module")
def recs() -> list[Recording]:
    return synthetic_recordings(n_per_class=3, seconds=1.0, sample_rate=12000, seed=4)


def _intervals(ws, rec_index: int) -> list[tuple[int, int]]:
    return [(int(s), int(s) + ws.x.shape[-1]) for s in ws.start[ws.recording == rec_index]]


def test_time_split_windows_never_share_samples(recs) -> None:
    data = prepare_splits(recs, window=WINDOW, hop=64, split="time", seed=1)
    sets = {"train": data.train, "val": data.val, "test": data.test}
    for i in range(len(recs)):
        spans = {name: _intervals(ws, i) for name, ws in sets.items()}
        assert all(spans.values()), f"recording {i} is missing from a split"
        order = [spans["train"], spans["val"], spans["test"]]
        for earlier, later in itertools.pairwise(order):
            gap = min(s for s, _ in later) - max(e for _, e in earlier)
            assert gap >= WINDOW  # one full window of samples between spans
    # windows really are the recording's samples at the recorded start
    k = 7
    i, s = int(data.test.recording[k]), int(data.test.start[k])
    np.testing.assert_array_equal(data.test.x[k, 0], recs[i].signal[s : s + WINDOW])


def test_time_split_fractions_and_hops(recs) -> None:
    data = prepare_splits(recs, window=WINDOW, hop=128, test_hop=WINDOW, fractions=(0.6, 0.2, 0.2))
    n = recs[0].n_samples
    usable = n - 2 * WINDOW
    per_rec = len(data.train) / len(recs)
    assert per_rec == (int(0.6 * usable) - WINDOW) // 128 + 1
    assert np.all(np.diff(data.test.start[data.test.recording == 0]) == WINDOW)
    assert data.window == WINDOW and data.hop == 128 and data.sample_rate == 12000
    assert data.classes[0] == "normal" == data.healthy_class
    assert data.train.x.shape[1:] == (1, WINDOW) and data.train.y.dtype == np.int64


def test_recording_split_keeps_recordings_whole(recs) -> None:
    data = prepare_splits(recs, window=WINDOW, hop=WINDOW, split="recording", seed=3)
    owner = {}
    for name, ws in (("train", data.train), ("val", data.val), ("test", data.test)):
        for r in np.unique(ws.recording):
            assert owner.setdefault(int(r), name) == name
    assert len(owner) == len(recs)
    for ws in (data.train, data.val, data.test):
        assert set(ws.y.tolist()) == set(range(len(data.classes)))  # every class in every split
    other = prepare_splits(recs, window=WINDOW, hop=WINDOW, split="recording", seed=3)
    np.testing.assert_array_equal(other.test.recording, data.test.recording)


def test_cross_condition_test_recordings(recs) -> None:
    train = select(recs, seed=[r.meta["seed"] for r in recs[::3]])  # one machine per class
    test = [r for r in recs if r not in recs[::3]]
    data = prepare_splits(train, test_recordings=test, window=WINDOW, hop=64)
    assert set(np.unique(data.test.recording)) == set(range(len(train), len(train) + len(test)))
    assert set(np.unique(data.train.recording)) == set(range(len(train)))
    assert data.summary["split"]["cross_condition"] is True
    assert data.summary["selection"]["train"] == {"seed": [r.meta["seed"] for r in recs[::3]]}
    with pytest.raises(DataError, match="no training recording has"):
        prepare_splits(train[:2], test_recordings=test, window=WINDOW)


def test_noise_protocols(recs) -> None:
    spec = NoiseSpec("gaussian", -4.0)
    clean = prepare_splits(recs, window=WINDOW, hop=WINDOW)
    both = prepare_splits(recs, window=WINDOW, hop=WINDOW, noise=spec, seed=2)
    only = prepare_splits(recs, window=WINDOW, hop=WINDOW, noise=spec, noise_protocol="test_only", seed=2)
    np.testing.assert_array_equal(only.train.x, clean.train.x)
    np.testing.assert_array_equal(only.test.x, both.test.x)
    assert snr_db(clean.train.x, both.train.x) == pytest.approx(-4.0, abs=0.5)
    again = prepare_splits(recs, window=WINDOW, hop=WINDOW, noise=spec, seed=2)
    np.testing.assert_array_equal(again.train.x, both.train.x)
    assert both.summary["noise"] == {"kind": "gaussian", "snr_db": -4.0}


def test_summary_is_json_and_counts_match(recs) -> None:
    data = prepare_splits(select(recs, fault=["normal", "ball"]), window=WINDOW, hop=64)
    doc = json.loads(json.dumps(data.summary))
    assert doc["source"] == "synthetic" and doc["n_recordings"] == 6
    assert sum(doc["windows"]["train"].values()) == len(data.train)
    assert doc["windows"]["test"]["ball"] == int((data.test.y == data.classes.index("ball")).sum())
    assert doc["split"]["rule"] == "time" and doc["split"]["gap"] == WINDOW
    assert doc["selection"]["train"] == {"fault": ["normal", "ball"]}
    assert len(doc["recordings"]) == 6 and doc["recordings"][0]["label"] == "normal"


def test_bad_inputs_raise_clear_errors(recs) -> None:
    with pytest.raises(DataError, match="time split"):
        prepare_splits(recs, window=4096)
    with pytest.raises(DataError, match="fewer than one"):
        prepare_splits(recs, window=20000, split="recording")
    with pytest.raises(DataError, match="needs one for each"):
        prepare_splits(recs[:2] + recs[3:5], window=WINDOW, split="recording")
    other_rate = Recording(recs[0].signal, 48000.0, "normal")
    with pytest.raises(DataError, match="sample rates"):
        prepare_splits([*recs, other_rate], window=WINDOW)
    with pytest.raises(DataError, match="not one of the classes"):
        prepare_splits(recs, classes=["normal", "ball"], window=WINDOW)
    with pytest.raises(DataError, match="no recordings"):
        prepare_splits([], window=WINDOW)
