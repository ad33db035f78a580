"""CIB ids: each name or id a topology gives must be an XML id (as pcs checks it), and
so must each id render derives from them, once in the document. A bad or twice-used id,
and whatever the RelaxNG schema or crm_verify says of a rendered element, is reported at
the YAML object that produced it (`locate`), not at the top of the file."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, cast

from lxml import etree

from hakit.tools.topology import model
from hakit.tools.topology.load import Loaded, Path_, describe

#: pcs's rule (lib/pacemaker/values.py validate_id): an XML NCName in ASCII.
ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_IDS = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_.-]*\n)*")  # ids, one a line
ID_HINT = "an id holds letters, digits, '.', '-' and '_', and starts with a letter or '_'"
#: Elements whose `id` names another element (IDREF), and nodes (any text).
NOT_IDS = frozenset({"resource_ref", "obj_ref", "role", "node"})
Element = etree._Element
_ALL_IDS = etree.XPath("//@id", smart_strings=False)
_REFERENCES = etree.XPath("//acl_permission/@reference", smart_strings=False)


def id_problem(text: str) -> str | None:
    """Why `text` cannot be a CIB id, or None when it can."""
    if ID.fullmatch(text):
        return None
    if not text:
        return "it is empty"
    if (start := ID.match(text)) is None:
        return f"it starts with {text[0]!r}"
    return f"{text[start.end()]!r} is not allowed in one"


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class _WithId(Protocol):
    @property
    def id(self) -> str | None: ...


def check_given_ids(loaded: Loaded, topology: model.Topology) -> None:
    """Every name and id the topology gives that becomes a CIB id."""
    for path, text in _given_ids(topology):
        if (why := id_problem(text)) is not None:
            loaded.problem(path, f"{text!r} cannot be a CIB id: {why}", ID_HINT)


def _given_ids(topology: model.Topology) -> Iterator[tuple[Path_, str]]:
    t, c = topology, topology.constraints
    named: list[tuple[Path_, Sequence[_Named]]] = [
        (("resources",), t.resources),
        (("remotes", "nodes"), t.remotes.nodes),
        (("groups",), t.groups),
        (("bundles",), t.bundles),
        (("tags",), t.tags),
        (("alerts",), t.alerts),
        (("fencing", "devices"), t.fencing.devices),
        (("acls", "roles"), t.acls.roles),
        (("acls", "users"), t.acls.users),
        (("acls", "groups"), t.acls.groups),
        (("defaults", "resource_sets"), t.defaults.resource_sets),
        (("defaults", "operation_sets"), t.defaults.operation_sets),
    ]
    for key, items in named:
        yield from (((*key, i, "name"), item.name) for i, item in enumerate(items))
    given: list[tuple[Path_, _WithId | None]] = [
        *((("fencing", "levels", i), level) for i, level in enumerate(t.fencing.levels)),
        *((("resources", i, "clone"), r.clone) for i, r in enumerate(t.resources)),
        *((("groups", i, "clone"), g.clone) for i, g in enumerate(t.groups)),
        *(
            (("alerts", i, "recipients", j), recipient)
            for i, alert in enumerate(t.alerts)
            for j, recipient in enumerate(alert.recipients)
        ),
    ]
    constraints: tuple[tuple[str, Sequence[_WithId]], ...] = (
        ("locations", c.locations),
        ("colocations", c.colocations),
        ("orders", c.orders),
        ("colocation_sets", c.colocation_sets),
        ("order_sets", c.order_sets),
        ("tickets", c.tickets),
    )
    for kind, constraints_of_kind in constraints:
        for i, constraint in enumerate(constraints_of_kind):
            given.append((("constraints", kind, i), constraint))
            sets: list[model.ResourceSet] = getattr(constraint, "sets", [])
            given += [(("constraints", kind, i, "sets", j), s) for j, s in enumerate(sets)]
    for path, with_id in given:
        if with_id is not None and with_id.id:
            yield (*path, "id"), with_id.id


def check_rendered_ids(loaded: Loaded, topology: model.Topology, cib: Element) -> bool:
    """Ids of the rendered CIB that cannot be ids or are used twice, and references to
    ids it does not have, each reported at the object that produced it; whether all
    are right."""
    counts = Counter(_strings(_ALL_IDS(cib)))  # the common case first, no element objects
    counts.subtract(e.get("id", "") for e in cib.iter(*NOT_IDS))
    values = {value for value, count in counts.items() if count > 0}
    if (
        max(counts.values(), default=0) <= 1
        and _IDS.fullmatch("".join(value + "\n" for value in values))
        and values.issuperset(_strings(_REFERENCES(cib)))
    ):
        return True
    first: dict[str, Element] = {}
    right = True
    is_id = ID.fullmatch
    for element in cib.iter():
        value = element.get("id")
        if value is None or element.tag in NOT_IDS:
            continue
        if not is_id(value) and (why := id_problem(value)) is not None:
            loaded.problem(
                locate(element, topology), f"its CIB id {value!r} is not an id: {why}", ID_HINT
            )
            right = False
        elif value in first:
            earlier = describe(locate(first[value], topology), loaded)
            loaded.problem(
                locate(element, topology),
                f"its CIB id {value!r} is also the id of {earlier}",
                "give one of them another name or id",
            )
            right = False
        else:
            first[value] = element
    for element in cib.iter("acl_permission"):
        reference = element.get("reference")
        if reference is not None and reference not in first:
            loaded.problem(
                (*locate(element, topology), "reference"),
                f"the CIB has no id {reference!r}",
                "a reference names the id of a resource, constraint, ... (see `hakit "
                "topology render`)",
            )
            right = False
    return right


def _strings(found: object) -> list[str]:
    """An XPath's attribute values (plain strings: smart_strings=False)."""
    return cast(list[str], found)


