"""The one module that knows TensorRT versions differ.

* TensorRT <= 10.11 (JetPack 6 ships 10.3) is weakly typed: the network takes its types from
  the FP32 ONNX and ``BuilderFlag.FP16`` lets the builder pick FP16 kernels where it likes.
* TensorRT 10.12 deprecated weak typing and TensorRT 11 removed ``BuilderFlag.FP16``: networks
  are created ``STRONGLY_TYPED`` and run exactly the precision written in the ONNX, so an FP16
  engine must be built from the FP16 ONNX (casts and FP16 weights inside, sensitive nodes FP32).

Everything else asks this module for a :class:`BuildRecipe` and follows it; nothing else
branches on the TensorRT version.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

from runtime.errors import BackendUnavailableError

log = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16"]

#: first TensorRT version that builds strongly typed networks here
STRONG_TYPING_FROM = (10, 12)


def parse_version(text: str) -> tuple[int, int]:
    """``"10.3.0.30"`` -> ``(10, 3)``."""
    match = re.match(r"\s*(\d+)\.(\d+)", text)
    if match is None:
        raise BackendUnavailableError(f"cannot read the TensorRT version {text!r}; reinstall TensorRT")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class BuildRecipe:
    """How to build an engine of ``precision`` with this TensorRT."""

    tensorrt_version: str
    precision: Precision
    strongly_typed: bool
    #: precision the parsed ONNX file must carry
    onnx_precision: Precision
    use_fp16_flag: bool

    def network_flags(self, trt: Any) -> int:
        """Bit mask for ``Builder.create_network``."""
        if not self.strongly_typed:
            return 0
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)

    @property
    def pin_sensitive_fp32(self) -> bool:
        """Weakly typed FP16: the builder may pick FP16 anywhere, so sensitive layers need constraints."""
        return self.use_fp16_flag

    def configure(self, trt: Any, config: Any) -> None:
        """Set the precision flags on an ``IBuilderConfig`` (none for strongly typed networks)."""
        if self.use_fp16_flag:
            config.set_flag(trt.BuilderFlag.FP16)

    def describe(self) -> str:
        typing = "strongly typed" if self.strongly_typed else "weakly typed"
        flag = " + BuilderFlag.FP16, sensitive layers constrained to FP32" if self.use_fp16_flag else ""
        return (
            f"TensorRT {self.tensorrt_version}: {typing}{flag}, from the {self.onnx_precision.upper()} ONNX"
        )


def recipe_for(tensorrt_version: str, precision: Precision) -> BuildRecipe:
    """The build recipe for an engine of ``precision`` on this TensorRT version."""
    strongly_typed = parse_version(tensorrt_version) >= STRONG_TYPING_FROM
    recipe = BuildRecipe(
        tensorrt_version=tensorrt_version,
        precision=precision,
        strongly_typed=strongly_typed,
        onnx_precision=precision if strongly_typed else "fp32",
        use_fp16_flag=precision == "fp16" and not strongly_typed,
    )
    log.debug("build recipe: %s", recipe.describe())
    return recipe
