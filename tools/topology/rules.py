"""Rules in pcs's syntax ("defined pingd and #uname ne node3") ↔ CIB <rule> elements.

One grammar for location rules and resource/op default sets:

    expr     := term (and term)* | term (or term)*     (mixing and/or needs parentheses)
    term     := ( expr ) | defined ATTR | not_defined ATTR
              | ATTR OP [string|integer|number|version] VALUE     OP: eq ne lt gt lte gte
              | date gt|lt DATE | date in_range DATE to DATE
              | date in_range DATE to duration K=V... | date-spec K=V...
              | resource CLASS:PROVIDER:TYPE | op NAME [interval=INTERVAL]

Parse errors carry the column inside the rule text, so the loader points at the word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

Element = etree._Element

COMPARISONS = ("eq", "ne", "lt", "gt", "lte", "gte")
TYPES = ("string", "integer", "number", "version")
DURATION_KEYS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
DATE_SPEC_KEYS = (
    "years",
    "months",
    "weeks",
    "yeardays",
    "monthdays",
    "weekdays",
    "hours",
    "minutes",
    "seconds",
    "weekyears",
    "moon",
)
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


class RuleError(ValueError):
    """A rule that does not parse; `column` is 0-based inside the rule text."""

    def __init__(self, message: str, column: int, hint: str = "") -> None:
        super().__init__(message)
        self.column = column
        self.hint = hint


@dataclass
class Expr:
    """One test: `kind` is attribute, defined, not_defined, date, date_spec, resource, op."""

    kind: str
    attribute: str = ""
    operation: str = ""
    value: str | None = None
    type: str | None = None
    start: str | None = None
    end: str | None = None
    options: dict[str, str] = field(default_factory=dict)  # duration / date-spec / rsc / op


@dataclass
class Rule:
    """Tests joined by one boolean operator (None for a single test)."""

    boolean_op: str | None
    items: list[Expr | Rule]


def parse(text: str) -> Rule:
    """The rule `text` means, or RuleError with the column of the offending word."""
    tokens = [(m.group(), m.start()) for m in _TOKEN.finditer(text)]
    if not tokens:
        raise RuleError("the rule is empty", 0, "e.g. `defined pingd` or `#uname eq node1`")
    parser = _Parser(tokens, len(text))
    rule = parser.expression()
    if parser.position < len(tokens):
        word, column = tokens[parser.position]
        raise RuleError(f"unexpected {word!r}", column, "join tests with `and` / `or`")
    return rule


class _Parser:
    def __init__(self, tokens: list[tuple[str, int]], end: int) -> None:
        self.tokens = tokens
        self.position = 0
        self.end = end

    def peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def take(self, expected: str = "a value") -> tuple[str, int]:
        if self.position >= len(self.tokens):
            raise RuleError(f"the rule ends where {expected} should follow", self.end)
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expression(self) -> Rule:
        items: list[Expr | Rule] = [self.term()]
        boolean_op: str | None = None
        mixed: tuple[str, int] | None = None
        while self.peek() in ("and", "or"):
            word, column = self.take()
            if boolean_op and word != boolean_op:
                # pcs reads and/or left to right, without precedence: keep reading so
                # that the hint can show that grouping
                mixed = mixed or (f"{word!r} after {boolean_op!r}", column)
                items = [Rule(boolean_op, items)]
            boolean_op = word
            items.append(self.term())
        if mixed:
            grouped = to_text(Rule(boolean_op, items))
            raise RuleError(
                mixed[0],
                mixed[1],
                f"pcs reads and/or left to right: `{grouped}`; write that, or the grouping "
                "you mean, with parentheses",
            )
        return Rule(boolean_op, items)

    def term(self) -> Expr | Rule:
        word, column = self.take("a test")
        if word == "(":
            inner = self.expression()
            closing, at = self.take("`)`")
            if closing != ")":
                raise RuleError(f"expected `)`, found {closing!r}", at)
            return inner
        if word in ("defined", "not_defined"):
            return Expr(word, attribute=self.take("an attribute name")[0])
        if word == "date":
            return self.date()
        if word == "date-spec":
            return Expr(
                "date_spec",
                operation="date_spec",
                options=self.options(DATE_SPEC_KEYS, "date-spec"),
            )
        if word == "resource":
            agent, at = self.take("CLASS:PROVIDER:TYPE")
            parts = agent.split(":")
            if len(parts) != 3:
                raise RuleError(
                    f"{agent!r} is not CLASS:PROVIDER:TYPE",
                    at,
                    "leave a part empty to match any, e.g. ocf::Dummy",
                )
            return Expr(
                "resource", options=dict(zip(("class", "provider", "type"), parts, strict=True))
            )
        if word == "op":
            name = self.take("an operation name")[0]
            options = self.options(("interval",), "op") if "=" in (self.peek() or "") else {}
            return Expr("op", operation=name, options=options)
        if word in ("and", "or", ")"):
            raise RuleError(f"a test is missing before {word!r}", column)
        return self.comparison(word)

    def comparison(self, attribute: str) -> Expr:
        operation, column = self.take("eq, ne, lt, gt, lte or gte")
        if operation not in COMPARISONS:
            raise RuleError(
                f"{operation!r} is not a comparison",
                column,
                f"use one of {', '.join(COMPARISONS)}, or `defined {attribute}`",
            )
        value, _ = self.take("a value")
        kind = None
        if value in TYPES and self.peek() not in (None, "and", "or", ")"):
            kind, value = value, self.take("a value")[0]
        return Expr("attribute", attribute=attribute, operation=operation, value=value, type=kind)

    def date(self) -> Expr:
        operation, column = self.take("gt, lt or in_range")
        if operation in ("gt", "lt"):
            moment = self.take("a date")[0]
            if operation == "gt":
                return Expr("date", operation="gt", start=moment)
            return Expr("date", operation="lt", end=moment)
        if operation != "in_range":
            raise RuleError(f"{operation!r} is not a date test", column, "gt, lt or in_range")
        start = self.take("a start date")[0]
        to, at = self.take("`to`")
        if to != "to":
            raise RuleError(f"expected `to`, found {to!r}", at, "date in_range START to END")
        if self.peek() == "duration":
            self.take()
            return Expr(
                "date",
                operation="in_range",
                start=start,
                options=self.options(DURATION_KEYS, "duration"),
            )
        return Expr("date", operation="in_range", start=start, end=self.take("an end date")[0])

    def options(self, keys: tuple[str, ...], what: str) -> dict[str, str]:
        options: dict[str, str] = {}
        while (word := self.peek()) is not None and "=" in word:
            text, column = self.take()
            key, _, value = text.partition("=")
            if key not in keys:
                raise RuleError(
                    f"{what} has no option {key!r}", column, f"options: {', '.join(keys)}"
                )
            options[key] = value
        if not options:
            raise RuleError(
                f"{what} needs KEY=VALUE options", self.end, f"options: {', '.join(keys)}"
            )
        return options


# --- CIB ---------------------------------------------------------------------------------


def to_element(
    parent: Element,
    rule: Rule,
    rule_id: str,
    attrs: dict[str, str],
    *,
    always_boolean_op: bool = False,
) -> Element:
    """<rule id=rule_id attrs...> under `parent`, with pcs's ids for the nested parts
    (`always_boolean_op`: as pcs writes default sets, boolean-op even for one test)."""
    element = etree.SubElement(parent, "rule", id=rule_id)
    if rule.boolean_op and len(rule.items) > 1:
        element.set("boolean-op", rule.boolean_op)
    elif always_boolean_op:
        element.set("boolean-op", "and")
    for key, value in attrs.items():
        element.set(key, value)
    used: dict[str, int] = {}

    def unique(base: str) -> str:
        count = used.get(base, 0)
        used[base] = count + 1
        return base if count == 0 else f"{base}-{count}"

    for item in rule.items:
        if isinstance(item, Rule):
            to_element(element, item, unique(f"{rule_id}-rule"), {"score": "0"})
        elif item.kind == "resource":
            suffix = "-".join(v for v in item.options.values() if v)
            attrs = {k: v for k, v in item.options.items() if v}
            etree.SubElement(
                element, "rsc_expression", {"id": unique(f"{rule_id}-rsc-{suffix}")} | attrs
            )
        elif item.kind == "op":
            attrs = {"id": unique(f"{rule_id}-op-{item.operation}"), "name": item.operation}
            etree.SubElement(element, "op_expression", attrs | item.options)
        else:
            _expression(element, item, unique(f"{rule_id}-expr"))
    return element


def _expression(parent: Element, item: Expr, expr_id: str) -> None:
    if item.kind in ("defined", "not_defined"):
        etree.SubElement(
            parent, "expression", id=expr_id, operation=item.kind, attribute=item.attribute
        )
    elif item.kind == "attribute":
        attrs = {"id": expr_id, "operation": item.operation, "attribute": item.attribute}
        attrs |= {"type": item.type} if item.type else {}
        etree.SubElement(parent, "expression", attrs, value=item.value or "")
    else:
        attrs = {"id": expr_id, "operation": item.operation}
        attrs |= {k: v for k, v in (("start", item.start), ("end", item.end)) if v}
        element = etree.SubElement(parent, "date_expression", attrs)
        if item.kind == "date_spec":
            etree.SubElement(element, "date_spec", {"id": f"{expr_id}-datespec"} | item.options)
        elif item.options:
            etree.SubElement(element, "duration", {"id": f"{expr_id}-duration"} | item.options)


def from_element(element: Element) -> Rule:
    """The rule a CIB <rule> element holds."""
    items: list[Expr | Rule] = []
    for child in element:
        tag, get = child.tag, child.get
        if tag == "rule":
            items.append(from_element(child))
        elif tag == "expression":
            operation = get("operation", "")
            if operation in ("defined", "not_defined"):
                items.append(Expr(operation, attribute=get("attribute", "")))
            else:
                items.append(
                    Expr(
                        "attribute",
                        attribute=get("attribute", ""),
                        operation=operation,
                        value=get("value"),
                        type=get("type"),
                    )
                )
        elif tag == "date_expression":
            operation = get("operation", "")
            nested = child.find("date_spec" if operation == "date_spec" else "duration")
            options = (
                {str(k): str(v) for k, v in nested.attrib.items() if k != "id"}
                if nested is not None
                else {}
            )
            items.append(
                Expr(
                    "date_spec" if operation == "date_spec" else "date",
                    operation=operation,
                    start=get("start"),
                    end=get("end"),
                    options=options,
                )
            )
        elif tag == "rsc_expression":
            items.append(
                Expr(
                    "resource", options={k: get(k, "") or "" for k in ("class", "provider", "type")}
                )
            )
        elif tag == "op_expression":
            interval = get("interval")
            items.append(
                Expr(
                    "op",
                    operation=get("name", ""),
                    options={"interval": interval} if interval else {},
                )
            )
    return Rule(element.get("boolean-op", "and") if len(items) > 1 else None, items)


def to_text(rule: Rule) -> str:
    """pcs's text for a rule (parse(to_text(r)) == r)."""
    parts = [
        f"({to_text(item)})"
        if isinstance(item, Rule) and len(item.items) > 1
        else to_text(item)
        if isinstance(item, Rule)
        else _text(item)
        for item in rule.items
    ]
    return f" {rule.boolean_op} ".join(parts) if rule.boolean_op else parts[0]


