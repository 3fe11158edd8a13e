"""A sensor's envelope bands reused across its overlapping windows (the daemon's batch scoring).

Why: ``sqrt_envelope_mahalanobis`` reads four envelope-band energies of every window
(:func:`runtime.novelty.scores.envelope_bands`, one real FFT per window), and consecutive windows
of a sensor overlap (window 2048, hop 512: 75 %), so computing them for every window computes each
sample's envelope four times. Here a sensor's bands are computed on every k-th window only
(``novelty.envelope_every``, by default ``ceil(window / hop)``, so every sample lies in exactly one
computed window) and the windows between are scored with that sensor's most recent bands. The
features, which carry most of the score, stay per window; the bands change slowly on a running
machine (docs/novelty.md, "Cost", measures what the reuse does to flags and detection).

A row computes its bands afresh when its sensor has none cached, when its window counter is not
1 .. k-1 past the cached window's (a dropped window, a new windower after a reload), or when its
wall time is not that many hops after the cached window's, within half the overlap: a gap or a
reset restarts the window (its first window ends at least a window's length after the last one),
a no-data spell shows as time. Every row of a batch that computes is computed in one call.

The state is one row per dense sensor index of the result router
(:class:`runtime.results_table.SensorTable`); :meth:`EnvelopeCache.record` is called whenever
the router (re)records a sensor. No locks: the daemon's state lock covers every caller.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from runtime.novelty.stats import window_bands

if TYPE_CHECKING:
    from runtime.pipeline import SensorPipeline


def envelope_every(sp: SensorPipeline) -> int:
    """The sensor's ``novelty.envelope_every`` as a number of windows (``auto``: window / hop, rounded up)."""
    nov, w = sp.novelty, getattr(sp, "windower", None)
    if nov is None or w is None:  # no novelty, or no windows cut here to know the overlap of
        return 1
    every = nov.cfg.envelope_every
    if every == "auto":
        return max(1, math.ceil(int(w.window) / int(w.hop)))
    return int(every)


