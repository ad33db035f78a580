"""YAML → Topology, with the line and column of every value.

The dataclasses in `model` are the schema: types, required keys and unknown keys
are checked from their annotations, and every problem is collected (`Problem`).

libyaml's events are read once and converted as they come (`load_reader.Reader`): no
PyYAML nodes, and no tree of the whole document, so that 50,000 resources load in
seconds. Duplicate keys are problems, merge keys (`<<`) follow YAML 1.1, and aliases
that expand beyond `MAX_EXPANSION` are refused. The place of a value is looked up when
a problem needs it: a tree of the text is built then (`Marks`), so a valid file keeps
no per-value marks in memory.
"""

from __future__ import annotations

import gc
import typing
import zlib
from collections.abc import Iterator, MutableMapping, MutableSet
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hakit.tools.topology import model
from hakit.tools.topology.load_convert import (
    MERGE,
    MISSING,
    Converter,
    Map,
    Node,
    Path_,
    Scalar,
    Seq,
    child,
    plan_of,
)
from hakit.tools.topology.load_reader import (
    DEEP,
    LOADER,
    MAX_DEPTH,
    MAX_EXPANSION,
    RAW,
    Frame,
    Note,
    Reader,
    Stop,
    merge_tree,
)
from hakit.tools.topology.problems import Problem

__all__ = [
    "LOADER",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_EXPANSION",
    "Loaded",
    "Marks",
    "Path_",
    "Quoted",
    "describe",
    "load",
    "load_text",
]

#: A topology larger than this is refused (50,000 resources take about 8 MiB).
MAX_BYTES = 64 * 1024 * 1024

# --- where values are ------------------------------------------------------------------


class _Source:
    """The document tree a `Loaded` answers places from: given, or rebuilt from the text
    on the first question (a valid file never asks; the text waits compressed)."""

    def __init__(self) -> None:
        self.packed: bytes | None = None
        self.tree: Node | None = None

    def keep(self, root: Node) -> None:
        """Answer from this tree."""
        self.tree, self.packed = root, None

    def later(self, text: str) -> None:
        """Answer from `text` once asked."""
        self.tree, self.packed = None, zlib.compress(text.encode(), 1)

    def root(self) -> Node | None:
        if self.tree is None and self.packed is not None:
            text, self.packed = zlib.decompress(self.packed).decode(), None
            try:
                self.tree = Reader().tree(text)
            except (yaml.YAMLError, Stop):  # reading stops there too: no problem is kept
                self.tree = None
        return self.tree

    def node(self, path: Path_) -> Node | None:
        node = self.root()
        for part in path:
            if node is None:
                return None
            node = child(node, part)
        return node

    def walk(self) -> Iterator[tuple[Path_, Node]]:
        root = self.root()
        todo: list[tuple[Path_, Node]] = [((), root)] if root is not None else []
        while todo:
            path, node = todo.pop()
            yield path, node
            if isinstance(node, Map):
                todo.extend(((*path, key), value) for key, _, _, value in reversed(node.pairs))
            elif isinstance(node, Seq):
                todo.extend(((*path, i), item) for i, item in reversed(list(enumerate(node.items))))


