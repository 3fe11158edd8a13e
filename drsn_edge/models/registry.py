"""The named models: an explicit table of thin factories over one configurable network.

A name pins a configuration (``drsn_cw_paper`` is the paper's Table II network with
channel-wise thresholds); the options a name leaves open (``num_classes``, ``input_length``,
``width``...) may be overridden, and checkpoints store the name plus the overrides so that
``create_model(name, **kwargs)`` rebuilds exactly the trained network. The table is built once,
in this module, from plain function calls: nothing registers itself by being imported.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from drsn_edge.models import zoo
from drsn_edge.models.checks import LAYOUTS
from runtime.errors import ConfigError

log = logging.getLogger(__name__)

#: unit kind -> (name prefix, family, human name)
_VARIANTS: dict[str, tuple[str, str, str]] = {
    "cw": ("drsn_cw", "drsn-cw", "DRSN with channel-wise thresholds"),
    "cs": ("drsn_cs", "drsn-cs", "DRSN with channel-shared thresholds"),
    "plain": ("resnet", "resnet", "ResNet baseline (no shrinkage)"),
    "noshortcut": ("convnet", "convnet", "ConvNet baseline (no shrinkage, no shortcuts)"),
}


@dataclass(frozen=True)
class ModelSpec:
    """What a name stands for: a factory, the arguments the name pins, and option defaults."""

    name: str
    family: str
    dims: int
    description: str
    factory: Callable[..., nn.Module]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        """Overridable options and their defaults, read from the factory's signature."""
        params = inspect.signature(self.factory).parameters
        opts = {k: p.default for k, p in params.items() if k not in self.fixed}
        opts.update(self.defaults)
        return opts

    def input_shape(self) -> list[int]:
        """Default input shape without the batch axis, derived from the default options."""
        opts = self.options()
        if self.dims == 1:
            return [int(opts["in_channels"]), int(opts["input_length"])]
        size = opts["image_size"]
        hw = [size, size] if isinstance(size, int) else list(size)
        return [int(opts["in_channels"]), *map(int, hw)]


def _variant(unit: str, suffix: str, dims: int, factory: Callable[..., nn.Module], what: str,
             **defaults: Any) -> ModelSpec:
    prefix, family, human = _VARIANTS[unit]
    return ModelSpec(f"{prefix}_{suffix}", family, dims, f"{human}: {what}", factory,
                     fixed={"unit": unit}, defaults=defaults)


def _build_table() -> dict[str, ModelSpec]:
    specs = [
        *(_variant(u, "paper", 1, zoo.paper_1d, "the paper's 1-D network (Table II), 2048 samples, "
                   "three stages of 4 units at 4/8/16 channels")
          for u in ("cw", "cs", "plain", "noshortcut")),
        *(_variant(u, "mnist", 2, zoo.mnist_2d, "the reference MNIST network (28x28x1), one 8-channel unit")
          for u in ("cw", "cs", "plain")),
        *(_variant(u, "cifar", 2, zoo.cifar_2d, "the reference CIFAR-10 network (32x32x3), units at "
                   "16/32/32 channels, threshold FC width C/4")
          for u in ("cw", "cs", "plain")),
        *(_variant(u, size, 1, zoo.scalable_1d, f"scalable 1-D network, size {size} "
                   f"(width {w}, {d} units per stage)", width=w, depth=d)
          for u in ("cw", "cs", "plain") for size, (w, d) in zoo.SIZES.items()),
        ModelSpec("wdcnn", "wdcnn", 1, "WDCNN (Zhang et al. 2017): wide first-layer kernel CNN, "
                  "the non-DRSN 1-D baseline; fixed input length", zoo.wdcnn),
    ]
    return {s.name: s for s in specs}


MODELS: dict[str, ModelSpec] = _build_table()


def _spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}") from None


def list_models() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(MODELS)


def model_info(name: str) -> dict[str, Any]:
    """Describe a model without building it: dims, layout, default input shape, family, options."""
    spec = _spec(name)
    return {
        "name": spec.name,
        "family": spec.family,
        "dims": spec.dims,
        "layout": LAYOUTS[spec.dims],
        "input_shape": spec.input_shape(),
        "description": spec.description,
        "options": spec.options(),
    }


def create_model(name: str, num_classes: int = 10, **overrides: Any) -> nn.Module:
    """Build the named model; ``overrides`` may set any option listed by :func:`model_info`."""
    spec = _spec(name)
    options = spec.options()
    unknown = sorted(set(overrides) - set(options))
    if unknown:
        raise ConfigError(f"model {name!r} has no option {', '.join(map(repr, unknown))}; "
                          f"valid options: {', '.join(sorted(options))}")
    kwargs = {**spec.defaults, **overrides, "num_classes": num_classes}
    try:
        model = spec.factory(**spec.fixed, **kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model {name!r}: invalid options {overrides!r} ({exc}); "
                          f"see model_info({name!r})['options'] for the defaults") from exc
    log.debug("built %s with %s", name, kwargs)
    return model
