"""Pacemaker's RelaxNG on a large CIB, in linear time.

libxml2 validates the children of one element in time quadratic in their number:
50,000 resources take 3 s in one piece. RelaxNG judges each child of <resources> and
<constraints> alone (both are zeroOrMore of a choice), except for ids, which must be
unique, and references (IDREF), which must name an id of the document. So the long
lists are validated in slices, each in a small copy of the rest of the document: the
resources a slice at a time, then the constraints a slice at a time with copies of the
resources they name. Unique ids are `ids.check_rendered_ids`' to check, before. If a
slice fails, a fresh copy of the whole document is validated, for RelaxNG's own error
log (the slices' elements were validated elsewhere: libxml2 marks their ids).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import cast

from lxml import etree

#: Children of <resources> or <constraints> validated together.
SLICE = 5000
#: What a constraint names (the IDREF attributes of Pacemaker's constraints schema).
_NAMED = etree.XPath(
    ".//@rsc | .//@with-rsc | .//@first | .//@then | .//resource_ref/@id", smart_strings=False
)
#: References to resources from outside <resources> and <constraints>.
_PINNED = etree.XPath("//acl_permission/@reference", smart_strings=False)
_HOLDERS = ("primitive", "group", "clone", "master", "bundle")


def valid(
    schema: etree.RelaxNG, document: etree._Element, fresh: Callable[[], etree._Element]
) -> bool:
    """Whether `document` (a <cib> whose ids are unique) is valid; when it is not,
    `schema.error_log` holds RelaxNG's errors on `fresh()`, a new parse of it."""
    configuration = document.find("configuration")
    resources = configuration.find("resources") if configuration is not None else None
    constraints = configuration.find("constraints") if configuration is not None else None
    if resources is None or constraints is None or len(resources) + len(constraints) <= SLICE:
        return bool(schema.validate(document))
    slices = _Slices(schema, document, resources, constraints)
    try:
        if slices.resources() and slices.constraints():
            return True
    finally:
        slices.restore()
    return bool(schema.validate(fresh()))


class _Slices:
    """The long lists of a document, validated a slice at a time in small copies of the
    rest of it; each slice goes back into the document once validated."""

    def __init__(
        self,
        schema: etree.RelaxNG,
        document: etree._Element,
        resources: etree._Element,
        constraints: etree._Element,
    ) -> None:
        self.schema, self.home = schema, (resources, constraints)
        self.tops, self.rules = list(resources), list(constraints)
        self.owner: dict[str, etree._Element] = {}  # any resource id → its top element
        for top in self.tops:
            for held in top.iter(*_HOLDERS):
                self.owner.setdefault(str(held.get("id")), top)
        #: resources named from elsewhere (ACLs): copied into every slice
        self.pinned = {
            id(self.owner[name]): self.owner[name]
            for name in _strings(_PINNED(document))
            if name in self.owner
        }
        for child in self.tops:
            resources.remove(child)
        for child in self.rules:
            constraints.remove(child)
        self.base = copy.deepcopy(document)  # the rest of the document: small
        self.back = [0, 0]  # how many resources and constraints are home again

    def resources(self) -> bool:
        for start in range(0, len(self.tops), SLICE):
            part = self.tops[start : start + SLICE]
            inside = {id(top) for top in part}
            named = [top for key, top in self.pinned.items() if key not in inside]
            if not self.probe(part, named, []):
                return False
        return True

    def constraints(self) -> bool:
        named, batch = dict(self.pinned), []
        for index, rule in enumerate(self.rules):
            for name in _strings(_NAMED(rule)):
                if (top := self.owner.get(name)) is not None:
                    named[id(top)] = top
            batch.append(rule)
            if len(named) >= SLICE or len(batch) >= SLICE or index == len(self.rules) - 1:
                if not self.probe([], list(named.values()), batch):
                    return False
                named, batch = dict(self.pinned), []
        return True

    def probe(
        self, moved: list[etree._Element], copied: list[etree._Element], rules: list[etree._Element]
    ) -> bool:
        """Validate a copy of the rest with these resources (`moved`, and copies of
        `copied`) and constraints, then move them home."""
        probe = copy.deepcopy(self.base)
        held = cast(etree._Element, probe.find("configuration/resources"))
        held.extend([*moved, *(copy.deepcopy(top) for top in copied)])
        cast(etree._Element, probe.find("configuration/constraints")).extend(rules)
        passed = bool(self.schema.validate(probe))
        resources, constraints = self.home
        resources.extend(moved)
        constraints.extend(rules)
        self.back[0] += len(moved)
        self.back[1] += len(rules)
        return passed

    def restore(self) -> None:
        """Every child home, in its order (after a failed slice, or an error)."""
        resources, constraints = self.home
        resources.extend(self.tops[self.back[0] :])
        constraints.extend(self.rules[self.back[1] :])


def _strings(found: object) -> list[str]:
    """An XPath's attribute values (plain strings: smart_strings=False)."""
    return cast(list[str], found)
