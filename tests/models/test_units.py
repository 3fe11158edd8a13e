"""Residual units: the shortcut is parameter-free, CBU has none, the threshold sits on the branch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from drsn_edge.models import CBU, RBU, RSBUCS, RSBUCW, ChannelPadShortcut, ResidualUnit
from runtime.errors import ConfigError


def _zero_last_conv(unit: ResidualUnit) -> None:
    last = unit.branch[-1]
    assert isinstance(last, (nn.Conv1d, nn.Conv2d))
    with torch.no_grad():
        last.weight.zero_()
        assert last.bias is not None
        last.bias.zero_()


@pytest.mark.parametrize("dims", [1, 2])
def test_downsample_shortcut_subsamples_and_zero_pads_without_parameters(dims: int) -> None:
    shortcut = ChannelPadShortcut(dims, 3, 8, stride=2)
    assert sum(p.numel() for p in shortcut.parameters()) == 0
    x = torch.randn(2, 3, *([7] * dims))
    out = shortcut(x)
    assert out.shape == (2, 8, *([4] * dims))
    sub = x[:, :, ::2] if dims == 1 else x[:, :, ::2, ::2]
    assert torch.equal(out[:, 2:5], sub)  # (8 - 3) = 5 new channels: 2 in front, 3 behind
    assert (out[:, :2] == 0).all() and (out[:, 5:] == 0).all()


def test_identity_shortcut_returns_its_input() -> None:
    x = torch.randn(2, 4, 10)
    assert torch.equal(ChannelPadShortcut(1, 4, 4, 1)(x), x)


@pytest.mark.parametrize("cls", [RSBUCW, RSBUCS, RBU])
@pytest.mark.parametrize("dims", [1, 2])
def test_units_with_a_shortcut_pass_their_input_when_the_branch_is_silent(cls: type, dims: int) -> None:
    unit = cls(dims, 4, 8, stride=2).eval()
    _zero_last_conv(unit)
    x = torch.randn(3, 4, *([9] * dims))
    assert torch.equal(unit(x), unit.shortcut(x))
    assert unit.shortcut(x).abs().sum() > 0


@pytest.mark.parametrize("dims", [1, 2])
def test_cbu_has_no_shortcut(dims: int) -> None:
    unit = CBU(dims, 4, 4).eval()
    assert unit.shortcut is None
    _zero_last_conv(unit)
    x = torch.randn(3, 4, *([9] * dims))
    assert (unit(x) == 0).all()  # nothing of x reaches the output except through the branch


def test_threshold_acts_on_the_branch_before_the_addition() -> None:
    unit = RSBUCW(1, 4, 4).eval()
    assert unit.shrinkage is not None
    unit.shrinkage.record = True
    x = torch.randn(2, 4, 33)
    out = unit(x)
    residual = out - x
    # the residual is a soft-thresholded tensor: exact zeros in the band, never above the raw branch
    assert (residual.abs() < 1e-6).float().mean() > 0.05
    assert (residual.abs() <= unit.branch(x).abs() + 1e-6).all()


@pytest.mark.parametrize("length", [33, 64, 101])
def test_strided_unit_keeps_branch_and_shortcut_aligned_on_odd_lengths(length: int) -> None:
    unit = RSBUCW(1, 4, 8, stride=2)
    assert unit(torch.randn(2, 4, length)).shape == (2, 8, (length + 1) // 2)


def test_unit_kinds_differ_only_in_the_threshold_subnetwork() -> None:
    def count(m: nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    cw, cs, rbu, cbu = RSBUCW(1, 8, 8), RSBUCS(1, 8, 8), RBU(1, 8, 8), CBU(1, 8, 8)
    assert count(rbu) == count(cbu)
    assert count(cw) - count(rbu) == (8 * 8 + 8) + 2 * 8 + (8 * 8 + 8)  # FC, BN, FC with C units
    assert count(cs) - count(rbu) == (8 * 8 + 8) + 2 * 8 + (8 + 1)  # second FC has one unit


def test_bad_unit_arguments_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="drop channels"):
        ChannelPadShortcut(1, 8, 4)
    with pytest.raises(ConfigError, match="odd kernel"):
        RSBUCW(1, 4, 4, kernel=4)
    with pytest.raises(ConfigError, match="unit kind"):
        ResidualUnit(1, 4, 4, kind="dense")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="dims"):
        RBU(3, 4, 4)
