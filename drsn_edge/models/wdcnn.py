"""WDCNN: the wide-first-kernel CNN of Zhang et al. (Sensors 2017), the strong 1-D baseline.

A first convolution 64 samples wide moving by 16 acts as a learnt filter bank that suppresses
high-frequency noise before the small 3-sample convolutions see the signal; that is why WDCNN
is the usual yardstick for noise robustness on raw bearing vibration. Layout (2048 samples in):

conv 64/16 x16 -> pool -> conv 3 x32 -> pool -> conv 3 x64 -> pool -> conv 3 x64 -> pool
-> conv 3 x64 (no padding) -> pool -> FC 100 -> FC classes, with BN and ReLU after each
convolution and the hidden FC.

Unlike the DRSN family it flattens instead of pooling globally, so the input length is fixed at
construction; lengths shorter than :data:`MIN_INPUT_LENGTH` leave nothing to flatten.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from drsn_edge.models.checks import positive_int
from drsn_edge.models.layers import FeatureBatchNorm, kaiming_init
from runtime.errors import ConfigError

log = logging.getLogger(__name__)

FIRST_KERNEL = 64
FIRST_STRIDE = 16
CONV_CHANNELS = (16, 32, 64, 64, 64)
HIDDEN_UNITS = 100
MIN_INPUT_LENGTH = 1024


def flattened_length(input_length: int) -> int:
    """Samples per channel left after the five conv/pool blocks (0 when the input is too short)."""
    n = (input_length + 2 * ((FIRST_KERNEL - FIRST_STRIDE) // 2) - FIRST_KERNEL) // FIRST_STRIDE + 1
    for _ in range(4):
        n //= 2  # pools 1-4; convs 2-4 keep the length
    return max(0, (n - 2) // 2)  # conv 5 has no padding, then pool 5


def _block(in_channels: int, out_channels: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(in_channels, out_channels, kernel, stride=stride, padding=padding),
        nn.BatchNorm1d(out_channels),
        nn.ReLU(),
        nn.MaxPool1d(2, 2),
    )


class WDCNN(nn.Module):
    """Deep CNN with wide first-layer kernels for raw 1-D vibration windows."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_length: int = 2048) -> None:
        super().__init__()
        self.num_classes = positive_int("num_classes", num_classes, minimum=2)
        self.input_shape: tuple[int, ...] = (positive_int("in_channels", in_channels),
                                             positive_int("input_length", input_length))
        self.layout = "NCW"
        flat = flattened_length(input_length)
        if flat < 1:
            raise ConfigError(f"WDCNN needs input_length >= {MIN_INPUT_LENGTH}, got {input_length}; "
                              "use longer windows or a DRSN model, which accepts any length")
        c = CONV_CHANNELS
        self.features = nn.Sequential(
            _block(in_channels, c[0], FIRST_KERNEL, FIRST_STRIDE, (FIRST_KERNEL - FIRST_STRIDE) // 2),
            _block(c[0], c[1], 3, 1, 1),
            _block(c[1], c[2], 3, 1, 1),
            _block(c[2], c[3], 3, 1, 1),
            _block(c[3], c[4], 3, 1, 0),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c[4] * flat, HIDDEN_UNITS),
            FeatureBatchNorm(HIDDEN_UNITS),
            nn.ReLU(),
            nn.Linear(HIDDEN_UNITS, self.num_classes),
        )
        kaiming_init(self)

    @property
    def feature_dim(self) -> int:
        """Width of :meth:`forward_features`: the hidden FC layer."""
        return HIDDEN_UNITS

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden FC activations (N, 100) in front of the final layer (``features`` is the conv stack)."""
        hidden: torch.Tensor = self.classifier[:-1](self.features(x))
        return hidden

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from :meth:`forward_features`: the final layer alone."""
        logits: torch.Tensor = self.classifier[-1](features)
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
