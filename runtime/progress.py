"""A progress bar that is optional: tqdm when it is installed, a silent stand-in otherwise.

tqdm is not a dependency of the device package (the daemon never draws bars); host commands
install it with the ``train`` or ``demo`` extra. Benchmarks that may run on a bare device use
this instead of importing tqdm, so a missing bar never stops a measurement.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any


class SilentProgress:
    """The part of tqdm's interface the benchmarks use, doing nothing but counting."""

    def __init__(self, total: float | None = None) -> None:
        self.total = total
        self.n: float = 0

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str) -> None:
        """Ignored: there is no bar to annotate."""

    def __enter__(self) -> SilentProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def progress_bar(total: float, desc: str, *, unit: str = "it", disable: bool | None = False,
                 leave: bool = True) -> Any:
    """A tqdm bar on stderr, or a :class:`SilentProgress` when tqdm is missing or ``disable`` is True.

    ``disable=None`` is tqdm's "only on a terminal".
    """
    if disable is True:
        return SilentProgress(total)
    try:
        from tqdm import tqdm
    except ImportError:
        return SilentProgress(total)
    import sys

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable, leave=leave)