def _text(item: Expr) -> str:
    options = " ".join(f"{k}={v}" for k, v in item.options.items())
    if item.kind in ("defined", "not_defined"):
        return f"{item.kind} {item.attribute}"
    if item.kind == "attribute":
        kind = f"{item.type} " if item.type else ""
        return f"{item.attribute} {item.operation} {kind}{item.value}"
    if item.kind == "date_spec":
        return f"date-spec {options}"
    if item.kind == "resource":
        return "resource " + ":".join(
            item.options.get(k, "") for k in ("class", "provider", "type")
        )
    if item.kind == "op":
        return f"op {item.operation} {options}".rstrip()
    if item.operation == "gt":
        return f"date gt {item.start}"
    if item.operation == "lt":
        return f"date lt {item.end}"
    end = f"duration {options}" if item.options else item.end
    return f"date in_range {item.start} to {end}"


def crm_text(rule: Rule) -> str:
    """crmsh's text for a flat rule; ValueError if crmsh cannot say it."""
    parts = []
    for item in rule.items:
        if isinstance(item, Rule) or item.kind in ("resource", "op"):
            raise ValueError(
                "crmsh cannot express nested rules or resource/op tests; "
                "use the pcs export or apply the topology directly"
            )
        options = " ".join(f"{k}={v}" for k, v in item.options.items())
        if item.kind == "attribute":
            op = f"{item.type}:{item.operation}" if item.type else item.operation
            parts.append(f"{item.attribute} {op} {item.value}")
        elif item.kind == "date_spec":
            parts.append(f"date spec {options}")
        elif item.kind == "date" and item.operation == "in_range":
            end = options if item.options else f"end={item.end}"
            parts.append(f"date in start={item.start} {end}")
        elif item.kind == "date":
            parts.append(f"date {item.operation} {item.start or item.end}")
        else:
            parts.append(_text(item))
    return f" {rule.boolean_op} ".join(parts)
