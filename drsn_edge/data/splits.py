"""Leakage-free train / validation / test windows from labelled recordings.

Windows cut from one recording are strongly correlated, so shuffling overlapping windows into
train and test inflates accuracy. Two rules avoid that:

* ``split="time"``: inside every recording, contiguous spans ``train | gap | val | gap | test``;
  windows never cross a span edge, and the gap (one window by default) keeps the spans apart.
* ``split="recording"``: whole recordings go to one split (per class, seeded).

With ``test_recordings`` the test split comes from other recordings altogether (another load,
another machine): train and validation are cut from ``recordings`` by the chosen rule.
Noise, when requested, is added once per whole recording before windowing (see
:mod:`drsn_edge.data.noise`); ``noise_protocol="test_only"`` keeps train/val clean.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np

from drsn_edge.data.noise import NoiseSpec, add_noise
from drsn_edge.data.recordings import Recording, healthy_label, jsonable, order_classes
from drsn_edge.data.windows import WindowSet, make_windows
from runtime.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SplitRule = Literal["time", "recording"]
NoiseProtocol = Literal["train_test", "test_only"]
MAX_LISTED_RECORDINGS = 200
_SPLITS = ("train", "val", "test")


@dataclass
class SplitData:
    """Windows of the three splits and what a model artifact needs to know about them."""

    train: WindowSet
    val: WindowSet
    test: WindowSet
    classes: list[str]
    healthy_class: str
    sample_rate: float | None  # None for images
    window: int
    hop: int
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Plan:
    """The validated options of one :func:`prepare_splits` call."""

    window: int
    hop: int
    test_hop: int
    gap: int
    fractions: tuple[float, float, float]
    rule: SplitRule
    noise: NoiseSpec | None
    protocol: NoiseProtocol
    seed: int


def prepare_splits(
    recordings: Sequence[Recording],
    *,
    classes: Sequence[str] | None = None,
    window: int = 2048,
    hop: int | None = None,
    test_hop: int | None = None,
    split: SplitRule = "time",
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
    gap: int | None = None,
    noise: NoiseSpec | None = None,
    noise_protocol: NoiseProtocol = "train_test",
    seed: int = 0,
    test_recordings: Sequence[Recording] | None = None,
    healthy_class: str | None = None,
) -> SplitData:
    """Cut ``recordings`` into train/val/test :class:`WindowSet` s of RAW windows.

    ``hop`` defaults to a quarter window; ``test_hop`` (used for val and test) to ``hop``;
    ``gap`` to one window. ``classes`` fixes the class order (default: healthy first, then
    sorted); ``healthy_class`` defaults to a label such as ``normal``.
    """
    plan = _plan(window, hop, test_hop, split, fractions, gap, noise, noise_protocol, seed)
    train_recs, test_recs = list(recordings), list(test_recordings or [])
    everything = train_recs + test_recs
    rate, channels = _common_format(train_recs, test_recs)
    names = _classes(train_recs, test_recs, classes)
    healthy = _healthy(names, healthy_class)
    fit_signals, test_signals = _signals(everything, plan)
    roles = _assign(train_recs, len(test_recs), plan)
    parts: dict[str, list[WindowSet]] = {s: [] for s in _SPLITS}
    for i, rec in enumerate(everything):
        label = names.index(rec.label)
        for name, ws in _windows_of(i, rec, roles[i], fit_signals[i], test_signals[i], label, plan):
            parts[name].append(ws)
    sets = {s: WindowSet.concat(parts[s], channels, plan.window) for s in _SPLITS}
    for s in _SPLITS:
        if not len(sets[s]):
            raise DataError(
                f"the {s} split has no windows; use shorter windows, more recordings or split='time'"
            )
    summary = _summary(everything, len(train_recs), roles, sets, names, plan)
    log.info("splits (%s): %s", plan.rule, {s: len(sets[s]) for s in _SPLITS})
    return SplitData(sets["train"], sets["val"], sets["test"], names, healthy, rate, plan.window, plan.hop,
                     summary)


def _plan(window: int, hop: int | None, test_hop: int | None, split: str, fractions: Sequence[float],
          gap: int | None, noise: NoiseSpec | None, protocol: str, seed: int) -> _Plan:
    hop = hop if hop is not None else max(1, window // 4)
    test_hop = test_hop if test_hop is not None else hop
    gap = gap if gap is not None else window
    if min(window, hop, test_hop) <= 0 or gap < 0:
        raise ConfigError(
            f"window {window}, hop {hop} and test_hop {test_hop} must be positive and gap {gap} >= 0"
        )
    if split not in ("time", "recording"):
        raise ConfigError(f"unknown split rule {split!r}; use 'time' or 'recording'")
    if protocol not in ("train_test", "test_only"):
        raise ConfigError(f"unknown noise protocol {protocol!r}; use 'train_test' or 'test_only'")
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3 or min(fr) <= 0 or abs(sum(fr) - 1) > 1e-6:
        raise ConfigError(f"split fractions {tuple(fractions)} must be three positive numbers summing to 1")
    return _Plan(window, hop, test_hop, gap, (fr[0], fr[1], fr[2]), cast(SplitRule, split), noise,
                 cast(NoiseProtocol, protocol), seed)


def _common_format(train: list[Recording], test: list[Recording]) -> tuple[float, int]:
    """The one sample rate and channel count all recordings must share."""
    if not train:
        raise DataError("no recordings to split; check the data folder and the selection")
    everything = train + test
    rates = sorted({float(r.sample_rate) for r in everything})
    if len(rates) > 1:
        raise DataError(f"recordings have different sample rates {rates} Hz; resample them to one rate "
                        "(pass sample_rate / --sample-rate)")
    channels = sorted({r.channels for r in everything})
    if len(channels) > 1:
        raise DataError(f"recordings have different channel counts {channels}; use the same sensors in all")
    return rates[0], channels[0]


def _classes(train: list[Recording], test: list[Recording], classes: Sequence[str] | None) -> list[str]:
    """The class order; every label must be a class and every class seen in training."""
    labels = {r.label for r in train + test}
    names = list(classes) if classes is not None else order_classes(labels)
    unknown = [r for r in train + test if r.label not in names]
    if unknown:
        where = ", ".join(str(r.meta.get("source", "?")) for r in unknown[:3])
        raise DataError(f"label {unknown[0].label!r} ({where}) is not one of the classes {names}; "
                        "add it to the classes or leave those recordings out")
    untrained = sorted({r.label for r in test} - {r.label for r in train})
    if untrained:
        raise DataError(f"test recordings have classes {untrained} that no training recording has; "
                        "select training recordings that cover every test class")
    if len(names) < 2:
        raise DataError(f"need at least two classes to train a classifier, got {names}")
    return names


def _healthy(names: list[str], wanted: str | None) -> str:
    if wanted is not None:
        if wanted not in names:
            raise DataError(f"healthy class {wanted!r} is not one of the classes {names}")
        return wanted
    found = healthy_label(names)
    if found is None:
        log.warning("no class is named normal/healthy; treating %r as the healthy class", names[0])
        return names[0]
    return found


def _signals(everything: list[Recording], plan: _Plan) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(signal for train/val windows, signal for test windows) of each recording.

    Noise is drawn once per whole recording from a generator seeded by (seed, recording index),
    so the same options give the same noisy data whatever else changes.
    """
    if plan.noise is None:
        plain = [r.signal for r in everything]
        return plain, plain
    noisy = [add_noise(r.signal, plan.noise.snr_db, plan.noise.kind, np.random.default_rng([plan.seed, i]))
             for i, r in enumerate(everything)]
    if plan.protocol == "test_only":
        return [r.signal for r in everything], noisy
    return noisy, noisy


