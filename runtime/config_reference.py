"""Markdown reference of every config option, generated from the config models so it cannot drift."""

from __future__ import annotations

import types
import typing
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Config classes reachable from a field's type (through Optional, list, dict, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        out.extend(_models_in(arg))
    return out


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(annotation))
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in get_args(annotation))
    if origin in (list, dict, tuple):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in get_args(annotation))}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default is not PydanticUndefined:
        d = field.default
        return "" if d is None else f"`{d}`"
    if field.default_factory is not None:
        return "(section)"
    return "**required**"


def reference_markdown(root: type[BaseModel], title: str = "Configuration reference") -> str:
    """One table per config class, in the order they are reached from ``root``."""
    lines = [f"## {title}", ""]
    seen: set[type[BaseModel]] = set()
    queue: list[tuple[str, type[BaseModel]]] = [("", root)]
    while queue:
        path, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        lines += [
            f"### `{path or 'top level'}` — {model.__name__}",
            "",
            doc,
            "",
            "| key | type | default | description |",
            "|---|---|---|---|",
        ]
        for name, field in model.model_fields.items():
            key = field.alias or name
            desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
            tname = _type_name(field.annotation).replace("|", "\\|")
            lines.append(f"| `{key}` | {tname} | {_default(field)} | {desc} |")
            for sub in _models_in(field.annotation):
                queue.append((f"{path}.{key}" if path else key, sub))
        lines.append("")
    return "\n".join(lines)
