"""Residual units of the DRSN family and of the baselines the paper compares against.

Every unit is pre-activation (BN-ReLU-Conv, twice, as in He et al.'s identity-mapping ResNet)
and differs only in what happens after the second convolution:

* ``cw`` (RSBU-CW): soft threshold, one tau per channel and sample; identity shortcut.
* ``cs`` (RSBU-CS): soft threshold, one tau per sample; identity shortcut.
* ``plain`` (RBU, the ResNet baseline): no threshold; identity shortcut.
* ``noshortcut`` (CBU, the ConvNet baseline): no threshold and no shortcut.

The threshold acts on the residual branch *before* the addition, so the identity path stays
untouched and gradients still flow through it unattenuated. When a unit downsamples or widens,
the shortcut subsamples by the stride and zero-pads the new channels instead of learning a 1x1
projection: the reference implementations insist on it, it keeps the shortcut an exact identity
on the existing channels, and it costs no parameters.
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import nn

from drsn_edge.models.checks import check_dims
from drsn_edge.models.layers import batch_norm, conv
from drsn_edge.models.shrinkage import Shrinkage, ThresholdMode
from runtime.errors import ConfigError

log = logging.getLogger(__name__)

UnitKind = Literal["cw", "cs", "plain", "noshortcut"]
UNIT_KINDS: tuple[str, ...] = ("cw", "cs", "plain", "noshortcut")


class ChannelPadShortcut(nn.Module):
    """Parameter-free shortcut: keep every ``stride``-th sample, then zero-pad new channels.

    The padding is split evenly between the front and the back of the channel axis (the extra
    channel goes to the back when the difference is odd), as in the reference programs.
    """

    def __init__(self, dims: int, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ConfigError(f"a shortcut cannot drop channels ({in_channels} -> {out_channels}); "
                              "make each stage at least as wide as the one before it")
        if stride < 1:
            raise ConfigError(f"stride must be >= 1, got {stride}")
        self.dims = check_dims(dims)
        self.stride = stride
        extra = out_channels - in_channels
        self.pad_front = extra // 2
        self.pad_back = extra - extra // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            every_nth = (slice(None), slice(None)) + (slice(None, None, self.stride),) * self.dims
            x = x[every_nth]
        if self.pad_front or self.pad_back:
            x = nn.functional.pad(x, (0, 0) * self.dims + (self.pad_front, self.pad_back))
        return x

    def extra_repr(self) -> str:
        return f"stride={self.stride}, pad=({self.pad_front}, {self.pad_back})"


def _pre_activation_branch(dims: int, in_channels: int, out_channels: int, stride: int,
                           kernel: int) -> nn.Sequential:
    """BN-ReLU-Conv(stride) then BN-ReLU-Conv: the residual branch shared by all four units."""
    return nn.Sequential(
        batch_norm(dims, in_channels),
        nn.ReLU(),
        conv(dims, in_channels, out_channels, kernel, stride=stride),
        batch_norm(dims, out_channels),
        nn.ReLU(),
        conv(dims, out_channels, out_channels, kernel),
    )


class ResidualUnit(nn.Module):
    """One pre-activation unit; ``kind`` selects RSBU-CW, RSBU-CS, RBU or CBU (see module doc)."""

    def __init__(self, dims: int, in_channels: int, out_channels: int, stride: int = 1,
                 kind: UnitKind = "cw", reduction: int = 1, kernel: int = 3) -> None:
        super().__init__()
        if kind not in UNIT_KINDS:
            raise ConfigError(f"unit kind {kind!r} is unknown; use one of {', '.join(UNIT_KINDS)}")
        if min(in_channels, out_channels, stride, kernel) < 1:
            raise ConfigError(f"a unit needs positive channels, stride and kernel; got in={in_channels}, "
                              f"out={out_channels}, stride={stride}, kernel={kernel}")
        if kernel % 2 == 0:
            raise ConfigError(f"unit kernel {kernel} is even; use an odd kernel (e.g. 3) so the residual "
                              "branch keeps the length of the subsampled shortcut")
        self.kind: UnitKind = kind
        self.branch = _pre_activation_branch(dims, in_channels, out_channels, stride, kernel)
        mode: ThresholdMode | None = "cw" if kind == "cw" else "cs" if kind == "cs" else None
        self.shrinkage = Shrinkage(out_channels, mode, reduction) if mode is not None else None
        self.shortcut = (None if kind == "noshortcut"
                         else ChannelPadShortcut(dims, in_channels, out_channels, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual: torch.Tensor = self.branch(x)
        if self.shrinkage is not None:
            residual = self.shrinkage(residual)
        if self.shortcut is None:
            return residual
        shortcut: torch.Tensor = self.shortcut(x)
        return residual + shortcut


class RSBUCW(ResidualUnit):
    """Residual shrinkage building unit with channel-wise thresholds (DRSN-CW)."""

    def __init__(self, dims: int, in_channels: int, out_channels: int, stride: int = 1,
                 reduction: int = 1, kernel: int = 3) -> None:
        super().__init__(dims, in_channels, out_channels, stride, "cw", reduction, kernel)


class RSBUCS(ResidualUnit):
    """Residual shrinkage building unit with a channel-shared threshold (DRSN-CS)."""

    def __init__(self, dims: int, in_channels: int, out_channels: int, stride: int = 1,
                 reduction: int = 1, kernel: int = 3) -> None:
        super().__init__(dims, in_channels, out_channels, stride, "cs", reduction, kernel)


class RBU(ResidualUnit):
    """Plain residual building unit (ResNet baseline): no shrinkage."""

    def __init__(self, dims: int, in_channels: int, out_channels: int, stride: int = 1,
                 kernel: int = 3) -> None:
        super().__init__(dims, in_channels, out_channels, stride, "plain", 1, kernel)


class CBU(ResidualUnit):
    """Convolutional building unit (ConvNet baseline): neither shrinkage nor shortcut."""

    def __init__(self, dims: int, in_channels: int, out_channels: int, stride: int = 1,
                 kernel: int = 3) -> None:
        super().__init__(dims, in_channels, out_channels, stride, "noshortcut", 1, kernel)