def _assign(train: list[Recording], n_test: int, plan: _Plan) -> list[str]:
    """Role of every recording: ``time`` (spans inside it) or the one split it wholly belongs to."""
    roles: list[str] = []
    if plan.rule == "time":
        roles = [f"time{2 if n_test else 3}"] * len(train)
    else:
        roles = [""] * len(train)
        rng = np.random.default_rng(plan.seed)
        by_label: dict[str, list[int]] = {}
        for i, r in enumerate(train):
            by_label.setdefault(r.label, []).append(i)
        for label in sorted(by_label):
            members = [by_label[label][j] for j in rng.permutation(len(by_label[label]))]
            for i, role in zip(members, _whole_roles(label, len(members), plan, n_test > 0), strict=True):
                roles[i] = role
    return roles + ["test"] * n_test


def _whole_roles(label: str, k: int, plan: _Plan, external_test: bool) -> list[str]:
    f_train, f_val, f_test = plan.fractions
    n_test = 0 if external_test else max(1, round(f_test * k))
    n_val = max(1, round(f_val / (f_val + (0 if external_test else f_test) + f_train) * k))
    n_train = k - n_val - n_test
    if n_train < 1:
        parts = "train, val" if external_test else "train, val, test"
        raise DataError(f"class {label!r} has {k} recording(s); a recording split needs one for each of "
                        f"{parts}; use split='time' or add recordings")
    return ["train"] * n_train + ["val"] * n_val + ["test"] * n_test


