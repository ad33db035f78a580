"""The loader's tree (what libyaml's events say, with lines and columns) and its
conversion to the model: the dataclasses' annotations, compiled once per type hint
(`Plan`), say what each value must be; every problem goes to the `Loaded` at its path.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass

from hakit.tools.topology import model
from hakit.tools.topology.problems import did_you_mean

if typing.TYPE_CHECKING:
    from hakit.tools.topology.load import Loaded

Path_ = tuple[str | int, ...]
STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
MERGE = "tag:yaml.org,2002:merge"
MISSING = object()

# --- the tree --------------------------------------------------------------------------


class Scalar:
    """A scalar as written: its text, its tag (resolved as YAML 1.1 does) and place."""

    __slots__ = ("column", "line", "quoted", "tag", "value")

    def __init__(self, value: str, tag: str, line: int, column: int, quoted: bool) -> None:
        self.value, self.tag, self.line, self.column, self.quoted = value, tag, line, column, quoted


class Seq:
    """A sequence and where it starts."""

    __slots__ = ("column", "items", "line")

    def __init__(self, line: int, column: int) -> None:
        self.items: list[Node] = []
        self.line, self.column = line, column


#: A mapping's entry: key, the key's line and column, value.
Pair = tuple[str, int, int, "Node"]


class Map:
    """A mapping's entries in their order (merge keys applied) and where it starts."""

    __slots__ = ("column", "index", "line", "pairs")

    def __init__(self, line: int, column: int) -> None:
        self.pairs: list[Pair] = []
        self.line, self.column = line, column
        self.index: dict[str, Node] | None = None  # by key, once looked up


Node = Scalar | Seq | Map


def child(node: Node, part: str | int) -> Node | None:
    """The value at `part` (a key or an index) of `node`, if it has one."""
    if isinstance(node, Map):
        if node.index is None:
            node.index = {key: value for key, _, _, value in node.pairs}
        return node.index.get(part) if isinstance(part, str) else None
    if isinstance(node, Seq) and isinstance(part, int) and 0 <= part < len(node.items):
        return node.items[part]
    return None


# --- the tree → the model --------------------------------------------------------------

_SCALARS = (str, int, float, bool)
#: what a hint asks for
ANY, TEXT, INTEGER, BOOLEAN, VALUE, CHOICE, LIST, DICT, OBJECT, UNION = range(10)


class Plan:
    """How to convert a value of one type hint (computed once per hint)."""

    __slots__ = ("choices", "hint", "inner", "kind", "on_map", "on_seq", "optional", "shape")

    def __init__(
        self,
        kind: int,
        hint: object,
        optional: bool = False,
        inner: tuple[Plan, ...] = (),
        choices: tuple[object, ...] = (),
    ) -> None:
        self.kind, self.hint, self.optional = kind, hint, optional
        #: a list's item, a dict's value, a union's members
        self.inner = inner
        #: a Literal's values
        self.choices = choices
        #: the tree node this plan takes
        self.shape: type = {LIST: Seq, DICT: Map, OBJECT: Map}.get(kind, Scalar)
        #: the plan that converts a mapping (a sequence) as its events come, if any
        self.on_map, self.on_seq = self._on(Map), self._on(Seq)

    def _on(self, shape: type) -> Plan | None:
        plan = self
        if self.kind is UNION:
            plan = next((m for m in self.inner if m.shape is shape), self.inner[0])
        return plan if plan.shape is shape else None


@functools.cache
def plan_of(hint: object) -> Plan:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        members = tuple(a for a in args if a is not type(None))
        optional = len(members) < len(args)
        if len(members) > 1 and all(m in _SCALARS for m in members):
            return Plan(VALUE, hint, optional)
        return Plan(UNION, hint, optional, tuple(plan_of(m) for m in members))
    if origin is typing.Literal:
        return Plan(CHOICE, hint, choices=args)
    if origin is list:
        return Plan(LIST, hint, inner=(plan_of(args[0]),))
    if origin is dict:
        return Plan(DICT, hint, inner=(plan_of(args[1]),))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return Plan(OBJECT, hint)
    kinds: dict[object, int] = {str: TEXT, int: INTEGER, bool: BOOLEAN}
    return Plan(kinds.get(hint, ANY), hint)


