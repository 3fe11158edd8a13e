"""One configurable network for DRSN-CW, DRSN-CS, ResNet and ConvNet, in 1-D or 2-D.

The paper compares four networks that share everything but the unit, so one class builds all
of them: a stem convolution, stages of residual units (the first unit of a stage may
downsample), then BN-ReLU-GAP-FC. Global average pooling makes the network independent of the
input length, which lets the same configuration serve 1024- or 4096-sample windows; the
``input_shape`` attribute records the size the model is meant for, and the export step uses it
for the ONNX input.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from drsn_edge.models.checks import LAYOUTS, check_dims, positive_int, spatial_size
from drsn_edge.models.layers import batch_norm, conv, kaiming_init, spatial_mean
from drsn_edge.models.units import UNIT_KINDS, ResidualUnit, UnitKind
from runtime.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stem:
    """The first convolution: ``channels`` filters of width ``kernel``, moved by ``stride``."""

    channels: int
    kernel: int = 3
    stride: int = 1


@dataclass(frozen=True)
class Stage:
    """``units`` residual units at ``channels`` channels; the first one strides by ``stride``."""

    channels: int
    units: int
    stride: int = 2


def _as_stem(value: Stem | Sequence[int]) -> Stem:
    stem = value if isinstance(value, Stem) else Stem(*value)
    for name in ("channels", "kernel", "stride"):
        positive_int(f"stem {name}", getattr(stem, name))
    return stem


def _as_stages(values: Sequence[Stage | Sequence[int]]) -> list[Stage]:
    stages = [v if isinstance(v, Stage) else Stage(*v) for v in values]
    if not stages:
        raise ConfigError("a network needs at least one stage, e.g. stages=[(16, 2, 1)] "
                          "as (channels, units, first_stride)")
    for i, s in enumerate(stages):
        for name in ("channels", "units", "stride"):
            positive_int(f"stage {i} {name}", getattr(s, name))
    return stages


class ResidualShrinkageNetwork(nn.Module):
    """Stem conv -> stages of residual units -> BN-ReLU-GAP-FC, for signals (dims=1) or images (dims=2).

    Attributes every model of this package exposes: ``input_shape`` (without the batch axis),
    ``layout`` ("NCW" or "NCHW"), ``num_classes`` and ``feature_dim``, and the methods
    ``forward_features(x) -> (N, feature_dim)`` and ``forward_head(features) -> logits``.
    """

    def __init__(self, *, dims: int, in_channels: int, num_classes: int, input_size: int | Sequence[int],
                 stem: Stem | Sequence[int], stages: Sequence[Stage | Sequence[int]],
                 unit: UnitKind = "cw", reduction: int = 1, kernel: int = 3) -> None:
        super().__init__()
        dims = check_dims(dims)
        if unit not in UNIT_KINDS:
            raise ConfigError(f"unit {unit!r} is unknown; use one of {', '.join(UNIT_KINDS)}")
        self.dims = dims
        self.layout = LAYOUTS[dims]
        self.num_classes = positive_int("num_classes", num_classes, minimum=2)
        self.input_shape: tuple[int, ...] = (positive_int("in_channels", in_channels),
                                             *spatial_size("input size", input_size, dims))
        self.unit: UnitKind = unit
        stem_spec, stage_specs = _as_stem(stem), _as_stages(stages)
        positive_int("reduction", reduction)
        self.stem = conv(dims, in_channels, stem_spec.channels, stem_spec.kernel, stem_spec.stride)
        self.stages = nn.Sequential(*self._build_stages(stem_spec.channels, stage_specs, reduction, kernel))
        width = stage_specs[-1].channels
        self.head = nn.Sequential(batch_norm(dims, width), nn.ReLU())
        self.fc = nn.Linear(width, self.num_classes)
        kaiming_init(self)

    def _build_stages(self, channels: int, stages: list[Stage], reduction: int,
                      kernel: int) -> list[nn.Sequential]:
        built = []
        for spec in stages:
            units = []
            for i in range(spec.units):
                units.append(ResidualUnit(self.dims, channels, spec.channels, spec.stride if i == 0 else 1,
                                          self.unit, reduction, kernel))
                channels = spec.channels
            built.append(nn.Sequential(*units))
        return built

    @property
    def feature_dim(self) -> int:
        """Width of :meth:`forward_features`: the channels of the last stage."""
        return int(self.fc.in_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled feature vector (N, C) the classifier sees; novelty scores are distances in it."""
        return spatial_mean(self.head(self.stages(self.stem(x))))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`forward_features` (the older name, kept for analysis code)."""
        return self.forward_features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from pooled features: the final layer alone."""
        logits: torch.Tensor = self.fc(features)
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
