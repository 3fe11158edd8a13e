"""A labelled recording and selection by its metadata.

Recordings carry their operating conditions (fault, size, load, speed, source file) so that a
study can train on one condition and test on another: ``select(recs, load_hp=0)`` for training,
``select(recs, load_hp=[1, 2, 3])`` for testing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime.errors import DataError
from runtime.signals.readers import check_finite

log = logging.getLogger(__name__)

#: Labels that mean "no fault"; the first one present becomes the healthy class.
HEALTHY_LABELS: tuple[str, ...] = ("normal", "healthy", "ok", "good")


@dataclass(eq=False)
class Recording:
    """One continuous labelled signal: float32 ``(n,)`` or ``(channels, n)`` at ``sample_rate`` Hz.

    Equality is identity: comparing sample arrays element-wise is neither cheap nor meaningful.
    """

    signal: np.ndarray
    sample_rate: float
    label: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.signal = np.asarray(self.signal, dtype=np.float32)
        where = self.meta.get("source", self.label)
        if self.signal.ndim not in (1, 2) or self.signal.shape[-1] == 0:
            raise DataError(
                f"recording {where}: signal of shape {self.signal.shape} must be (n,) or (channels, n)"
            )
        if not self.sample_rate > 0:
            raise DataError(f"recording {where}: sample rate must be positive, got {self.sample_rate}")
        check_finite(self.signal, f"recording {where}")

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[-1])

    @property
    def channels(self) -> int:
        return 1 if self.signal.ndim == 1 else int(self.signal.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate

    def as_channels(self) -> np.ndarray:
        """The signal as ``(channels, n)``."""
        return self.signal[None, :] if self.signal.ndim == 1 else self.signal

    def describe(self) -> dict[str, Any]:
        """Fields of ``meta`` and the label that identify the recording in a JSON summary."""
        keep = {k: jsonable(v) for k, v in self.meta.items() if k != "selection"}
        return {"label": self.label, "sample_rate": float(self.sample_rate), "n_samples": self.n_samples,
                **keep}


def matches(fields: Mapping[str, Any], criteria: Mapping[str, Any]) -> bool:
    """True if every criterion matches: a scalar by equality, a list/tuple/set by membership.

    Numbers compare numerically (``load_hp=0`` matches ``0.0``), strings case-insensitively.
    """
    for key, wanted in criteria.items():
        options = wanted if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
        if not any(_same(fields.get(key), w) for w in options):
            return False
    return True


def select(recordings: Sequence[Recording], **criteria: Any) -> list[Recording]:
    """Recordings whose label or metadata match every criterion (see :func:`matches`).

    The result remembers its criteria (``meta["selection"]``) so that split summaries can say
    which operating conditions a model was trained and tested on. An unknown key raises
    :class:`DataError` naming the keys that exist, since a typo would otherwise select nothing.
    """
    if not criteria:
        return list(recordings)
    known = set().union(*(selection_fields(r) for r in recordings)) if recordings else set()
    unknown = sorted(set(criteria) - known)
    if unknown and recordings:
        raise DataError(f"cannot select by {unknown}: recordings have {sorted(known)}; use one of those keys")
    chosen = [
        dataclasses.replace(r, meta={**r.meta, "selection": {**r.meta.get("selection", {}), **criteria}})
        for r in recordings
        if matches(selection_fields(r), criteria)
    ]
    log.debug("selected %d of %d recordings by %s", len(chosen), len(recordings), criteria)
    return chosen


def selection_fields(rec: Recording) -> dict[str, Any]:
    """The fields a criterion may name: the metadata plus ``label`` and ``sample_rate``."""
    return {**rec.meta, "label": rec.label, "sample_rate": rec.sample_rate}


def order_classes(labels: Iterable[str]) -> list[str]:
    """A stable class order: the healthy label first, then the others sorted.

    Sorting makes the order independent of file-system listing order, so two runs (or the
    train and test sets of one study) agree on which logit means which class.
    """
    unique = sorted(set(labels))
    healthy = healthy_label(unique)
    return ([healthy] if healthy else []) + [c for c in unique if c != healthy]


def healthy_label(classes: Iterable[str]) -> str | None:
    """The class that means "no fault", or None when no class has one of :data:`HEALTHY_LABELS`."""
    by_name = {c.lower(): c for c in classes}
    return next((by_name[h] for h in HEALTHY_LABELS if h in by_name), None)


def _same(value: Any, wanted: Any) -> bool:
    if value is None:
        return wanted is None
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        try:
            return abs(float(value) - float(wanted)) <= 1e-9 * max(1.0, abs(float(value)))
        except (TypeError, ValueError):
            return False
    return str(value).strip().lower() == str(wanted).strip().lower()


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and tuples turned into plain JSON types (others become strings)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)