TEXT_PLAN = plan_of(str)


@dataclass(frozen=True)
class _Class:
    """A dataclass's fields as the converter needs them."""

    fields: dict[str, dataclasses.Field[object]]
    keys: dict[str, str]  # YAML key → attribute (`with` → `with_`)
    plans: dict[str, Plan]
    names: list[str]  # YAML names, in order
    required: list[str]


@functools.cache
def _class(cls: type) -> _Class:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    keys = {name: name for name in fields}
    keys |= {name[:-1]: name for name in fields if name.endswith("_")}
    hints = _hints(cls)
    return _Class(
        fields=fields,
        keys=keys,
        plans={name: plan_of(hints[name]) for name in fields},
        names=_yaml_names(cls),
        required=[f.name for f in fields.values() if _required(f)],
    )


@functools.cache
def _hints(cls: type) -> dict[str, object]:
    return typing.get_type_hints(cls, vars(model))


class Converter:
    """A tree → model objects (or MISSING, reported to the `Loaded`)."""

    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded

    def convert(self, node: Node, hint: object, path: Path_) -> object:
        """The tree `node` as `hint`."""
        return self.value(node, plan_of(hint), path)

    def value(self, node: Node, plan: Plan, path: Path_) -> object:
        kind = plan.kind
        if kind is TEXT:
            if type(node) is Scalar and node.tag != NULL:
                return node.value
            return self.fail(path, "expected text")
        if kind is UNION or kind is VALUE:
            if plan.optional and type(node) is Scalar and node.tag == NULL:
                return None
            if kind is VALUE:
                return self.scalar(node, path)
            chosen = plan.inner[0]
            if len(plan.inner) > 1:
                chosen = next((m for m in plan.inner if m.shape is type(node)), chosen)
            return self.value(node, chosen, path)
        if kind is OBJECT:
            return self.dataclass(node, plan.hint, path)  # type: ignore[arg-type]
        if kind is LIST or kind is DICT:
            return self.collection(node, plan, path)
        if kind is CHOICE:
            value = self.value(node, TEXT_PLAN, path)
            if value is not MISSING and value not in plan.choices:
                return self.fail(
                    path,
                    f"{value!r} is not one of {', '.join(map(str, plan.choices))}",
                    did_you_mean(str(value), [str(a) for a in plan.choices]),
                )
            return value
        return self.plain(node, plan.hint, path)

    def collection(self, node: Node, plan: Plan, path: Path_) -> object:
        inner = plan.inner[0]
        if plan.kind is LIST:
            if type(node) is not Seq:
                return self.fail(path, "expected a list", "write `- item` lines or `[a, b]`")
            items = [self.value(child, inner, (*path, i)) for i, child in enumerate(node.items)]
            return [x for x in items if x is not MISSING]
        if type(node) is not Map:
            return self.fail(path, "expected a mapping", "write `key: value` lines")
        result = {}
        for key, _, _, child in node.pairs:
            value = self.value(child, inner, (*path, key))
            if value is not MISSING:
                result[key] = value
        return result

    def scalar(self, node: Node, path: Path_) -> object:
        if type(node) is not Scalar or node.tag == NULL:
            return self.fail(path, "expected a value (text, number or true/false)")
        if node.tag == BOOL:
            return node.value.lower() in ("true", "yes", "on", "y")
        return node.value

    def plain(self, node: Node, hint: object, path: Path_) -> object:
        if type(node) is not Scalar or node.tag == NULL:
            return self.fail(path, f"expected {_name(hint)}")
        if hint is int:
            if node.tag != INT:
                return self.fail(path, f"{node.value!r} is not an integer")
            return _integer(node.value)
        if hint is bool:
            if node.tag != BOOL:
                return self.fail(path, f"{node.value!r} is not true or false")
            return node.value.lower() in ("true", "yes", "on", "y")
        return self.fail(path, f"unsupported type {hint}")

    def dataclass(self, node: Node, cls: type, path: Path_) -> object:
        if type(node) is not Map:
            return self.fail(
                path,
                f"expected a mapping ({cls.__name__.lower()})",
                f"fields: {', '.join(_class(cls).names)}",
            )
        fields = Fields(cls, path)
        for key, line, column, child in node.pairs:
            plan = fields.key(self, key, line, column)
            if plan is not None:
                fields.put(self, key, self.value(child, plan, (*path, key)))
        return fields.done(self)

    def fail(self, path: Path_, message: str, hint: str = "") -> object:
        self.loaded.problem(path, message, hint)
        return MISSING


