"""Dimension-generic building blocks shared by every network in this package.

The same residual units serve 1-D vibration windows (N, C, L) and 2-D images (N, C, H, W); the
helpers here pick the 1-D or 2-D torch layer so that the units themselves never branch on the
dimensionality. Everything exports to plain ONNX operators (Conv, BatchNormalization,
ReduceMean, Gemm) that TensorRT and ONNX Runtime both run natively.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from drsn_edge.models.checks import check_dims

log = logging.getLogger(__name__)


def conv(dims: int, in_channels: int, out_channels: int, kernel: int, stride: int = 1,
         padding: int | None = None) -> nn.Module:
    """A 1-D or 2-D convolution; ``padding`` defaults to ``kernel // 2`` ("same" for odd kernels).

    With the default padding, a stride-s convolution yields ``ceil(L / s)`` samples, exactly the
    length of the ``x[..., ::s]`` subsample taken by the parameter-free shortcut, so the residual
    branch and the shortcut always line up.
    """
    pad = kernel // 2 if padding is None else padding
    cls = nn.Conv1d if check_dims(dims) == 1 else nn.Conv2d
    return cls(in_channels, out_channels, kernel, stride=stride, padding=pad, bias=True)


def batch_norm(dims: int, channels: int) -> nn.Module:
    """BatchNorm over the channel axis of a 1-D or 2-D feature map."""
    return nn.BatchNorm1d(channels) if check_dims(dims) == 1 else nn.BatchNorm2d(channels)


def spatial_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over every axis after the channel axis: (N, C, ...) -> (N, C).

    Written as one reduction over a static axis list so that it exports as a single ReduceMean
    (the axes depend only on the tensor's rank, which is fixed at export time).
    """
    return x.mean(dim=tuple(range(2, x.dim())))


class FeatureBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over (N, F) feature vectors that tolerates a training batch of one sample.

    torch refuses to normalise a single vector in training mode (its batch variance is
    undefined), so a last partial batch of one window would crash a whole training epoch. Such a
    batch carries no batch statistics; it is normalised with the running estimates, which are
    left untouched. Every other case, and the exported eval-mode graph, is plain BatchNorm1d.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.training and input.shape[0] == 1:
            return nn.functional.batch_norm(input, self.running_mean, self.running_var, self.weight,
                                            self.bias, training=False, eps=self.eps)
        return super().forward(input)


def kaiming_init(module: nn.Module) -> None:
    """He-normal weights (fan-in, ReLU gain) and zero biases; BatchNorm starts as the identity.

    This is the initialisation of the reference implementations (``he_normal``), which keeps the
    activation scale steady through the pre-activation units.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
