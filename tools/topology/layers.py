"""Several topology files as one: a base and the layers above it (the lab's base.yaml,
then cloud.yaml, then compute.yaml).

Layers are merged before the model is built, so every value keeps the file, line and
column it came from, and a problem found later (an unknown key, a dangling reference)
names the layer that holds it. The rules:

- later layers add objects: resources, groups, bundles, tags, alerts, nodes, fencing
  devices and levels, constraints, ACLs, default sets, remote nodes and the resources
  that run on them are joined in layer order;
- a named object (or template) defined by two layers is an error, located at the
  second definition, with the first one's place in the hint;
- settings are overridden: a cluster property or a resource/operation default set by a
  later layer replaces the earlier value (that is what a layer is for);
- `cluster.name` may be repeated but not changed;
- an object tagged `!replace` (`- !replace {name: fence-node1-ipmi, agent: ...}`) takes
  the place of the earlier layers' object of that name, whole (it is an error when
  there is none): how an environment's layer swaps a device or a resource of a topology
  it is layered on (the lab fences examples/openstack.yaml with its own agent so).

Only the first layer needs `cluster:`; a layer is otherwise any part of a topology file.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

import yaml

from hakit.tools.topology import model
from hakit.tools.topology.load import LOADER, Loaded, Path_, _Converter, describe
from hakit.tools.topology.problems import Problem

#: Mappings whose keys are merged one by one (their values are not objects).
SECTIONS = {
    (),
    ("fencing",),
    ("constraints",),
    ("defaults",),
    ("acls",),
    ("cluster",),
    ("remotes",),
}
#: Mappings of settings: a later layer's value wins.
SETTINGS = {("cluster", "properties"), ("defaults", "resources"), ("defaults", "operations")}
#: Mappings merged key by key (a template's name, like an object's, comes once).
MERGED = SECTIONS | SETTINGS | {("templates",)}
#: The tag of an object that replaces the earlier layers' object of its name.
REPLACE = "!replace"
MAP = "tag:yaml.org,2002:map"


class Layered(Loaded):
    """A `Loaded` built from several files: each problem names the file its place is in."""

    def __init__(self, label: str) -> None:
        super().__init__(label, None)
        #: the file each value came from, by its path in the merged document
        self.files: dict[Path_, str] = {}

    def problem(self, path: Path_, message: str, hint: str = "", offset: int = 0) -> None:
        super().problem(path, message, hint, offset)
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.files:
                last = self.problems[-1]
                self.problems[-1] = dataclasses.replace(last, file=self.files[path[:cut]])
                return


def load_layers(paths: Sequence[Path]) -> Layered:
    """Read and merge topology files, the base first."""
    texts = []
    layered = Layered(" + ".join(str(p) for p in paths))
    for path in paths:
        try:
            texts.append((str(path), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as error:
            layered.problems.append(Problem(str(path), 0, 0, "(file)", f"cannot read: {error}"))
    if layered.problems:
        return layered
    return layer_texts(texts, layered)


def layer_texts(texts: Sequence[tuple[str, str]], layered: Layered | None = None) -> Layered:
    """Merge topology texts, each given as (file name, text), the base first."""
    layered = layered or Layered(" + ".join(name for name, _ in texts))
    merged: yaml.MappingNode | None = None
    for name, text in texts:
        node = _compose(name, text, layered)
        if node is None:
            continue
        if not isinstance(node, yaml.MappingNode):
            layered.problems.append(_at(node, name, "(top)", "a layer must be a mapping"))
            continue
        merged = node if merged is None else _merge(merged, node, (), layered)
    if layered.problems or merged is None:
        if merged is None and not layered.problems:
            layered.problems.append(Problem(layered.file, 0, 0, "(top)", "no layers"))
        return layered
    _record_files(merged, (), layered.files)
    _replaced_nothing(merged, layered)
    if layered.problems:
        return layered
    result = _Converter(layered).convert(merged, model.Topology, ())
    if isinstance(result, model.Topology):
        layered.topology = result
    return layered


def _compose(name: str, text: str, layered: Layered) -> yaml.Node | None:
    stream = io.StringIO(text)
    stream.name = name  # marks carry the file name
    try:
        node: yaml.Node | None = yaml.compose(stream, Loader=LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        message = f"{error.problem or error.context}"
        layered.problems.append(Problem(name, line, column, "(YAML)", message))
        return None
    except yaml.YAMLError as error:
        layered.problems.append(Problem(name, 0, 0, "(YAML)", str(error)))
        return None
    if node is None:
        layered.problems.append(Problem(name, 1, 1, "(top)", "the layer is empty"))
    return node


def _merge(
    base: yaml.MappingNode, layer: yaml.MappingNode, path: Path_, layered: Layered
) -> yaml.MappingNode:
    """`layer` over `base` (both mappings at `path`), by the rules in the module docstring."""
    items = list(base.value)
    index = {str(k.value): i for i, (k, _) in enumerate(items)}
    for key_node, value in layer.value:
        key = str(key_node.value)
        where = (*path, key)
        if key not in index:
            index[key] = len(items)
            items.append((key_node, value))
            continue
        old_key, old = items[index[key]]
        if path in SETTINGS:
            items[index[key]] = (key_node, value)
        elif where in MERGED and _both(old, value, yaml.MappingNode):
            items[index[key]] = (old_key, _merge(old, value, where, layered))
        elif path in SECTIONS and _both(old, value, yaml.SequenceNode):
            items[index[key]] = (old_key, _join(old, value, where, layered))
        elif _same_scalar(old, value):
            continue
        elif _both(old, value, yaml.ScalarNode):
            message = f"{key} is {old.value!r} in an earlier layer; a layer cannot change it"
            layered.problems.append(
                _at(value, value.start_mark.name, describe(where), message, _first(old_key))
            )
        else:
            thing = "template" if path == ("templates",) else "section"
            message = f"{thing} {key!r} is defined by two layers"
            layered.problems.append(
                _at(key_node, key_node.start_mark.name, describe(where), message, _first(old_key))
            )
    return yaml.MappingNode(base.tag, items, base.start_mark, base.end_mark, base.flow_style)


def _join(
    base: yaml.SequenceNode, layer: yaml.SequenceNode, path: Path_, layered: Layered
) -> yaml.SequenceNode:
    """The items of both lists; a `name` two layers give is an error unless the later
    item is tagged `!replace`: then it takes the earlier one's place."""
    names = {name: item for item in base.value if (name := _name(item))}
    earlier = {name: index for index, item in enumerate(base.value) if (name := _name(item))}
    items = list(base.value)
    for item in layer.value:
        name = _name(item)
        if item.tag == REPLACE and name in earlier:
            item.tag = MAP  # done: what is left tagged is a problem (_replaced_nothing)
            items[earlier[name]] = item
            continue
        if name and name in names:
            layered.problems.append(
                _at(
                    item,
                    item.start_mark.name,
                    f'{describe(path)} "{name}"',
                    f"{name!r} is defined by two layers",
                    f"first defined at {_place(names[name])}; give it another name or "
                    "drop one of them",
                )
            )
            continue
        if name:
            names[name] = item
        items.append(item)
    return yaml.SequenceNode(base.tag, items, base.start_mark, base.end_mark, base.flow_style)