class Fields:
    """A dataclass assembled from a mapping's entries, as the model's annotations say."""

    __slots__ = ("cls", "info", "path", "present", "values")

    def __init__(self, cls: type, path: Path_) -> None:
        self.cls, self.info, self.path = cls, _class(cls), path
        self.values: dict[str, object] = {}
        self.present: set[str] = set()

    def key(self, converter: Converter, key: str, line: int, column: int) -> Plan | None:
        """The plan of the value of `key`; None (reported) if there is no such field."""
        attr = self.info.keys.get(key)
        if attr is None:
            converter.loaded.marks[(*self.path, key)] = (line, column)
            names = self.info.names
            converter.fail(
                (*self.path, key),
                f"unknown key {key!r}",
                did_you_mean(key, names) or f"known keys: {', '.join(names)}",
            )
            return None
        self.present.add(attr)
        return self.info.plans[attr]

    def put(self, converter: Converter, key: str, value: object) -> None:
        attr = self.info.keys[key]
        if value is not MISSING:
            self.values[attr] = value
        if attr == "name" and isinstance(value, str):
            converter.loaded.names[self.path] = value

    def done(self, converter: Converter) -> object:
        """The dataclass, or MISSING (reported) if a required field is missing."""
        values, info, path = self.values, self.info, self.path
        broken = self.present - set(values)  # already reported where the value is
        if path == () and "cluster" not in values:
            # keep checking the rest of the file against a nameless cluster
            if "cluster" not in broken:
                converter.fail(("cluster",), "missing cluster", "cluster: {name: NAME}")
            values["cluster"], broken = model.Cluster(name=""), broken | {"cluster"}
            converter.loaded.incomplete.add(("cluster",))
        elif broken:
            if any(name in info.required for name in broken):
                return MISSING
            converter.loaded.incomplete.add(path)
        missing = [name.rstrip("_") for name in info.required if name not in values]
        if missing:
            first = info.fields.get(missing[0]) or info.fields[missing[0] + "_"]
            return converter.fail(
                path,
                f"missing {', '.join(missing)}",
                f"{missing[0]}: {first.metadata.get('doc', '')}",
            )
        return self.cls(**values)


def _integer(text: str) -> int:
    """A YAML 1.1 integer's value (PyYAML's rules: 0x, 0b, 0 octal, 1_000, 1:30)."""
    text = text.replace("_", "")
    sign = -1 if text[:1] == "-" else 1
    text = text.lstrip("+-")
    if text == "0":
        return 0
    if text.startswith("0b"):
        return sign * int(text[2:], 2)
    if text.startswith("0x"):
        return sign * int(text[2:], 16)
    if text.startswith("0"):
        return sign * int(text, 8)
    if ":" in text:
        value = 0
        for part in text.split(":"):
            value = value * 60 + int(part)
        return sign * value
    return sign * int(text)


def _required(field_: dataclasses.Field[object]) -> bool:
    return field_.default is dataclasses.MISSING and field_.default_factory is dataclasses.MISSING


def _yaml_names(cls: type) -> list[str]:
    return [f.name.rstrip("_") for f in dataclasses.fields(cls)]


def _name(hint: object) -> str:
    names: dict[object, str] = {str: "text", int: "an integer", bool: "true or false"}
    return names.get(hint, str(hint))