class Marks(MutableMapping[Path_, tuple[int, int]]):
    """(line, column) by path: what was set here, else the document's own place."""

    def __init__(self) -> None:
        self.explicit: dict[Path_, tuple[int, int]] = {}
        self.source = _Source()

    def __getitem__(self, path: Path_) -> tuple[int, int]:
        if path in self.explicit:
            return self.explicit[path]
        node = self.source.node(path)
        if node is None:
            raise KeyError(path)
        return node.line, node.column

    def __contains__(self, path: object) -> bool:
        if path in self.explicit:
            return True
        return isinstance(path, tuple) and self.source.node(path) is not None

    def __setitem__(self, path: Path_, mark: tuple[int, int]) -> None:
        self.explicit[path] = mark

    def __delitem__(self, path: Path_) -> None:
        del self.explicit[path]

    def __iter__(self) -> Iterator[Path_]:
        yield from self.explicit
        yield from (p for p, _ in self.source.walk() if p not in self.explicit)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Quoted(MutableSet[Path_]):
    """Paths of quoted scalars (their text starts one column after the mark)."""

    def __init__(self, source: _Source) -> None:
        self.explicit: set[Path_] = set()
        self.source = source

    def __contains__(self, path: object) -> bool:
        if path in self.explicit:
            return True
        node = self.source.node(path) if isinstance(path, tuple) else None
        return isinstance(node, Scalar) and node.quoted

    def add(self, path: Path_) -> None:
        self.explicit.add(path)

    def discard(self, path: Path_) -> None:
        self.explicit.discard(path)

    def __iter__(self) -> Iterator[Path_]:
        found = {p for p, n in self.source.walk() if isinstance(n, Scalar) and n.quoted}
        return iter(found | self.explicit)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class Loaded:
    """The topology (None if the file could not be read as one) and what was wrong."""

    file: str
    topology: model.Topology | None
    problems: list[Problem] = field(default_factory=list)
    #: (line, column) of every value, by its path in the document.
    marks: Marks = field(default_factory=Marks)
    #: the `name` of list items, by their path, to name objects in messages.
    names: dict[Path_, str] = field(default_factory=dict)
    #: paths of quoted scalars (their text starts one column after the mark).
    quoted: Quoted = field(init=False)
    #: objects kept with defaults in place of values that did not load: later checks
    #: say nothing about them (they would judge the defaults, not the file).
    incomplete: set[Path_] = field(default_factory=set)
    #: checks that could not run, and why.
    skipped: list[str] = field(default_factory=list)
    #: what is allowed but likely unwise (the file stays valid), located as problems are
    warnings: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.quoted = Quoted(self.marks.source)

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

    def warn(self, path: Path_, message: str, hint: str = "") -> None:
        """Record a warning about the object at `path`, placed as `problem` places it."""
        count = len(self.problems)
        self.problem(path, message, hint)
        if len(self.problems) > count:
            self.warnings.append(self.problems.pop())


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


# --- reading ---------------------------------------------------------------------------


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
                f"larger than {MAX_BYTES // 1024 // 1024} MiB",
                "split it into layers, or use templates for repeated resources",
            )
        )
        return loaded
    del data
    return load_text(text, str(path), loaded)


def load_text(text: str, file: str = "<string>", loaded: Loaded | None = None) -> Loaded:
    """Convert a topology text; problems instead of exceptions."""
    loaded = loaded or Loaded(file, None)
    collecting = gc.isenabled()
    gc.disable()  # a million young objects that all live: collections would find nothing
    try:
        values = _load(text, file, loaded)
    finally:
        if collecting:
            gc.enable()
    if collecting and values > LARGE:
        gc.collect()  # once, now: not three times later, over a heap of young objects
    return loaded


#: Values in a document above which the loader collects garbage once it has read it.
LARGE = 200_000


def _load(text: str, file: str, loaded: Loaded) -> int:
    """Read `text` into `loaded`; the number of values read."""
    source = loaded.marks.source
    source.later(text)  # a problem's place: the tree is rebuilt from the text when asked
    reader = Reader(Converter(loaded))
    before = len(loaded.problems)
    try:
        found, result = reader.convert(text, plan_of(model.Topology))
    except (yaml.YAMLError, Stop) as error:
        # what conversion found before the text stopped making sense is dropped
        del loaded.problems[before:]
        loaded.names.clear()
        loaded.incomplete.clear()
        loaded.marks.explicit.clear()
        source.packed = source.tree = None
        loaded.problems.append(_unreadable(error, file))
        return reader.built
    if not found:
        loaded.problems.append(
            Problem(file, 1, 1, "(top)", "the file is empty", "start with `cluster: {name: ...}`")
        )
    else:
        _finish(loaded, result, reader.notes)
    return reader.built


