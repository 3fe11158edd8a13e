"""Per-sensor state kept as rows of numpy columns that grow by doubling.

Why: the daemon's fault states and novelty flags of many sensors are stepped together, once
per batch, as array operations; each sensor is one row. Both need the same bookkeeping (add a
row, grow the columns, copy a row from another array when a sensor's config moves it), kept
here once so the two cannot drift apart.
"""

from __future__ import annotations

from typing import ClassVar


class RowArrays:
    """Columns named in ``_COLUMNS``, allocated by the subclass's ``_alloc(n)``, ``rows`` in use.

    The capacity is the length of the first named column (every column has one row per sensor).
    """

    _COLUMNS: ClassVar[tuple[str, ...]] = ()
    rows: int

    def _alloc(self, n: int) -> None:
        raise NotImplementedError

    def add_row(self) -> int:
        """A fresh row (warm-up, no state); the columns double when full."""
        if self.rows == len(getattr(self, self._COLUMNS[0])):
            old = {name: getattr(self, name) for name in self._COLUMNS}
            self._alloc(2 * self.rows)
            for name, values in old.items():
                getattr(self, name)[: self.rows] = values
        self.rows += 1
        return self.rows - 1

    def copy_row(self, src: RowArrays, src_row: int, row: int) -> None:
        """Take over ``src``'s row (same config and columns) into ``row`` of this array."""
        for name in self._COLUMNS:
            getattr(self, name)[row] = getattr(src, name)[src_row]
