"""A sensor's envelope bands reused across its overlapping windows (the daemon's batch scoring).

Why: ``sqrt_envelope_mahalanobis`` reads four envelope-band energies of every window
(:func:`runtime.novelty.scores.envelope_bands`, one real FFT per window), and consecutive windows
of a sensor overlap (window 2048, hop 512: 75 %), so computing them for every window computes each
sample's envelope four times. Here a sensor's bands are computed on every k-th window only
(``novelty.envelope_every``, by default ``ceil(window / hop)``, so every sample lies in exactly one
computed window) and the windows between are scored with that sensor's most recent bands. The
features, which carry most of the score, stay per window; the bands change slowly on a running
machine (docs/novelty.md, "Envelope bands reused across a sensor's windows", measures what the
reuse does to flags, detection and cost).

A row computes its bands afresh when its sensor has none cached, when its window counter is not
1 .. k-1 past the cached window's (windows dropped past the k-th, a new windower after a reload),
or when its wall time is not that many hops after the cached window's, within half the overlap:
a gap or a reset restarts the window (its first window ends at least a window's length after the
last one), a no-data spell shows as time. Every row of a batch that computes is computed in one call.

The state is one row per dense sensor index of the result router
(:class:`runtime.results_table.SensorTable`); :meth:`EnvelopeCache.record` is called whenever
the router (re)records a sensor. No locks: the daemon's state lock covers every caller.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING

import numpy as np

from runtime.errors import DataError
from runtime.novelty.scores import FLOAT_DTYPES, rectified_bands, window_bands

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
    """The last computed envelope bands of every sensor, by dense sensor index.

    The per-sensor numbers are Python lists, not arrays: a batch reads them once per row in one
    loop (tens of rows), where a numpy gather per column cost more than the loop itself.
    """

    def __init__(self, capacity: int = 16) -> None:
        self._every: list[int] = []  # windows one computation covers; < 2: every window computes
        self._hop_s: list[float] = []  # seconds between consecutive windows
        self._slack_s: list[float] = []  # half the overlap, seconds
        self._index: list[int] = []  # window counter of the cached bands, -1: none
        self._t: list[float] = []  # wall time of the cached window
        self._bands = np.zeros((0, 0), dtype=np.float64)
        self._grow(capacity)
        #: windows whose bands were computed, and reused from an earlier window (for the benchmark)
        self.computed = 0
        self.reused = 0

    def _grow(self, n: int) -> None:
        old = len(self._index)
        if n <= old:
            return
        more = max(n, 2 * old) - old
        self._every += [0] * more
        self._hop_s += [0.0] * more
        self._slack_s += [0.0] * more
        self._index += [-1] * more
        self._t += [0.0] * more
        self._bands = np.concatenate([self._bands, np.zeros((more, self._bands.shape[1]))])

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
        self._hop_s[j] = float(hop_s)
        self._slack_s[j] = max(window_s - hop_s, 0.0) / 2.0

    def bands(self, sensor: np.ndarray, index: np.ndarray, t_wall: np.ndarray, windows: np.ndarray | None,
              width: int) -> np.ndarray:
        """(N, ``width``) envelope bands of a batch's rows: computed for the rows that must be (one
        call), the others their sensor's latest. ``sensor``: each row's dense sensor index (-1: none,
        computed); ``index``, ``t_wall``: each row's window counter and wall time (the batch's)."""
        n = len(sensor)
        rows = sensor.tolist()
        self._grow(max(rows, default=-1) + 1)
        if self._bands.shape[1] != width:  # first use, or a model with other bands: nothing cached fits
            self._bands = np.zeros((len(self._index), width))
            self._index = [-1] * len(self._index)
        if windows is None or len(windows) != n:  # the DataError naming what does not fit
            return window_bands(windows, n, width)
        take, compute, last = self._plan(rows, index.tolist(), t_wall.tolist())
        self.computed += len(compute)
        self.reused += n - len(compute)
        try:
            fresh = None
            if len(compute) == n:  # every row computes (a first batch, or every window configured)
                out = fresh = _fresh_bands(windows, None, n, width)
            elif not compute:  # every row reuses: the cache upside down, sensor j's bands at -(j + 1)
                out = self._bands[::-1][take]
            else:
                fresh = _fresh_bands(windows, compute, n, width)
                if len(last) == len(compute):
                    # one computed row per sensor (the daemon's usual batch): into the cache first,
                    # then one gather from it, the computed row r read back as its sensor's
                    js = list(last)
                    if js == list(range(js[0], js[0] + len(js))):  # sensors j .. j + m - 1 in order
                        self._bands[js[0]: js[0] + len(js)] = fresh
                    else:
                        self._bands[js] = fresh
                    back = [-(rows[p] + 1) for p in compute]
                    return self._bands[::-1][[t if t < 0 else back[t] for t in take]]
                # one gather from the computed rows stacked on the cache upside down: row r of the
                # computed ones is r, sensor j's cached bands are row -(j + 1), as the plan wrote them
                out = np.concatenate([fresh, self._bands[::-1]])[take]
        except DataError:
            for j in last:  # the plan moved these sensors on to bands that were never computed
                self._index[j] = -1
            raise
        if last:
            js = list(last)
            if len(js) == len(compute) and fresh is not None:  # one computed row per sensor, in order
                self._bands[js] = fresh
            else:
                self._bands[js] = out[[last[j] for j in js]]
        return out

    def _plan(self, sensor: list[int], index: list[int], t_wall: list[float]
              ) -> tuple[list[int], list[int], dict[int, int]]:
        """Per row where its bands come from (>= 0: that row of the computed ones, < 0: ``-(j + 1)``,
        sensor j's cached bands), the batch rows to compute, and per sensor the last computed batch
        row (its bands become the cache's). Rows of one sensor come in window order in a batch.

        Written with as few calls per row as it can (no ``abs``, ``len``, ``append`` or ``get`` for
        a reused row): a call per row is what a profiler inflates, and what costs most here."""
        every, hop, slack, cached, cached_t = self._every, self._hop_s, self._slack_s, self._index, self._t
        take = [-j - 1 for j in sensor]  # reused: the cache, unless its sensor computed earlier here
        compute: list[int] = []
        last: dict[int, int] = {}
        p = -1
        for j, i, t in zip(sensor, index, t_wall, strict=True):
            p += 1
            if j >= 0:
                k = every[j]
                if k:
                    d = i - cached[j]
                    if 0 < d < k and cached[j] >= 0:
                        s = slack[j]
                        if -s <= t - cached_t[j] - d * hop[j] <= s:
                            if j in last:
                                take[p] = take[last[j]]
                            continue
                    cached[j], cached_t[j] = i, t  # this row's bands become the sensor's
                    last[j] = p
            take[p] = len(compute)
            compute.append(p)
        return take, compute, last


_local = threading.local()


def _fresh_bands(windows: np.ndarray, rows: list[int] | None, n: int, width: int) -> np.ndarray:
    """The envelope bands of the batch's ``rows`` (None: all ``n``), as :func:`window_bands` gives
    them, with the finiteness check on the bands, not on every sample: NaN or inf in a window
    reaches every bin of its spectrum, so its bands are not finite either. Evenly spaced rows
    (the first window of each sensor's pair, ...) are rectified straight from a view of the batch,
    others gathered and rectified in place: one pass over them, or two, where :func:`envelope_bands`
    of a gather makes three."""
    w = np.asarray(windows)
    if w.dtype not in FLOAT_DTYPES or w.ndim < 2 or w.size < 8 * width * n:  # the checked way names it
        return window_bands(w if rows is None else w[rows], n if rows is None else len(rows), width)
    w = w.reshape(n, -1)
    if rows is not None and len(rows) > 1:  # evenly spaced rows (every other one, ...): a view
        step = rows[1] - rows[0]
        if step > 0 and rows[-1] == rows[0] + step * (len(rows) - 1) and rows == list(
                range(rows[0], rows[-1] + 1, step)):
            w, rows = w[rows[0]: rows[-1] + 1: step], None
    if rows is None:  # rectified into this thread's buffer (the transform reads it, nothing keeps it)
        g = getattr(_local, "rectified", None)
        if g is None or g.shape != w.shape:
            g = _local.rectified = np.empty(w.shape, dtype=np.float32)
        np.abs(w, out=g)
    else:
        g = w[rows] if w.dtype == np.float32 else w[rows].astype(np.float32)
        np.abs(g, out=g)
    out = rectified_bands(g, width)
    if not math.isfinite(float(out.sum())):
        raise DataError("windows contain NaN or infinite values; check the model input")
    return out
