"""YAML → Topology, with the line and column of every value.

The dataclasses in `model` are the schema: types, required keys and unknown keys
are checked from their annotations, and every problem is collected (`Problem`).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hakit.tools.topology import model
from hakit.tools.topology.problems import Problem, did_you_mean

Path_ = tuple[str | int, ...]
#: libyaml's parser when PyYAML has it (ten times faster), the same marks either way.
LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"


@dataclass
class Loaded:
    """The topology (None if the file could not be read as one) and what was wrong."""

    file: str
    topology: model.Topology | None
    problems: list[Problem] = field(default_factory=list)
    #: (line, column) of every value, by its path in the document.
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    #: the `name` of list items, by their path, to name objects in messages.
    names: dict[Path_, str] = field(default_factory=dict)
    #: paths of quoted scalars (their text starts one column after the mark).
    quoted: set[Path_] = field(default_factory=set)
    #: objects kept with defaults in place of values that did not load: later checks
    #: say nothing about them (they would judge the defaults, not the file).
    incomplete: set[Path_] = field(default_factory=set)
    #: checks that could not run, and why.
    skipped: list[str] = field(default_factory=list)

    def problem(self, path: Path_, message: str, hint: str = "", offset: int = 0) -> None:
        """Record a problem about the object at `path` (the nearest known place);
        `offset` points inside a one-line text value (a rule's word)."""
        if self.topology is not None and any(path[: len(p)] == p for p in self.incomplete):
            return
        line, column = 0, 0
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.marks:
                line, column = self.marks[path[:cut]]
                if cut == len(path):
                    column += offset + (1 if path in self.quoted and offset else 0)
                break
        self.problems.append(Problem(self.file, line, column, describe(path, self), message, hint))


def describe(path: Path_, loaded: Loaded | None = None) -> str:
    """resources[2].params → resources[2] "web".params when the name is known."""
    text = ""
    for index, part in enumerate(path):
        if isinstance(part, int):
            text += f"[{part}]"
            name = loaded.names.get(path[: index + 1]) if loaded else None
            if name:
                text += f' "{name}"'
        else:
            text += f".{part}" if text else part
    return text or "(top)"


#: A topology larger than this is refused (the largest real ones are a few hundred KiB).
MAX_BYTES = 2 * 1024 * 1024


def load(path: Path) -> Loaded:
    """Read and convert a topology file; problems instead of exceptions."""
    loaded = Loaded(str(path), None)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        loaded.problems.append(Problem(str(path), 0, 0, "(file)", f"cannot read: {error}"))
        return loaded
    if len(data) > MAX_BYTES:
        loaded.problems.append(
            Problem(
                str(path),
                0,
                0,
                "(file)",
                f"larger than {MAX_BYTES // 1024} KiB",
                "split it into layers, or use templates for repeated resources",
            )
        )
        return loaded
    return load_text(text, str(path), loaded)


def load_text(text: str, file: str = "<string>", loaded: Loaded | None = None) -> Loaded:
    loaded = loaded or Loaded(file, None)
    try:
        node = yaml.compose(text, Loader=LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        loaded.problems.append(
            Problem(
                file,
                line,
                column,
                "(YAML)",
                f"{error.problem or error.context}",
                "fix the YAML syntax here",
            )
        )
        return loaded
    except yaml.YAMLError as error:
        loaded.problems.append(Problem(file, 0, 0, "(YAML)", str(error)))
        return loaded
    except RecursionError:
        loaded.problems.append(Problem(file, 0, 0, "(YAML)", "nested too deeply"))
        return loaded
    if node is None:
        loaded.problems.append(
            Problem(file, 1, 1, "(top)", "the file is empty", "start with `cluster: {name: ...}`")
        )
        return loaded
    converter = _Converter(loaded)
    try:
        result = converter.convert(node, model.Topology, ())
    except RecursionError:  # a mapping inside a value, a thousand levels down
        loaded.problems.append(Problem(file, 0, 0, "(YAML)", "nested too deeply"))
        return loaded
    if isinstance(result, model.Topology):
        loaded.topology = result
    return loaded


_MISSING = object()


@functools.cache
def _hints(cls: type) -> dict[str, object]:
    return typing.get_type_hints(cls, vars(model))


class _Converter:
    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded

    def convert(self, node: yaml.Node, hint: object, path: Path_) -> object:
        self.mark(node, path)
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            if isinstance(node, yaml.ScalarNode) and node.tag == _NULL and type(None) in args:
                return None
            members = [a for a in args if a is not type(None)]
            if all(m in (str, int, float, bool) for m in members) and len(members) > 1:
                return self.scalar(node, path)
            return self.convert(node, members[0], path)
        if origin is typing.Literal:
            value = self.convert(node, str, path)
            if value is not _MISSING and value not in args:
                return self.fail(
                    path,
                    f"{value!r} is not one of {', '.join(map(str, args))}",
                    did_you_mean(str(value), [str(a) for a in args]),
                )
            return value
        if origin is list:
            if not isinstance(node, yaml.SequenceNode):
                return self.fail(path, "expected a list", "write `- item` lines or `[a, b]`")
            items = [self.convert(child, args[0], (*path, i)) for i, child in enumerate(node.value)]
            return [item for item in items if item is not _MISSING]
        if origin is dict:
            if not isinstance(node, yaml.MappingNode):
                return self.fail(path, "expected a mapping", "write `key: value` lines")
            result = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                value = self.convert(value_node, args[1], (*path, key))
                if value is not _MISSING:
                    result[key] = value
            return result
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return self.dataclass(node, hint, path)
        return self.plain(node, hint, path)

    def mark(self, node: yaml.Node, path: Path_) -> None:
        self.loaded.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode) and node.style in ("'", '"'):
            self.loaded.quoted.add(path)

    def scalar(self, node: yaml.Node, path: Path_) -> object:
        if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL:
            return self.fail(path, "expected a value (text, number or true/false)")
        if node.tag == _BOOL:
            return node.value.lower() in ("true", "yes", "on", "y")
        return str(node.value)

    def plain(self, node: yaml.Node, hint: object, path: Path_) -> object:
        if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL:
            return self.fail(path, f"expected {_name(hint)}")
        if hint is str:
            return str(node.value)
        if hint is int:
            if node.tag != _INT:
                return self.fail(path, f"{node.value!r} is not an integer")
            return int(node.value)
        if hint is bool:
            if node.tag != _BOOL:
                return self.fail(path, f"{node.value!r} is not true or false")
            return node.value.lower() in ("true", "yes", "on", "y")
        return self.fail(path, f"unsupported type {hint}")

    def dataclass(self, node: yaml.Node, cls: type, path: Path_) -> object:
        if not isinstance(node, yaml.MappingNode):
            return self.fail(
                path,
                f"expected a mapping ({cls.__name__.lower()})",
                f"fields: {', '.join(_yaml_names(cls))}",
            )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = _hints(cls)
        values: dict[str, object] = {}
        present: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            attr = key + "_" if key + "_" in fields else key
            if attr not in fields:
                self.loaded.marks[(*path, key)] = (
                    key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                )
                self.fail(
                    (*path, key),
                    f"unknown key {key!r}",
                    did_you_mean(key, _yaml_names(cls))
                    or f"known keys: {', '.join(_yaml_names(cls))}",
                )
                continue
            present.add(attr)
            value = self.convert(value_node, hints[attr], (*path, key))
            if value is not _MISSING:
                values[attr] = value
            if attr == "name" and isinstance(value, str):
                self.loaded.names[path] = value
        broken = present - set(values)  # already reported where the value is
        if path == () and "cluster" not in values:
            # keep checking the rest of the file against a nameless cluster
            if "cluster" not in broken:
                self.fail(("cluster",), "missing cluster", "cluster: {name: NAME}")
            values["cluster"], broken = model.Cluster(name=""), broken | {"cluster"}
            self.loaded.incomplete.add(("cluster",))
        elif broken:
            if any(_required(fields[name]) for name in broken):
                return _MISSING
            self.loaded.incomplete.add(path)
        missing = [
            f.name.rstrip("_") for f in fields.values() if f.name not in values and _required(f)
        ]
        if missing:
            first = fields.get(missing[0]) or fields[missing[0] + "_"]
            return self.fail(
                path,
                f"missing {', '.join(missing)}",
                f"{missing[0]}: {first.metadata.get('doc', '')}",
            )
        return cls(**values)

    def fail(self, path: Path_, message: str, hint: str = "") -> object:
        self.loaded.problem(path, message, hint)
        return _MISSING


def _required(field_: dataclasses.Field[object]) -> bool:
    return field_.default is dataclasses.MISSING and field_.default_factory is dataclasses.MISSING


def _yaml_names(cls: type) -> list[str]:
    return [f.name.rstrip("_") for f in dataclasses.fields(cls)]


def _name(hint: object) -> str:
    names: dict[object, str] = {str: "text", int: "an integer", bool: "true or false"}
    return names.get(hint, str(hint))
