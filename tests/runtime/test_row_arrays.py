"""Rows of per-sensor columns: growing keeps every row's values, copying takes a whole row."""

from __future__ import annotations

import numpy as np

from runtime.novelty.smoothing import FlagArray, SmoothingSpec
from runtime.row_arrays import RowArrays


class _Pair(RowArrays):
    _COLUMNS = ("pos", "value")

    def __init__(self) -> None:
        self.rows = 0
        self._alloc(1)

    def _alloc(self, n: int) -> None:
        self.pos = np.zeros(n, dtype=np.int64)
        self.value = np.zeros((n, 2), dtype=np.float64)


def test_rows_survive_the_columns_doubling() -> None:
    a = _Pair()
    for i in range(9):
        row = a.add_row()
        a.pos[row], a.value[row] = i, (i, -i)
    assert a.rows == 9 and len(a.pos) == 16
    assert a.pos[:9].tolist() == list(range(9))
    assert a.value[:9, 1].tolist() == [-i for i in range(9)]


def test_copy_row_takes_every_column() -> None:
    a, b = _Pair(), _Pair()
    src = a.add_row()
    a.pos[src], a.value[src] = 7, (1.5, 2.5)
    dst = b.add_row()
    b.copy_row(a, src, dst)
    assert (b.pos[dst], b.value[dst].tolist()) == (7, [1.5, 2.5])


def test_flag_rows_keep_their_history_across_growth() -> None:
    flags = FlagArray(SmoothingSpec(enter=1.0, exit=0.5, history=2, min_windows=1))
    rows = np.array([flags.add_row() for _ in range(3)])
    high = np.array([5.0, 0.0, 5.0])
    assert not flags.step(rows, high).any()  # the flag waits for a full history
    assert flags.step(rows, high).tolist() == [True, False, True]
    more = np.array([flags.add_row() for _ in range(40)])  # forces several doublings
    assert flags.step(rows, np.array([0.6, 0.0, 0.0])).tolist() == [True, False, True]  # means 2.8, 0, 2.5
    assert not flags.step(more, np.zeros(len(more))).any()
