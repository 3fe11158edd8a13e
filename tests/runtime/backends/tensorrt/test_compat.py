"""The TensorRT version switch: which versions build strongly typed, from which ONNX, with which flag."""

from __future__ import annotations

import pytest

from runtime.backends.tensorrt.compat import parse_version, recipe_for
from runtime.errors import BackendUnavailableError


@pytest.mark.parametrize(
    ("version", "strong", "onnx_precision", "fp16_flag"),
    [
        ("8.6.1", False, "fp32", True),
        ("10.3.0.30", False, "fp32", True),  # JetPack 6
        ("10.11.0.33", False, "fp32", True),
        ("10.12.0.36", True, "fp16", False),
        ("10.13.0.35", True, "fp16", False),
        ("11.0.0.114", True, "fp16", False),
    ],
)
def test_fp16_recipe_per_version(version: str, strong: bool, onnx_precision: str, fp16_flag: bool) -> None:
    recipe = recipe_for(version, "fp16")
    assert (recipe.strongly_typed, recipe.onnx_precision, recipe.use_fp16_flag) == (
        strong,
        onnx_precision,
        fp16_flag,
    )


@pytest.mark.parametrize("version", ["10.3.0", "11.1.0"])
def test_fp32_never_sets_the_fp16_flag(version: str) -> None:
    recipe = recipe_for(version, "fp32")
    assert recipe.onnx_precision == "fp32" and not recipe.use_fp16_flag


def test_version_parsing() -> None:
    assert parse_version("10.3.0.30") == (10, 3)
    assert parse_version("11.0") == (11, 0)
    with pytest.raises(BackendUnavailableError, match="version"):
        parse_version("unknown")
