"""Diff and apply a topology against a live CIB: idempotent, one `cibadmin --patch`.

hakit owns what the topology describes: the resources, constraints, fencing topology,
resource/op defaults, tags, ACLs, alerts and the attributes of the nodes it lists.
Cluster properties are merged: the ones the topology names get its values, the others are left alone
(Pacemaker maintains some itself, and timing profiles such as the lab's set others).
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from hakit.ocf import cluster, exits
from hakit.tools.topology import model
from hakit.tools.topology.render import render

OWNED_SECTIONS = (
    "resources",
    "constraints",
    "fencing-topology",
    "rsc_defaults",
    "op_defaults",
    "tags",
    "acls",
    "alerts",
)


@dataclass
class Change:
    """What applying would do: the patch, the objects it adds, changes and removes
    (`summary`), and what crm_simulate predicts."""

    patch: str | None
    transition: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.patch is None


def desired_cib(topology: model.Topology, live: etree._Element) -> etree._Element:
    """The live CIB with the topology's configuration in place (status kept)."""
    wanted = render(topology)
    result = copy.deepcopy(live)
    config = result.find("configuration")
    new_config = wanted.find("configuration")
    if config is None or new_config is None:
        raise ValueError("a CIB without a configuration section")
    for section in OWNED_SECTIONS:
        old, new = config.find(section), new_config.find(section)
        if old is not None:
            config.remove(old)
        if new is not None:
            config.append(copy.deepcopy(new))
        elif section in ("resources", "constraints"):
            etree.SubElement(config, section)
    _merge_properties(config, new_config)
    _merge_nodes(config, new_config)
    return result


def _merge_properties(config: etree._Element, new_config: etree._Element) -> None:
    crm_config = config.find("crm_config")
    new_set = new_config.find("crm_config/cluster_property_set")
    if crm_config is None or new_set is None:
        return
    old_set = crm_config.find("cluster_property_set[@id='cib-bootstrap-options']")
    if old_set is None:
        crm_config.insert(0, copy.deepcopy(new_set))
        return
    for wanted in new_set.iterfind("nvpair"):
        live = old_set.find(f"nvpair[@name='{wanted.get('name')}']")
        if live is None:
            old_set.append(copy.deepcopy(wanted))
        else:
            live.set("value", wanted.get("value", ""))


def _merge_nodes(config: etree._Element, new_config: etree._Element) -> None:
    """Attributes of listed nodes come from the topology; node ids stay the cluster's."""
    nodes = config.find("nodes")
    if nodes is None:
        return
    for wanted in new_config.iterfind("nodes/node"):
        live = nodes.find(f"node[@uname='{wanted.get('uname')}']")
        if live is None:
            continue
        for child in list(live):
            if child.tag in ("instance_attributes", "utilization"):
                live.remove(child)
        old_prefix, new_prefix = f"nodes-{wanted.get('id')}", f"nodes-{live.get('id', '')}"
        for child in wanted:
            moved = copy.deepcopy(child)
            for element in moved.iter():
                if element.get("id", "").startswith(old_prefix):
                    element.set("id", new_prefix + element.get("id", "")[len(old_prefix) :])
            live.append(moved)


def report(change: Change, *, applied: bool) -> str:
    """What `topology diff` and `apply` print: the counts, one line per object, and the
    transition crm_simulate predicts (or ran)."""
    if change.empty:
        return "no change"
    added, changed, removed = (sum(ln.startswith(m) for ln in change.summary) for m in "+~-")
    head = f"{'applied' if applied else 'would apply'}: {added} added, {changed} changed, "
    lines = [f"{head}{removed} removed", *(f"  {line}" for line in change.summary)]
    return "\n".join(lines + [f"  {'' if applied else 'would '}{ln}" for ln in change.transition])


def read_cib(text: str, source: str) -> etree._Element:
    """A CIB from its text; UsageError naming `source` when it is not one."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    try:
        tree = etree.fromstring(text.encode(), parser)  # noqa: S320 — entities off
    except etree.XMLSyntaxError as error:
        raise exits.UsageError(f"{source} is not XML: {error}") from None
    if tree.tag != "cib" or tree.find("configuration") is None:
        raise exits.UsageError(f"{source} is not a CIB (no <cib> with a <configuration>)")
    return tree


def compute(topology: model.Topology, *, live_file: str | None = None) -> Change:
    """The change against the live CIB (or a CIB file), predicted by crm_simulate."""
    with tempfile.TemporaryDirectory(prefix="hakit-topology-") as workdir:
        return _compute(topology, Path(workdir), live_file)


def apply(topology: model.Topology) -> Change:
    """Push the change to the live CIB in one patch (nothing when there is none)."""
    with tempfile.TemporaryDirectory(prefix="hakit-topology-") as workdir:
        change = _compute(topology, Path(workdir), None)
        if change.patch is not None:
            patch_file = Path(workdir) / "patch.xml"
            patch_file.write_text(change.patch)
            cluster.cib_patch(str(patch_file), timeout=60)
    return change


def _compute(topology: model.Topology, workdir: Path, live_file: str | None) -> Change:
    if live_file is None:
        live_tree = read_cib(cluster.cib_text(timeout=30), "the live CIB")
    else:
        live_tree = read_cib(Path(live_file).read_text(encoding="utf-8"), live_file)
    desired = desired_cib(topology, live_tree)
    (workdir / "live.xml").write_text(_tostring(live_tree))
    (workdir / "desired.xml").write_text(_tostring(desired))
    change = Change(cluster.cib_diff(str(workdir / "live.xml"), str(workdir / "desired.xml")))
    if change.patch is not None:
        change.summary = summarize(live_tree, desired)
        change.transition = cluster.simulate_transition(str(workdir / "desired.xml"))
    return change


def summarize(live: etree._Element, desired: etree._Element) -> list[str]:
    """The objects added (+), changed (~) and removed (-), one line each."""
    before, after = _objects(live), _objects(desired)
    lines = [f"+ {key}" for key in after if key not in before]
    lines += [f"~ {key}" for key in after if key in before and before[key] != after[key]]
    return lines + [f"- {key}" for key in before if key not in after]


def _objects(cib: etree._Element) -> dict[str, bytes]:
    """Each top-level configuration object (and each cluster property), by kind and id."""
    objects: dict[str, bytes] = {}
    config = cib.find("configuration")
    for section in () if config is None else config:
        if section.tag == "crm_config":
            for pair in section.iter("nvpair"):
                objects[f"property {pair.get('name')}"] = (pair.get("value") or "").encode()
            continue
        for child in section:
            if isinstance(child.tag, str):
                key = f"{child.tag} {child.get('id') or child.get('uname')}"
                objects[key] = etree.tostring(child, method="c14n")
    return objects


def _tostring(element: etree._Element) -> str:
    return etree.tostring(element, pretty_print=True, encoding="unicode")
