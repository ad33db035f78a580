"""What a topology cannot say about a CIB: each configuration object compared, in a
canonical form, with the object its topology renders back.

The canonical form keeps what Pacemaker acts on and every id an operator or pcs gave
(resources, constraints, sets, fencing levels, defaults sets, recipients) and drops
what carries no meaning: ids of nvpairs, attribute sets, operations and rule parts,
the order of nvpairs, node ids (the cluster assigns them), node entries that say
nothing (a member's or a remote's, without attributes), and the properties Pacemaker
maintains itself.
"""

from __future__ import annotations

import copy

from lxml import etree

from hakit.tools.topology.pacemaker_options import MAINTAINED_PROPERTIES

Element = etree._Element

#: Sections compared object by object (children keyed by tag and id).
SECTIONS = (
    "resources",
    "constraints",
    "fencing-topology",
    "rsc_defaults",
    "op_defaults",
    "tags",
    "acls",
    "alerts",
)
#: Elements whose ids nobody chooses: pcs, crmsh and hakit each generate their own.
_GENERATED_IDS = frozenset(
    {
        "nvpair",
        "instance_attributes",
        "meta_attributes",
        "utilization",
        "operations",
        "op",
        "rule",
        "expression",
        "date_expression",
        "date_spec",
        "duration",
        "acl_permission",
        "port-mapping",
        "storage-mapping",
    }
)
_SETS = ("instance_attributes", "meta_attributes", "utilization")


def objects(cib: Element) -> dict[str, Element]:
    """Every configuration object in canonical form, by `kind id` (`node NAME` for
    nodes, `property-set ID` for cluster property sets)."""
    found: dict[str, Element] = {}
    config = cib.find("configuration")
    if config is None:
        return found
    for properties in config.iterfind("crm_config/cluster_property_set"):
        kept = copy.deepcopy(properties)
        for pair in list(kept.iterfind("nvpair")):
            if pair.get("name") in MAINTAINED_PROPERTIES:
                kept.remove(pair)
        if len(kept):
            found[f"property-set {kept.get('id')}"] = canonical(kept, keep_id=True)
    for node in config.iterfind("nodes/node"):
        kept = canonical(node, keep_id=False)
        if len(kept) or kept.get("type") not in (None, "member", "remote"):
            found[f"node {node.get('uname')}"] = kept
    for name in SECTIONS:
        for child in config.iterfind(f"{name}/*"):
            if isinstance(child.tag, str):
                keep = name in ("rsc_defaults", "op_defaults") or child.tag not in _GENERATED_IDS
                found[f"{child.tag} {child.get('id')}"] = canonical(child, keep_id=keep)
    return found


def canonical(element: Element, *, keep_id: bool) -> Element:
    """A copy without generated ids, nvpairs sorted, attribute sets before the rest."""
    result = copy.deepcopy(element)
    if not keep_id:
        _drop(result, "id")
    for item in list(result.iter()):
        item.tail = None
        if item.text is not None and not item.text.strip():
            item.text = None
        if item is not result and item.tag in _GENERATED_IDS:
            _drop(item, "id")
        if item.tag == "node":
            _drop(item, "id")
            if item.get("type") == "member":
                _drop(item, "type")
        pairs = [c for c in item if c.tag == "nvpair"]
        if item.tag in ("primitive", "clone", "group", "bundle", "op"):
            _reorder(item, sorted(item, key=_set_first))
        elif pairs:
            _reorder(item, [c for c in item if c.tag != "nvpair"] + sorted(pairs, key=_name))
    return result


def _drop(element: Element, name: str) -> None:
    if name in element.attrib:
        del element.attrib[name]


def _reorder(parent: Element, children: list[Element]) -> None:
    for child in children:
        parent.remove(child)
        parent.append(child)


def _name(element: Element) -> str:
    return str(element.get("name"))


def _set_first(element: Element) -> int:
    return _SETS.index(element.tag) if element.tag in _SETS else len(_SETS)


def losses(original: Element, rendered: Element) -> list[str]:
    """One line per object of `original` that `rendered` lacks or says differently."""
    before, after = objects(original), objects(rendered)
    lines = []
    for key, element in before.items():
        other = after.get(key)
        if other is None:
            lines.append(f"{key}: not expressed ({_gist(element)})")
        elif _c14n(element) != _c14n(other):
            lines.append(f"{key}: {first_difference(element, other)}")
    return lines


def first_difference(original: Element, rendered: Element, where: str = "") -> str:
    """The first place where `rendered` says less or otherwise than `original`
    (`where`: the path of tags below the object)."""
    place = where or "the object"
    before, after = _attrs(original), _attrs(rendered)
    for name, value in before.items():
        if after.get(name) != value:
            became = "lost" if name not in after else f"became {after[name]!r}"
            return f"{place}: {name}={value!r} {became}"
    for name, value in after.items():
        if name not in before:
            return f"{place}: {name}={value!r} added"
    kept, said = list(original), list(rendered)
    for position, child in enumerate(kept):
        if position >= len(said) or child.tag != said[position].tag:
            return f"{place}: {_gist(child)} lost"
        if _c14n(child) != _c14n(said[position]):
            return first_difference(child, said[position], f"{where}/{child.tag}".lstrip("/"))
    if len(said) > len(kept):
        return f"{place}: {_gist(said[len(kept)])} added"
    return f"{place}: differs"


def _attrs(element: Element) -> dict[str, str]:
    return {str(k): str(v) for k, v in element.items()}


def _gist(element: Element) -> str:
    attrs = " ".join(f'{k}="{v}"' for k, v in list(_attrs(element).items())[:3])
    return f"<{element.tag}{' ' + attrs if attrs else ''}>"


def _c14n(element: Element) -> bytes:
    return etree.tostring(element, method="c14n")
