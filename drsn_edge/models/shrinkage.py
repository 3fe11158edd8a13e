"""The shrinkage layer of a DRSN: soft thresholding with thresholds learnt per sample.

Noise in a vibration window shows up, after a few convolutions, as many small feature values;
soft thresholding sets everything inside [-tau, tau] to zero and shrinks the rest towards zero
by tau, the step at the heart of wavelet denoising. A DRSN learns tau instead of hand-tuning it:
a small attention sub-network looks at the mean absolute value of each channel and outputs a
scale alpha in (0, 1), and ``tau = alpha * mean|x|``. Because alpha is a sigmoid, tau is always
positive and never larger than the mean magnitude, so the layer can never silence everything it
is given: with CW every channel keeps its values above its own mean magnitude, with CS the
feature map as a whole does.

Two variants (Zhao et al., IEEE TII 2020):

* channel-wise (``"cw"``): one tau per channel and sample;
* channel-shared (``"cs"``): one tau per sample, scaled from the mean over all channels.

The arithmetic is kept to Abs, Sign, Sub, Relu, Mul, ReduceMean, Gemm and Sigmoid so that the
exported ONNX graph has no Softshrink and no control flow, which TensorRT would reject or run
slowly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn

from drsn_edge.models.layers import FeatureBatchNorm, spatial_mean
from runtime.errors import ConfigError

log = logging.getLogger(__name__)

ThresholdMode = Literal["cw", "cs"]
THRESHOLD_MODES: tuple[str, ...] = ("cw", "cs")


def soft_threshold(x: torch.Tensor, tau: torch.Tensor, abs_x: torch.Tensor | None = None) -> torch.Tensor:
    """``sign(x) * relu(|x| - tau)``: zero inside [-tau, tau], shrunk towards zero by tau outside.

    ``tau`` must broadcast against ``x``. ``abs_x`` may pass an already computed ``|x|`` so the
    exported graph computes it once.
    """
    magnitude = x.abs() if abs_x is None else abs_x
    return torch.sign(x) * torch.relu(magnitude - tau)


class Shrinkage(nn.Module):
    """Threshold sub-network plus soft thresholding, for (N, C, L) or (N, C, H, W) inputs.

    The sub-network is GAP(|x|) -> FC -> BN -> ReLU -> FC -> sigmoid = alpha. Its hidden width is
    ``channels // reduction`` (at least one unit); the paper uses the channel count (reduction 1),
    the CIFAR reference a quarter of it.

    Set ``record = True`` to keep the last thresholds (``last_tau``: (N, C) for CW, (N, 1) for CS)
    and channel magnitudes (``last_abs_mean``: (N, C)), detached, for analysis plots of how hard
    each block shrinks.
    """

    def __init__(self, channels: int, mode: ThresholdMode = "cw", reduction: int = 1) -> None:
        super().__init__()
        if mode not in THRESHOLD_MODES:
            raise ConfigError(f"threshold mode {mode!r} is unknown; "
                              "use 'cw' (channel-wise) or 'cs' (channel-shared)")
        if channels < 1 or reduction < 1:
            raise ConfigError(f"shrinkage needs channels >= 1 and reduction >= 1, "
                              f"got channels={channels}, reduction={reduction}")
        hidden = max(1, channels // reduction)
        self.channels = channels
        self.mode: ThresholdMode = mode
        self.reduction = reduction
        self.fc1 = nn.Linear(channels, hidden)
        self.bn = FeatureBatchNorm(hidden)
        self.fc2 = nn.Linear(hidden, channels if mode == "cw" else 1)
        self.record = False
        self.last_tau: torch.Tensor | None = None
        self.last_abs_mean: torch.Tensor | None = None

    def thresholds(self, abs_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(tau, mean|x|) from ``|x|``: tau is (N, C) for CW or (N, 1) for CS, mean|x| is (N, C)."""
        abs_mean = spatial_mean(abs_x)
        alpha = torch.sigmoid(self.fc2(torch.relu(self.bn(self.fc1(abs_mean)))))
        scale = abs_mean if self.mode == "cw" else abs_mean.mean(dim=1, keepdim=True)
        return alpha * scale, abs_mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        abs_x = x.abs()
        tau, abs_mean = self.thresholds(abs_x)
        if self.record:
            self.last_tau = tau.detach()
            self.last_abs_mean = abs_mean.detach()
        for _ in range(x.dim() - 2):
            tau = tau.unsqueeze(-1)
        return soft_threshold(x, tau, abs_x)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mode={self.mode!r}, reduction={self.reduction}"


def shrinkage_layers(model: nn.Module) -> list[Shrinkage]:
    """Every shrinkage layer of ``model``, in the order the forward pass meets them."""
    return [m for m in model.modules() if isinstance(m, Shrinkage)]


@contextmanager
def recording(model: nn.Module) -> Iterator[list[Shrinkage]]:
    """Record thresholds in every shrinkage layer for the duration of a ``with`` block.

    Yields the layers (in forward order) so the caller can read ``last_tau`` / ``last_abs_mean``
    after a forward pass; the previous ``record`` flags are restored on exit.
    """
    layers = shrinkage_layers(model)
    previous = [layer.record for layer in layers]
    for layer in layers:
        layer.record = True
    try:
        yield layers
    finally:
        for layer, flag in zip(layers, previous, strict=True):
            layer.record = flag
