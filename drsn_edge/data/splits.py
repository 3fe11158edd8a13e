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
from typing import Any, Literal

import numpy as np

from drsn_edge.data.noise import NoiseSpec, add_noise
from drsn_edge.data.recordings import Recording, healthy_label, order_classes
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
    clean, noisy = _signals(everything, plan)
    roles = _assign(train_recs, len(test_recs), plan)
    parts: dict[str, list[WindowSet]] = {s: [] for s in _SPLITS}
    for i, rec in enumerate(everything):
        for name, ws in _windows_of(i, rec, roles[i], clean[i], noisy[i], names.index(rec.label), plan):
            parts[name].append(ws)
    sets = {s: WindowSet.concat(parts[s], channels, plan.window) for s in _SPLITS}
    for s in _SPLITS:
        if not len(sets[s]):
            raise DataError(f"the {s} split has no windows; use shorter windows, more recordings or split='time'")
    summary = _summary(everything, len(train_recs), roles, sets, names, plan)
    log.info("splits (%s): %s", plan.rule, {s: len(sets[s]) for s in _SPLITS})
    return SplitData(sets["train"], sets["val"], sets["test"], names, healthy, rate, plan.window, plan.hop, summary)


def _plan(window: int, hop: int | None, test_hop: int | None, split: str, fractions: Sequence[float],
          gap: int | None, noise: NoiseSpec | None, protocol: str, seed: int) -> _Plan:
    hop = hop if hop is not None else max(1, window // 4)
    test_hop = test_hop if test_hop is not None else hop
    gap = gap if gap is not None else window
    if min(window, hop, test_hop) <= 0 or gap < 0:
        raise ConfigError(f"window {window}, hop {hop} and test_hop {test_hop} must be positive, gap {gap} >= 0")
    if split not in ("time", "recording"):
        raise ConfigError(f"unknown split rule {split!r}; use 'time' or 'recording'")
    if protocol not in ("train_test", "test_only"):
        raise ConfigError(f"unknown noise protocol {protocol!r}; use 'train_test' or 'test_only'")
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3 or min(fr) <= 0 or abs(sum(fr) - 1) > 1e-6:
        raise ConfigError(f"split fractions {tuple(fractions)} must be three positive numbers summing to 1")
    return _Plan(window, hop, test_hop, gap, (fr[0], fr[1], fr[2]), split,  # type: ignore[arg-type]
                 noise, protocol, seed)  # type: ignore[arg-type]