def locate(element: Element, topology: model.Topology) -> Path_:
    """The path of the YAML object a rendered element comes from (its nearest known
    ancestor's when the element itself has no place in the file)."""
    if element.tag in _MADE_BY_REMOTES and topology.remotes.nodes:
        from hakit.tools.topology import remotes  # it imports values, which imports this

        if (made := remotes.locate(element, topology)) is not None:
            return made
    return _locate(element, topology)


def _locate(element: Element, topology: model.Topology) -> Path_:
    parent = element.getparent()
    tag = str(element.tag)
    if parent is None or tag == "configuration":
        return ()
    if tag in _BY_NAME:
        key, items = _BY_NAME[tag](topology)
        names = [item.name for item in items]
        name = element.get("id")
        if name in names:
            return (*key, names.index(name))
        if tag == "primitive" and name in (devices := [d.name for d in topology.fencing.devices]):
            return ("fencing", "devices", devices.index(name))
        return locate(parent, topology)
    if tag == "clone":
        child = next((c for c in element if c.tag in ("primitive", "group")), None)
        return (*locate(child, topology), "clone") if child is not None else ()
    if tag in _CONSTRAINTS:
        return ("constraints", _constraint_key(element), _ordinal(element, parent))
    if tag == "fencing-level":
        return ("fencing", "levels", _ordinal(element, parent))
    if tag in _LISTED:
        holder = parent.getparent() if tag == "port-mapping" else parent
        above = locate(holder, topology) if holder is not None else ()
        return (*above, _LISTED[tag], _ordinal(element, parent))
    if tag in ("meta_attributes", "instance_attributes", "utilization"):
        return _attributes(element, parent, topology)
    if tag == "nvpair":
        return _nvpair(element, parent, topology)
    if tag == "node":
        names = [n.name for n in topology.nodes]
        uname = element.get("uname")
        return ("nodes", names.index(uname)) if uname in names else ("nodes",)
    if tag == "rule":
        above = locate(parent, topology)
        return above if "rule" in above else (*above, "rule")
    above = locate(parent, topology) if tag != "cluster_property_set" else ("cluster",)
    return (*above, _SECTIONS[tag]) if tag in _SECTIONS else above


_BY_NAME: dict[str, Callable[[model.Topology], tuple[Path_, Sequence[_Named]]]] = {
    "primitive": lambda t: (("resources",), t.resources),
    "group": lambda t: (("groups",), t.groups),
    "bundle": lambda t: (("bundles",), t.bundles),
    "tag": lambda t: (("tags",), t.tags),
    "alert": lambda t: (("alerts",), t.alerts),
    "acl_role": lambda t: (("acls", "roles"), t.acls.roles),
    "acl_target": lambda t: (("acls", "users"), t.acls.users),
    "acl_group": lambda t: (("acls", "groups"), t.acls.groups),
}
#: Elements that render a map or section of the object above them.
_SECTIONS = {"network": "network", "cluster_property_set": "properties"}
_CONSTRAINTS = frozenset({"rsc_location", "rsc_colocation", "rsc_order", "rsc_ticket"})
#: Elements the `remotes` section may render.
_MADE_BY_REMOTES = frozenset({"primitive", "node", "fencing-level", "rsc_location"})
#: Elements that render one item of a list, and the list's key.
_LISTED = {
    "op": "ops",
    "resource_set": "sets",
    "recipient": "recipients",
    "acl_permission": "permissions",
    "obj_ref": "resources",
    "port-mapping": "ports",
    "storage-mapping": "storage",
}


def _plain(element: Element) -> bool:
    """A constraint between two resources (not one of sets)."""
    return element.get("rsc") is not None or element.get("first") is not None


def _constraint_key(element: Element) -> str:
    plain = _plain(element)
    return {
        "rsc_location": "locations",
        "rsc_colocation": "colocations" if plain else "colocation_sets",
        "rsc_order": "orders" if plain else "order_sets",
        "rsc_ticket": "tickets",
    }[str(element.tag)]


def _ordinal(element: Element, parent: Element) -> int:
    """The element's index among its siblings of its kind (constraints: plain or sets)."""
    siblings = [e for e in parent if e.tag == element.tag]
    if element.tag in ("rsc_colocation", "rsc_order"):
        siblings = [e for e in siblings if _plain(e) == _plain(element)]
    return siblings.index(element)


def _attributes(element: Element, parent: Element, topology: model.Topology) -> Path_:
    """meta_attributes, instance_attributes, utilization: the map they render."""
    if parent.tag in ("rsc_defaults", "op_defaults"):
        which = "resource" if parent.tag == "rsc_defaults" else "operation"
        sets = getattr(topology.defaults, f"{which}_sets")
        names = [s.name for s in sets]
        if element.get("id") in names:
            return ("defaults", f"{which}_sets", names.index(element.get("id")))
        return ("defaults", f"{which}s")
    above = locate(parent, topology)
    if element.tag == "meta_attributes":
        return (*above, "meta")
    if element.tag == "utilization":
        return (*above, "utilization")
    if parent.tag == "op":
        return (*above, "check_level")
    return (*above, "attributes" if parent.tag == "node" else "params")


def _nvpair(element: Element, parent: Element, topology: model.Topology) -> Path_:
    name = element.get("name", "")
    if parent.tag == "cluster_property_set":
        if name == "cluster-name" and name not in topology.cluster.properties:
            return ("cluster", "name")
        return ("cluster", "properties", name)
    above = locate(parent, topology)
    if above and above[-1] == "check_level":
        return above
    if len(above) == 3 and above[0] == "defaults":
        return (*above, "meta", name)  # a default set: its pairs are its `meta`
    return (*above, name)