class EnvelopeCache:
    """The last computed envelope bands of every sensor, by dense sensor index."""

    def __init__(self, capacity: int = 16) -> None:
        self._every = np.zeros(0, dtype=np.int64)  # windows one computation covers; < 2: every window
        self._hop_s = np.zeros(0, dtype=np.float64)  # seconds between consecutive windows
        self._slack_s = np.zeros(0, dtype=np.float64)  # half the overlap, seconds
        self._index = np.zeros(0, dtype=np.int64)  # window counter of the cached bands, -1: none
        self._t = np.zeros(0, dtype=np.float64)  # wall time of the cached window
        self._bands = np.zeros((0, 0), dtype=np.float64)
        self._grow(capacity)
        #: windows whose bands were computed, and reused from an earlier window (for the benchmark)
        self.computed = 0
        self.reused = 0

    def _grow(self, n: int) -> None:
        old = len(self._index)
        if n <= old:
            return
        size = max(n, 2 * old)
        for name in ("_every", "_hop_s", "_slack_s", "_t"):
            a = getattr(self, name)
            setattr(self, name, np.concatenate([a, np.zeros(size - old, dtype=a.dtype)]))
        self._index = np.concatenate([self._index, np.full(size - old, -1, dtype=np.int64)])
        self._bands = np.concatenate([self._bands, np.zeros((size - old, self._bands.shape[1]))])

    def record(self, j: int, sp: SensorPipeline | None) -> None:
        """Sensor ``j`` is (re)recorded (None: no longer served): forget its bands, take its settings."""
        self._grow(j + 1)
        self._index[j] = -1
        if sp is None or sp.novelty is None:
            self._every[j] = 0
            return
        every = envelope_every(sp)
        if every > 1:
            w = sp.windower
            self.configure(j, every, w.hop / w.model_rate, w.window / w.model_rate)
        else:
            self._every[j] = 0

    def configure(self, j: int, every: int, hop_s: float, window_s: float) -> None:
        """Sensor ``j`` reuses its bands for ``every`` windows, ``hop_s`` apart, ``window_s`` long
        (what :meth:`record` takes from a sensor's config and windower; `bench novelty` sets it)."""
        self._grow(j + 1)
        self._index[j] = -1
        self._every[j] = every if every > 1 else 0
        self._hop_s[j] = hop_s
        self._slack_s[j] = max(window_s - hop_s, 0.0) / 2.0

    def bands(self, sensor: np.ndarray, index: np.ndarray, t_wall: np.ndarray, windows: np.ndarray | None,
              width: int) -> np.ndarray:
        """(N, ``width``) envelope bands of a batch's rows: computed for the rows that must be (one
        call), the others their sensor's latest. ``sensor``: each row's dense sensor index (-1: none,
        computed); ``index``, ``t_wall``: each row's window counter and wall time (the batch's)."""
        n = len(sensor)
        self._grow(int(sensor.max(initial=-1)) + 1)
        if self._bands.shape[1] != width:  # first use, or a model with other bands: nothing cached fits
            self._bands = np.zeros((len(self._index), width))
            self._index[:] = -1
        known = sensor >= 0
        every = np.where(known, self._every[sensor], 0)
        if not every.any() or windows is None or len(windows) != n:
            # no row may reuse (every window, or novelty configured so), or windows that do not fit
            # (the DataError naming them)
            self.computed += n
            return window_bands(windows, n, width)
        at = np.where(known, sensor, len(self._index) - 1)  # gathered once: no numpy scalar per row
        cached = self._index[at]
        # a row may reuse bands of the window d before it when its time is d hops on, within the slack
        src, last, compute = self._plan(sensor.tolist(), index.tolist(), t_wall.tolist(), every.tolist(),
                                        cached.tolist(), self._t[at].tolist(), self._hop_s[at].tolist(),
                                        self._slack_s[at].tolist())
        if not compute:  # every row reuses its sensor's bands
            fresh = np.zeros((0, width))
        else:
            fresh = window_bands(windows if len(compute) == n else windows[compute], len(compute), width)
        src_a = np.array(src, dtype=np.int64)
        mine = src_a >= 0
        if mine.all():
            out = fresh if len(compute) == n else fresh[src_a]
        else:
            out = np.empty((n, width), dtype=np.float64)
            out[mine] = fresh[src_a[mine]]
            out[~mine] = self._bands[-src_a[~mine] - 1]
        if last:
            js = list(last)
            rows = [last[j] for j in js]
            self._index[js] = index[rows]
            self._t[js] = t_wall[rows]
            self._bands[js] = out[rows]
        self.computed += len(compute)
        self.reused += n - len(compute)
        return out

    @staticmethod
    def _plan(sensor: list[int], index: list[int], t_wall: list[float], every: list[int], cached: list[int],
              cached_t: list[float], hop: list[float], slack: list[float]
              ) -> tuple[list[int], dict[int, int], list[int]]:
        """Per row where its bands come from (>= 0: that row of the computed ones, < 0: ``-(j + 1)``,
        sensor j's cached bands), each sensor's last computed batch row (for sensors that keep one),
        and the rows to compute. The per-row lists are the batch's and its sensors' cache entries;
        rows of one sensor come in window order within a batch."""
        src: list[int] = []
        compute: list[int] = []
        last: dict[int, int] = {}  # sensor -> its last computed batch row
        anchor: dict[int, tuple[int, float, int]] = {}  # sensor -> (window counter, wall time, computed row)
        for p, (j, i, t, k) in enumerate(zip(sensor, index, t_wall, every, strict=True)):
            if k:
                got = anchor.get(j)
                ai, at, code = got if got is not None else (cached[p], cached_t[p], -(j + 1))
                d = i - ai
                if ai >= 0 and 0 < d < k and abs(t - at - d * hop[p]) <= slack[p]:
                    src.append(code)
                    continue
                anchor[j] = (i, t, len(compute))
                last[j] = p
            src.append(len(compute))
            compute.append(p)
        return src, last, compute
