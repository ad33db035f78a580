"""JSON Schema of the topology, generated from the model (for editors and CI linters)."""

from __future__ import annotations

import dataclasses
import types
import typing

from hakit.tools.topology import model

_SCALARS = {
    str: {"type": "string"},
    int: {"type": "integer"},
    bool: {"type": "boolean"},
    float: {"type": "number"},
}


def _schema(hint: object) -> dict[str, object]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        options = [_schema(m) for m in members]
        if type(None) in args:
            options.append({"type": "null"})
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _schema(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(args[1])}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return {"$ref": f"#/$defs/{hint.__name__}"}
    return dict(_SCALARS.get(hint, {}))  # type: ignore[call-overload]


def json_schema() -> dict[str, object]:
    """The whole model as a JSON Schema (draft 2020-12)."""
    defs: dict[str, object] = {}
    todo: list[type] = [model.Topology]
    while todo:
        cls = todo.pop()
        if cls.__name__ in defs:
            continue
        hints = typing.get_type_hints(cls, vars(model))
        properties: dict[str, object] = {}
        required = []
        for f in dataclasses.fields(cls):
            key = f.name.rstrip("_")
            properties[key] = {**_schema(hints[f.name]), "description": f.metadata.get("doc", "")}
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(key)
            for inner in _dataclasses_in(hints[f.name]):
                todo.append(inner)
        defs[cls.__name__] = {
            "type": "object",
            "description": (cls.__doc__ or "").strip(),
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "hakit topology",
        "$ref": "#/$defs/Topology",
        "$defs": defs,
    }


def _dataclasses_in(hint: object) -> list[type]:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return [hint]
    return [c for arg in typing.get_args(hint) for c in _dataclasses_in(arg)]