def _unreadable(error: yaml.YAMLError | Stop, file: str) -> Problem:
    """The problem that stopped reading."""
    if isinstance(error, Stop):
        return Problem(file, *error.place)
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        message = f"{error.problem or error.context}"
        return Problem(file, line, column, "(YAML)", message, "fix the YAML syntax here")
    return Problem(file, 0, 0, "(YAML)", str(error))


def _finish(loaded: Loaded, result: object, notes: list[Note]) -> None:
    """Keep the topology; the reader's problems first, named now that names are known."""
    if isinstance(result, model.Topology):
        loaded.topology = result
    loaded.problems[:0] = [
        Problem(file or loaded.file, line, column, describe(path, loaded), message, hint)
        for file, path, line, column, message, hint in notes
    ]


class _NodeReader(Reader):
    """PyYAML's nodes (as `layers` composes and merges them) → the tree, with the checks
    reading text has: duplicate keys, merge keys, alias expansion, depth."""

    def __init__(self) -> None:
        super().__init__()
        self.done: dict[int, tuple[Node, int]] = {}
        self.path: list[str | int] = []

    def read(self, root: yaml.Node) -> Node:
        """The tree; raises Stop."""
        return self.visit(root)[0]

    def visit(self, node: yaml.Node) -> tuple[Node, int]:
        mark = node.start_mark
        if id(node) in self.done:  # an alias
            self._expand(self.done[id(node)][1], "an alias", mark)
            return self.done[id(node)]
        line, column = mark.line + 1, mark.column + 1
        self.file = mark.name
        if len(self.path) > MAX_DEPTH:
            raise Stop(line, column, "nested too deeply", DEEP)
        self.built += 1
        result: tuple[Node, int]
        if isinstance(node, yaml.ScalarNode):
            quoted = node.style in ("'", '"')
            result = (Scalar(str(node.value), node.tag, line, column, quoted), 1)
        elif isinstance(node, yaml.SequenceNode):
            seq, size = Seq(line, column), 1
            for i, item in enumerate(node.value):
                self.path.append(i)
                child, child_size = self.visit(item)
                self.path.pop()
                seq.items.append(child)
                size += child_size
            result = (seq, size)
        else:
            result = self.mapping(node, line, column)
        self.done[id(node)] = result
        return result

    def mapping(self, node: yaml.Node, line: int, column: int) -> tuple[Node, int]:
        frame, size = Frame(RAW, True, Map(line, column)), 1
        for key_node, value_node in node.value:
            key_mark = key_node.start_mark
            self.file = key_mark.name
            frame.key, frame.key_line = str(key_node.value), key_mark.line + 1
            frame.key_column = key_mark.column + 1
            frame.merge = key_node.tag == MERGE
            frame.skip = not isinstance(key_node, yaml.ScalarNode)
            if frame.skip:
                self._note(frame.key_line, frame.key_column, (), "a key must be text", "")
            else:
                self._key(frame)
            self.path.append(str(frame.key))
            child, child_size = self.visit(value_node)
            self.path.pop()
            size += child_size
            self._value(frame, child)
        if frame.merges:
            merge_tree(frame)
        return typing.cast(Map, frame.node), size

    def _here(self) -> Path_:
        return tuple(self.path)


class _Converter(Converter):
    """A `Converter` that also takes PyYAML's nodes, as `layers` composes and merges them."""

    def convert(self, node: Node | yaml.Node, hint: object, path: Path_) -> object:
        if not isinstance(node, yaml.Node):
            return super().convert(node, hint, path)
        reader = _NodeReader()
        try:
            tree = reader.read(node)
        except Stop as stop:
            self.loaded.problems.append(Problem(reader.file or self.loaded.file, *stop.place))
            return MISSING
        self.loaded.marks.source.keep(tree)
        result = super().convert(tree, hint, path)
        _finish(self.loaded, None, reader.notes)
        return result