def _name(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "name" and isinstance(value, yaml.ScalarNode):
                return str(value.value)
    return None


def _both(old: yaml.Node, new: yaml.Node, kind: type) -> bool:
    return isinstance(old, kind) and isinstance(new, kind)


def _same_scalar(old: yaml.Node, new: yaml.Node) -> bool:
    return _both(old, new, yaml.ScalarNode) and old.value == new.value


def _first(node: yaml.Node) -> str:
    return f"first defined at {_place(node)}; a layer adds objects, it does not replace them"


def _place(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"{mark.name}:{mark.line + 1}:{mark.column + 1}"


def _at(node: yaml.Node, file: str, where: str, message: str, hint: str = "") -> Problem:
    mark = node.start_mark
    return Problem(file, mark.line + 1, mark.column + 1, where, message, hint)


def _record_files(node: yaml.Node, path: Path_, files: dict[Path_, str]) -> None:
    """The file of every value, by path (as the converter names paths)."""
    files[path] = node.start_mark.name
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _record_files(value, (*path, str(key.value)), files)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_files(item, (*path, i), files)


def _replaced_nothing(root: yaml.Node, layered: Layered) -> None:
    """A problem for each `!replace` that found no earlier object of its name (sorted by
    file, line and column)."""
    found, seen = [], set()
    pending: list[tuple[yaml.Node, Path_]] = [(root, ())]
    while pending:
        node, path = pending.pop()
        if id(node) in seen:  # an alias: looked at once
            continue
        seen.add(id(node))
        if node.tag == REPLACE:
            name = _name(node)
            where = f'{describe(path[:-1])} "{name}"' if name else describe(path)
            message = "!replace: an object without a name"
            if name:
                message = f"!replace: no earlier layer defines {name!r}"
            hint = "!replace takes the place of the object of that name in a layer below"
            found.append(_at(node, node.start_mark.name, where, message, hint))
        if isinstance(node, yaml.MappingNode):
            pending.extend((v, (*path, str(k.value))) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((v, (*path, i)) for i, v in enumerate(node.value))
    layered.problems.extend(sorted(found, key=lambda p: (p.file, p.line, p.column)))
