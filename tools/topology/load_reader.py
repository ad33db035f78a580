"""libyaml's events → the model, in one pass (`Reader`), or → a tree of the text: duplicate
keys are located, merge keys (`<<`) follow YAML 1.1, anchors and aliases work and alias
bombs are refused."""

from __future__ import annotations

import typing

import yaml

from hakit.tools.topology.load_convert import (
    BOOL,
    MERGE,
    MISSING,
    NULL,
    OBJECT,
    STR,
    TEXT,
    VALUE,
    Converter,
    Fields,
    Map,
    Node,
    Pair,
    Path_,
    Plan,
    Scalar,
    Seq,
)

#: libyaml's parser when PyYAML has it (ten times faster), the same marks either way.
LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Deeper than this is no topology (the model nests about 7 levels).
MAX_DEPTH = 100
#: Aliases may add this many values to a document, or ten times its own values.
MAX_EXPANSION = 1_000_000

#: A problem the reader found: file (None: the loaded one), path, line, column, message,
#: hint.
Note = tuple[str | None, Path_, int, int, str, str]
#: A problem that stops reading: line, column, where, message, hint.
Fatal = tuple[int, int, str, str, str]
DEEP = f"a topology nests a few levels, not {MAX_DEPTH} (check the brackets)"
#: how a frame holds its container: as a tree, or converted as its events arrive
RAW, DOCUMENT, ITEMS, ENTRIES, FIELDS = range(5)


