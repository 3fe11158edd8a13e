"""A serialisable description of where training data comes from, and how to rebuild it.

The spec is stored in every checkpoint (``metadata.training.data_spec``) so that
``drsn-edge evaluate`` and the export parity gates rebuild exactly the same splits, and so that a
reader of the metadata can tell which recordings, windows and noise a model has seen.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runtime.errors import ConfigError

SourceKind = Literal["cwru", "folder", "synthetic", "mnist"]


@dataclass
class DataSpec:
    """Everything needed to rebuild train/val/test splits deterministically."""

    source: SourceKind = "synthetic"
    path: str | None = None
    sample_rate: float | None = None
    window: int = 2048
    hop: int | None = None
    test_hop: int | None = None
    split: Literal["time", "recording"] = "time"
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    labels: Literal["10class", "4class"] = "10class"
    select: dict[str, Any] = field(default_factory=dict)
    test_select: dict[str, Any] = field(default_factory=dict)
    noise: str | None = None
    noise_protocol: Literal["train_test", "test_only"] = "train_test"
    seed: int = 0
    synthetic_per_class: int = 4
    synthetic_seconds: float = 4.0
    synthetic_severity: tuple[float, float] = (0.5, 1.0)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["fractions"] = list(self.fractions)
        d["synthetic_severity"] = list(self.synthetic_severity)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for key in ("fractions", "synthetic_severity"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)

    def validate(self) -> None:
        if self.source in ("cwru", "folder", "mnist") and not self.path:
            raise ConfigError(f"data source {self.source!r} needs a path: pass --data DIR")
        if self.path and not Path(self.path).exists():
            raise ConfigError(f"data path {self.path} does not exist; check --data")
        if self.window <= 0 or (self.hop is not None and self.hop <= 0):
            raise ConfigError("window and hop must be positive sample counts")
        if abs(sum(self.fractions) - 1.0) > 1e-6 or min(self.fractions) <= 0:
            raise ConfigError(f"split fractions {self.fractions} must be positive and sum to 1")


def parse_selection(items: list[str] | None) -> dict[str, Any]:
    """Parse ``key=value[,value...]`` flags (e.g. ``load_hp=0,1``) into selection criteria."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(
                f"selection {item!r} must look like key=value (e.g. load_hp=0 or fault=inner,outer)"
            )
        key, raw = item.split("=", 1)
        values = [_scalar(v) for v in raw.split(",") if v != ""]
        out[key.strip()] = values[0] if len(values) == 1 else values
    return out


def _scalar(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text
