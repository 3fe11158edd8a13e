"""Windows of several sensors as row-aligned arrays: what the windowing hands the batcher.

A frozen dataclass per window costs about 2 us to build, which is as much as the rest of a
window's way through windowing and queueing. So windows travel between the source threads and
the inference thread as blocks: one ``(n, channels, window)`` float32 array and, beside it, one
array (or list) per field of :class:`~runtime.windowing.Window`. A :class:`Window` object is
built only for a consumer that asks for one (:meth:`WindowBlock.window`, tests, diagnostics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Window:
    """One normalised model input and where it came from.

    ``t_mono`` is the monotonic time at which the window's last sample was received (the daemon
    measures end-to-end latency from it); ``t_wall`` is the wall-clock time of that sample, from
    the sensor's own timestamp when the source provides one.
    """

    sensor_id: str
    index: int
    data: np.ndarray
    seq: int | None
    t_mono: float
    t_wall: float
    #: False: ``data`` holds the raw samples and the batcher normalises the whole batch at once
    normalized: bool = True


@dataclass(frozen=True, slots=True)
class WindowBlock:
    """``n`` windows, row-aligned. ``normalized`` False: ``data`` holds raw samples (the batcher
    normalises a whole batch in one call)."""

    sensor_ids: list[str]
    index: np.ndarray  # int64, the sensor's window counter
    seq: list[int | None]  # the chunk's sequence number (any int: a frame's is a uint64), None: none
    t_mono: np.ndarray  # float64, monotonic receipt of the chunk holding the last sample
    t_wall: np.ndarray  # float64, wall time of the last sample
    data: np.ndarray  # float32 (n, channels, window)
    normalized: bool = False

    @property
    def size(self) -> int:
        return len(self.sensor_ids)

    def rows(self, start: int, stop: int) -> WindowBlock:
        """Rows ``start:stop`` as a block (views, no copy)."""
        return WindowBlock(self.sensor_ids[start:stop], self.index[start:stop], self.seq[start:stop],
                           self.t_mono[start:stop], self.t_wall[start:stop], self.data[start:stop],
                           self.normalized)

    def without(self, row: int) -> WindowBlock:
        """The block less one row (a window dropped from a full queue)."""
        keep = np.arange(self.size) != row
        ids = self.sensor_ids[:row] + self.sensor_ids[row + 1:]
        return WindowBlock(ids, self.index[keep], self.seq[:row] + self.seq[row + 1:], self.t_mono[keep],
                           self.t_wall[keep], self.data[keep], self.normalized)

    def window(self, i: int) -> Window:
        """Row ``i`` as one :class:`Window` object."""
        return Window(self.sensor_ids[i], int(self.index[i]), self.data[i], self.seq[i],
                      float(self.t_mono[i]), float(self.t_wall[i]), self.normalized)

    def windows(self) -> list[Window]:
        return [self.window(i) for i in range(self.size)]

    @classmethod
    def of_windows(cls, windows: Sequence[Window], *, mixed: bool = False) -> WindowBlock:
        """The block of some :class:`Window` objects, all normalised or all raw (``mixed``: any mix,
        ``normalized`` then says whether all are; for a record of windows, not for inference)."""
        flags = {w.normalized for w in windows}
        if len(flags) > 1 and not mixed:
            raise ValueError("a block holds normalised or raw windows, not both; submit them separately")
        data = (np.array([w.data for w in windows], dtype=np.float32) if windows
                else np.empty((0, 0, 0), dtype=np.float32))
        return cls([w.sensor_id for w in windows],
                   np.array([w.index for w in windows], dtype=np.int64),
                   [w.seq for w in windows],
                   np.array([w.t_mono for w in windows], dtype=np.float64),
                   np.array([w.t_wall for w in windows], dtype=np.float64), data, flags == {True})

    @classmethod
    def concat(cls, blocks: Sequence[WindowBlock]) -> WindowBlock:
        """One block of several (same ``normalized``), rows in order."""
        if len(blocks) == 1:
            return blocks[0]
        ids: list[str] = []
        seqs: list[int | None] = []
        for b in blocks:
            ids += b.sensor_ids
            seqs += b.seq
        return cls(ids, np.concatenate([b.index for b in blocks]), seqs,
                   np.concatenate([b.t_mono for b in blocks]), np.concatenate([b.t_wall for b in blocks]),
                   np.concatenate([b.data for b in blocks]), blocks[0].normalized)

