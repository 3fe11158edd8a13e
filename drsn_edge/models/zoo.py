"""Configuration factories behind the named models of :mod:`drsn_edge.models.registry`.

Each factory builds one configuration of :class:`ResidualShrinkageNetwork` (or WDCNN); its
keyword arguments are exactly the options a user may override for the models built from it, and
the registry reads their defaults from the signature, so nothing is stated twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from drsn_edge.models.checks import positive_int, spatial_size
from drsn_edge.models.network import ResidualShrinkageNetwork, Stage, Stem
from drsn_edge.models.units import UnitKind
from drsn_edge.models.wdcnn import WDCNN

log = logging.getLogger(__name__)

#: Zhao et al. 2020, Table II: Conv(4, 3, /2) then 1 + 3 units at 4, 8 and 16 channels.
PAPER_STEM = Stem(channels=4, kernel=3, stride=2)
PAPER_STAGES = (Stage(4, 4, 2), Stage(8, 4, 2), Stage(16, 4, 2))

#: Scalable 1-D family: (width of the first stage, units per stage).
SIZES: dict[str, tuple[int, int]] = {"s": (8, 2), "m": (16, 3), "l": (32, 4)}


def paper_1d(unit: UnitKind, num_classes: int = 10, in_channels: int = 1,
             input_length: int = 2048) -> ResidualShrinkageNetwork:
    """The paper's 1-D network (about 11.6k parameters as DRSN-CW with 10 classes).

    Threshold FCs are as wide as their stage (reduction 1), as in the paper.
    """
    length = positive_int("input_length", input_length)
    return ResidualShrinkageNetwork(dims=1, in_channels=in_channels, num_classes=num_classes,
                                    input_size=length, stem=PAPER_STEM, stages=PAPER_STAGES,
                                    unit=unit, reduction=1)


def mnist_2d(unit: UnitKind, num_classes: int = 10, in_channels: int = 1,
             image_size: int | Sequence[int] = 28) -> ResidualShrinkageNetwork:
    """The reference MNIST program: Conv 8 3x3, one downsampling unit at 8 channels."""
    size = spatial_size("image_size", image_size, 2)
    return ResidualShrinkageNetwork(dims=2, in_channels=in_channels, num_classes=num_classes,
                                    input_size=size, stem=Stem(8, 3, 1), stages=[Stage(8, 1, 2)],
                                    unit=unit, reduction=1)


def cifar_2d(unit: UnitKind, num_classes: int = 10, in_channels: int = 3,
             image_size: int | Sequence[int] = 32) -> ResidualShrinkageNetwork:
    """The reference CIFAR-10 program: Conv 16 3x3, units at 16, 32/2, 32/2, threshold FC width C/4."""
    size = spatial_size("image_size", image_size, 2)
    return ResidualShrinkageNetwork(dims=2, in_channels=in_channels, num_classes=num_classes,
                                    input_size=size, stem=Stem(16, 3, 1),
                                    stages=[Stage(16, 1, 1), Stage(32, 1, 2), Stage(32, 1, 2)],
                                    unit=unit, reduction=4)


def scalable_1d(unit: UnitKind, num_classes: int = 10, in_channels: int = 1, input_length: int = 2048,
                width: int = 16, depth: int = 3, reduction: int = 1,
                stem_kernel: int = 7) -> ResidualShrinkageNetwork:
    """Three stages at ``width``, 2x and 4x channels with ``depth`` units each, every stage halving.

    The stem is wider than the paper's (7 samples by default) so that a shallow, narrow model
    still sees a useful stretch of the raw signal; with the stem's own stride the network
    downsamples 16 times, like the paper's.
    """
    width = positive_int("width", width)
    depth = positive_int("depth", depth)
    stem_kernel = positive_int("stem_kernel", stem_kernel)
    input_length = positive_int("input_length", input_length)
    stages = [Stage(width, depth, 2), Stage(2 * width, depth, 2), Stage(4 * width, depth, 2)]
    return ResidualShrinkageNetwork(dims=1, in_channels=in_channels, num_classes=num_classes,
                                    input_size=input_length, stem=Stem(width, stem_kernel, 2),
                                    stages=stages, unit=unit, reduction=reduction)


def wdcnn(num_classes: int = 10, in_channels: int = 1, input_length: int = 2048) -> WDCNN:
    """WDCNN (Zhang et al. 2017), the wide-first-kernel CNN baseline."""
    return WDCNN(num_classes=num_classes, in_channels=in_channels, input_length=input_length)
