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

from hakit.ocf import cluster
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
    """What applying would do: the patch, and what crm_simulate predicts."""

    patch: str | None
    transition: list[str] = field(default_factory=list)

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


def compute(topology: model.Topology, *, live_file: str | None = None) -> tuple[Change, str]:
    """The change against the live CIB (or a CIB file); returns it and the desired CIB file."""
    live_text = cluster.cib_text(timeout=30) if live_file is None else Path(live_file).read_text()
    live_tree = etree.fromstring(live_text.encode(), etree.XMLParser(remove_blank_text=True))  # noqa: S320
    desired = desired_cib(topology, live_tree)
    workdir = Path(tempfile.mkdtemp(prefix="hakit-topology-"))
    (workdir / "live.xml").write_text(_tostring(live_tree))
    (workdir / "desired.xml").write_text(_tostring(desired))
    patch = cluster.cib_diff(str(workdir / "live.xml"), str(workdir / "desired.xml"))
    change = Change(patch)
    if patch is not None:
        change.transition = cluster.simulate_transition(str(workdir / "desired.xml"))
    return change, str(workdir / "desired.xml")


def apply(topology: model.Topology) -> Change:
    """Push the change to the live CIB in one patch (nothing when there is none)."""
    change, desired = compute(topology)
    if change.patch is not None:
        patch_file = Path(desired).with_name("patch.xml")
        patch_file.write_text(change.patch)
        cluster.cib_patch(str(patch_file), timeout=60)
    return change


def _tostring(element: etree._Element) -> str:
    return etree.tostring(element, pretty_print=True, encoding="unicode")