def _windows_of(index: int, rec: Recording, role: str, trainval: np.ndarray, test: np.ndarray,
                label: int, plan: _Plan) -> list[tuple[str, WindowSet]]:
    """The windows one recording contributes, as (split name, windows) pairs."""
    if role.startswith("time"):
        k = int(role[-1])
        spans = list(zip(_SPLITS[:k], _time_spans(rec, k, plan), strict=True))
    else:
        spans = [(role, (0, rec.n_samples))]
    out = []
    for name, (start, stop) in spans:
        signal = test if name == "test" else trainval
        hop = plan.hop if name == "train" else plan.test_hop
        x, starts = make_windows(signal, plan.window, hop, start, stop)
        if not len(starts):
            raise DataError(f"recording {rec.meta.get('source', rec.label)} has {rec.n_samples} samples, "
                            f"fewer than one {plan.window}-sample window; use a shorter window or drop it")
        n = len(starts)
        out.append((name, WindowSet(x, np.full(n, label, np.int64), np.full(n, index, np.int64), starts)))
    return out


def _time_spans(rec: Recording, k: int, plan: _Plan) -> list[tuple[int, int]]:
    """``k`` contiguous spans (train, val[, test]) separated by ``gap`` samples."""
    fractions = np.asarray(plan.fractions[:k]) / sum(plan.fractions[:k])
    usable = rec.n_samples - plan.gap * (k - 1)
    lengths = [math.floor(f * usable) for f in fractions[:-1]]
    lengths.append(usable - sum(lengths))
    if min(lengths) < plan.window:
        need = math.ceil(plan.window / fractions.min()) + 1 + plan.gap * (k - 1)
        raise DataError(
            f"recording {rec.meta.get('source', rec.label)} has {rec.n_samples} samples; a time split into "
            f"{k} spans of at least one {plan.window}-sample window with {plan.gap}-sample gaps needs about "
            f"{need}. Use a shorter window, split='recording', or longer recordings"
        )
    spans, start = [], 0
    for length in lengths:
        spans.append((start, start + length))
        start += length + plan.gap
    return spans


def _summary(everything: list[Recording], n_train: int, roles: list[str], sets: dict[str, WindowSet],
             classes: list[str], plan: _Plan) -> dict[str, Any]:
    """A JSON-able account of where the windows came from, stored in the model's metadata."""
    listed = [{**r.describe(), "index": i, "role": roles[i]} for i, r in enumerate(everything)]
    return {
        "source": ",".join(sorted({str(r.meta.get("dataset", "unknown")) for r in everything})),
        "n_recordings": len(everything),
        "n_test_recordings": len(everything) - n_train,
        "classes": list(classes),
        "sample_rate": float(everything[0].sample_rate),
        "windows": {s: sets[s].counts(classes) for s in _SPLITS},
        "split": {"rule": plan.rule, "fractions": list(plan.fractions), "gap": plan.gap,
                  "window": plan.window, "hop": plan.hop, "test_hop": plan.test_hop,
                  "cross_condition": len(everything) > n_train},
        "noise": plan.noise.to_dict() if plan.noise else None,
        "noise_protocol": plan.protocol,
        "seed": plan.seed,
        "selection": {"train": _selection(everything[:n_train]), "test": _selection(everything[n_train:])},
        "recordings": listed[:MAX_LISTED_RECORDINGS],
        "recordings_listed": min(len(listed), MAX_LISTED_RECORDINGS),
    }


def _selection(recs: list[Recording]) -> dict[str, Any] | None:
    """The metadata criteria these recordings were selected by (None when not selected)."""
    found = [r.meta["selection"] for r in recs if r.meta.get("selection")]
    return jsonable(found[0]) if found else None
