"""The topology reference (docs/topology-reference.md), generated from the model."""

from __future__ import annotations

import dataclasses
import types
import typing

from hakit.tools.topology import model, rules


def classes(root: type = model.Topology) -> list[type]:
    """Every model class reachable from `root`, in the order a reader meets them."""
    found: list[type] = []

    def visit(hint: object) -> None:
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            if hint in found:
                return
            found.append(hint)
            for f in dataclasses.fields(hint):
                visit(typing.get_type_hints(hint, vars(model))[f.name])
        for arg in typing.get_args(hint):
            visit(arg)

    visit(root)
    return found


def type_name(hint: object) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if all(m in (str, int, float, bool) for m in members) and len(members) > 1:
            return "value"
        return " or ".join(type_name(m) for m in members)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"map of {type_name(args[1])}"
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return f"[{hint.__name__}](#{hint.__name__.lower()})"
    names: dict[object, str] = {str: "text", int: "integer", bool: "true/false", float: "number"}
    return names.get(hint, str(hint))


TABLE_HEAD = "| key | type | required | default | meaning |\n|---|---|---|---|---|"


def markdown() -> str:
    lines = [
        "# Topology reference",
        "",
        "Generated from `tools/topology/model.py` by `hakit topology reference`; " "do not edit.",
        "",
    ]
    for cls in classes():
        lines += [f"## {cls.__name__}", "", (cls.__doc__ or "").strip(), "", TABLE_HEAD]
        hints = typing.get_type_hints(cls, vars(model))
        for f in dataclasses.fields(cls):
            required = dataclasses.MISSING is f.default and dataclasses.MISSING is f.default_factory
            default = "" if f.default in (dataclasses.MISSING, None) else f"`{f.default}`"
            lines.append(
                f"| `{f.name.rstrip('_')}` | {type_name(hints[f.name])} | "
                f"{'yes' if required else ''} | {default} | "
                f"{f.metadata.get('doc', '')} |"
            )
        lines.append("")
    grammar = (rules.__doc__ or "").split("\n\n", 1)[1].strip()
    lines += [
        "## Rules",
        "",
        "Location rules and default sets take a rule in pcs's syntax. " + grammar,
        "",
    ]
    return "\n".join(lines)