class Stop(Exception):
    """Reading ends with this problem."""

    def __init__(self, line: int, column: int, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.place: Fatal = (line, column, "(YAML)", message, hint)


class Frame:
    """An open mapping or sequence (or the document) while events arrive."""

    __slots__ = (
        "anchor",
        "entries",
        "key",
        "key_column",
        "key_line",
        "kind",
        "mapping",
        "merge",
        "merges",
        "node",
        "path",
        "plan",
        "seen",
        "size",
        "skip",
        "target",
    )

    def __init__(
        self,
        kind: int,
        mapping: bool,
        node: Map | Seq | None = None,
        plan: Plan | None = None,
        path: Path_ = (),
    ) -> None:
        self.kind, self.mapping, self.node = kind, mapping, node
        #: RAW: the plan to convert the finished tree with (None: it stays a tree);
        #: otherwise the container's own plan
        self.plan, self.path = plan, path
        self.anchor: str | None = None
        self.size = 0  # values inside, aliases expanded
        #: converted: the items (ITEMS, DOCUMENT), the (key, value) entries (ENTRIES)
        #: or the dataclass being assembled (FIELDS)
        self.entries: typing.Any = None
        self.key: str | None = None  # a mapping's key waiting for its value
        self.key_line = self.key_column = 0
        self.merge = self.skip = False  # the waiting key is `<<`, or its value is dropped
        #: the plan of the value that comes next (None: it is kept as a tree)
        self.target: Plan | None = None
        self.seen: dict[str, int] = {}  # own keys and their lines
        self.merges: list[tuple[int, list[Map]]] = []  # (own entries before, sources)


class Reader:
    """libyaml events → the model (or a tree), in one pass, checking duplicate keys,
    merge keys, anchors and aliases on the way.

    A container is converted as its events arrive when the model says what it is (a
    list, a dict, a dataclass). Anchored containers, the values of merge keys and of
    keys the model does not have, and values of the wrong shape are kept as trees (the
    tree converter reports those): no tree of the whole document is ever built."""

    def __init__(self, converter: Converter | None = None) -> None:
        self.converter = converter
        self.notes: list[Note] = []
        self.anchors: dict[str, tuple[Node, int] | None] = {}
        self.keys: dict[str, str] = {}  # one string per distinct key or value
        self.built = 0  # values read from the text
        self.aliased = 0  # values aliases added
        self.stack: list[Frame] = []
        self.file: str | None = None

    def tree(self, text: str) -> Node | None:
        """The document as a tree (None if it is empty); raises Stop or YAMLError."""
        document = Frame(RAW, False, Seq(0, 0))
        self._read(text, document)
        items = typing.cast(Seq, document.node).items
        return items[0] if items else None

    def convert(self, text: str, plan: Plan) -> tuple[bool, object]:
        """Whether there is a document, and it converted by `plan`."""
        document = Frame(DOCUMENT, False, None, plan)
        document.entries, document.target = [], plan
        self._read(text, document)
        return bool(document.entries), document.entries[0] if document.entries else None

    def _read(self, text: str, document: Frame) -> None:
        loader: typing.Any = LOADER(text)
        try:
            self._events(loader, document)
        finally:
            loader.dispose()

    def _events(self, loader: typing.Any, document: Frame) -> None:
        get, resolve = loader.get_event, loader.resolve
        resolvers = loader.yaml_implicit_resolvers
        tags: dict[str, str] = {}
        keys, stack = self.keys, self.stack
        stack.append(document)
        scalar, alias = yaml.ScalarEvent, yaml.AliasEvent
        starts = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
        ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
        while True:
            event: typing.Any = get()
            kind = type(event)
            if kind is scalar:
                mark, value, top = event.start_mark, event.value, stack[-1]
                plain = event.implicit[0]
                if top.key is None and top.mapping and event.anchor is None:
                    top.key = keys.setdefault(value, value)
                    top.key_line, top.key_column = mark.line + 1, mark.column + 1
                    top.merge = (plain and value == "<<") or event.tag == MERGE
                    self._key(top)
                    continue
                tag = event.tag
                if tag is None or tag == "!":
                    if not plain or (value and value[0] not in resolvers):
                        tag = STR
                    else:
                        tag = tags.get(value) or tags.setdefault(
                            value, resolve(yaml.ScalarNode, value, (True, False))
                        )
                self._scalar(event, tag, top)
            elif kind in starts:
                self._start(event, kind is yaml.MappingStartEvent)
            elif kind in ends:
                self._end()
            elif kind is alias:
                self._alias(event)
            elif kind is yaml.DocumentStartEvent and document.size:
                mark = event.start_mark
                raise Stop(
                    mark.line + 1,
                    mark.column + 1,
                    "a second YAML document (after ---)",
                    "a topology is one document; use layers for several files",
                )
            elif kind is yaml.StreamEndEvent:
                return

    def _scalar(self, event: typing.Any, tag: str, top: Frame) -> None:
        """A value that is a scalar: converted, or a tree (anchored, or kept)."""
        self.built += 1
        plan = top.target
        kind = plan.kind if plan is not None and event.anchor is None and tag != NULL else None
        value = self.keys.setdefault(event.value, event.value)  # 50,000 "monitor": one
        if kind is TEXT or (kind is VALUE and tag != BOOL):
            self._deliver(value, 1)  # the common case, no node
            return
        mark = event.start_mark
        quoted = event.style in ("'", '"')
        node = Scalar(value, tag, mark.line + 1, mark.column + 1, quoted)
        if event.anchor is not None:
            self._anchor(event.anchor, mark)
            self.anchors[event.anchor] = (node, 1)
        self._complete(node, 1, plan)

    # -- where a value goes

    def _where(self, top: Frame) -> Path_:
        """The path of the value that comes next in `top` (a converted container)."""
        if top.mapping:
            return (*top.path, str(top.key))
        if top.kind is DOCUMENT:
            return ()
        return (*top.path, len(top.entries))

    def _start(self, event: typing.Any, mapping: bool) -> None:
        mark, stack = event.start_mark, self.stack
        if len(stack) > MAX_DEPTH:
            raise Stop(mark.line + 1, mark.column + 1, "nested too deeply", DEEP)
        self.built += 1
        top = stack[-1]
        plan = top.target
        path = self._where(top) if plan is not None else ()
        anchor = event.anchor
        if plan is not None and anchor is None:
            shaped = plan.on_map if mapping else plan.on_seq
            if shaped is not None:  # converted as its events come
                if shaped.kind is OBJECT:
                    frame = Frame(FIELDS, True, None, shaped, path)
                    frame.entries = Fields(typing.cast(type, shaped.hint), path)
                else:
                    frame = Frame(ENTRIES if mapping else ITEMS, mapping, None, shaped, path)
                    frame.entries = []
                    frame.target = None if mapping else shaped.inner[0]
                stack.append(frame)
                return
        line, column = mark.line + 1, mark.column + 1
        container = Map(line, column) if mapping else Seq(line, column)
        frame = Frame(RAW, mapping, container, plan, path)
        if anchor is not None:
            self._anchor(anchor, mark)
            frame.anchor = anchor  # a tree: each alias converts it where it is
        stack.append(frame)

    def _end(self) -> None:
        frame = self.stack.pop()
        size = frame.size + 1
        if frame.kind is not RAW:
            self._deliver(self._converted(frame), size)
            return
        if frame.merges:
            merge_tree(frame)
        node = typing.cast(Node, frame.node)
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (node, size)
        self._complete(node, size, frame.plan, frame.path)

    def _complete(
        self, node: Node, size: int, plan: Plan | None, path: Path_ | None = None
    ) -> None:
        """A finished tree: converted by `plan` at `path` (the next value's, if None), or
        kept in the open tree."""
        if plan is None:
            self._attach(node, size)
            return
        converter = typing.cast(Converter, self.converter)
        where = self._where(self.stack[-1]) if path is None else path
        self._deliver(converter.value(node, plan, where), size)

    def _deliver(self, value: object, size: int) -> None:
        """A converted value goes into the open converted container."""
        top = self.stack[-1]
        top.size += size
        if not top.mapping:
            top.entries.append(value)
            return
        key = str(top.key)
        top.key = top.target = None
        if top.kind is FIELDS:
            top.entries.put(self.converter, key, value)
        elif value is not MISSING:
            top.entries.append((key, value))

    def _attach(self, node: Node, size: int) -> None:
        """A tree (with `size` values in it) goes into the open tree, or is a key."""
        top = self.stack[-1]
        top.size += size
        if not top.mapping:
            typing.cast(Seq, top.node).items.append(node)
        elif top.key is None:  # a key that is an anchored scalar, an alias or a collection
            top.key_line, top.key_column = node.line, node.column
            top.key = self.keys.setdefault(node.value, node.value) if type(node) is Scalar else ""
            top.merge = False
            if type(node) is Scalar:
                self._key(top)
            else:
                top.skip = True
                self._note(node.line, node.column, (), "a key must be text", "")
        else:
            self._value(top, node)

    def _key(self, top: Frame) -> None:
        """A mapping's key has come: a merge, a duplicate (dropped), or the model's."""
        if top.merge:
            return
        key = str(top.key)
        first = top.seen.get(key)
        if first is not None:
            top.skip = True
            message = f"duplicate key {key!r} (first at line {first})"
            self._note(top.key_line, top.key_column, (key,), message, "keep one")
            return
        top.seen[key] = top.key_line
        if top.kind is FIELDS:
            converter = typing.cast(Converter, self.converter)
            top.target = top.entries.key(converter, key, top.key_line, top.key_column)
            top.skip = top.target is None
        elif top.kind is ENTRIES:
            top.target = typing.cast(Plan, top.plan).inner[0]

    def _value(self, top: Frame, node: Node) -> None:
        """The tree of the waiting key's value (merged, dropped or kept)."""
        key, line, column = str(top.key), top.key_line, top.key_column
        merge, skip = top.merge, top.skip
        top.key, top.merge, top.skip, top.target = None, False, False, None
        if skip:
            return
        if merge:
            sources = node.items if isinstance(node, Seq) else [node]
            maps = [s for s in sources if isinstance(s, Map)]
            if len(maps) == len(sources):
                before = 0  # a dataclass's fields have no order
                if isinstance(top.node, Map):
                    before = len(top.node.pairs)
                elif top.kind is ENTRIES:
                    before = len(top.entries)
                top.merges.append((before, maps))
            else:
                self._note(
                    node.line,
                    node.column,
                    ("<<",),
                    "a merge key takes a mapping or a list of mappings",
                    "e.g. `<<: *defaults` or `<<: [*a, *b]`",
                )
            return
        typing.cast(Map, top.node).pairs.append((key, line, column, node))

    def _converted(self, frame: Frame) -> object:
        """A converted container's value, merged entries added."""
        if frame.kind is ITEMS:
            return [item for item in frame.entries if item is not MISSING]
        converter = typing.cast(Converter, self.converter)
        merged = _merged(frame)
        if frame.kind is FIELDS:
            fields: Fields = frame.entries
            for _, (key, line, column, node) in merged:
                plan = fields.key(converter, key, line, column)
                if plan is not None:
                    fields.put(converter, key, converter.value(node, plan, (*frame.path, key)))
            return fields.done(converter)
        entries: list[tuple[str, object]] = frame.entries
        if merged:
            inner = typing.cast(Plan, frame.plan).inner[0]
            added = [
                (before, (key, converter.value(node, inner, (*frame.path, key))))
                for before, (key, _, _, node) in merged
            ]
            entries = _interleave(entries, [(i, e) for i, e in added if e[1] is not MISSING])
        return dict(entries)

    # -- anchors and aliases

    def _anchor(self, name: str, mark: yaml.Mark) -> None:
        if name in self.anchors:
            raise Stop(
                mark.line + 1, mark.column + 1, f"a second anchor &{name}", "give each its own name"
            )
        self.anchors[name] = None  # open: an alias to it now would be a loop

    def _alias(self, event: typing.Any) -> None:
        mark, name = event.start_mark, str(event.anchor)
        if name not in self.anchors:
            raise Stop(
                mark.line + 1,
                mark.column + 1,
                f"no anchor &{name} before this alias",
                f"define it with `&{name}` before `*{name}`",
            )
        target = self.anchors[name]
        if target is None:
            raise Stop(mark.line + 1, mark.column + 1, f"*{name} is inside &{name} itself")
        node, size = target
        self._expand(size, f"*{name}", mark)
        self._complete(node, size, self.stack[-1].target)

    def _expand(self, size: int, what: str, mark: yaml.Mark) -> None:
        """`size` more values by an alias: refused beyond `MAX_EXPANSION` (or ten times
        the values written), the billion laughs."""
        self.aliased += size
        if self.aliased > max(MAX_EXPANSION, 10 * self.built):
            raise Stop(
                mark.line + 1,
                mark.column + 1,
                f"aliases expand the document beyond {self.aliased:,} values "
                f"({what}: {size:,})",
                "an alias bomb? write the values out, or use templates",
            )

    # -- problems

    def _here(self) -> Path_:
        """The path of the open container."""
        parts: list[str | int] = []
        for outer in self.stack[1:-1]:  # each holds the next one at its open entry
            if outer.mapping:
                parts.append(str(outer.key))
            else:
                held = outer.node.items if isinstance(outer.node, Seq) else outer.entries
                parts.append(len(held))
        return tuple(parts)

    def _note(self, line: int, column: int, tail: Path_, message: str, hint: str) -> None:
        self.notes.append((self.file, (*self._here(), *tail), line, column, message, hint))


def _merged(frame: Frame) -> list[tuple[int, Pair]]:
    """YAML 1.1 merge keys: entries of the sources the mapping does not have itself,
    earlier sources first, each with the number of own entries before its `<<`."""
    taken, found = set(frame.seen), []
    for before, sources in frame.merges:
        for source in sources:
            for pair in source.pairs:
                if pair[0] not in taken:
                    taken.add(pair[0])
                    found.append((before, pair))
    return found


def _interleave(own: list[typing.Any], merged: list[tuple[int, typing.Any]]) -> list[typing.Any]:
    """`own` entries with the `merged` ones put where their `<<` was."""
    result, done = [], 0
    for before, entry in merged:
        result.extend(own[done:before])
        done = max(done, before)
        result.append(entry)
    result.extend(own[done:])
    return result


def merge_tree(frame: Frame) -> None:
    """A tree's merge keys: the mapping's own keys win, then earlier sources; merged
    entries take the place of their `<<`."""
    node = typing.cast(Map, frame.node)
    node.pairs = _interleave(node.pairs, _merged(frame))
