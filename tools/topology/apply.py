"""Diff and apply a topology against a live CIB: idempotent, one `cibadmin --patch`.

hakit owns what the topology describes: the resources, constraints, fencing topology,
resource/op defaults, tags, ACLs, alerts and the attributes of the nodes it lists.
Cluster properties are merged: the ones the topology names get its values, the others are left alone
(Pacemaker maintains some itself, and timing profiles such as the lab's set others).

An object of the live CIB that a topology cannot express (`importer`, `roundtrip`) is kept
when the topology does not name it, and never rewritten: what import could not say is
never deleted by applying what it wrote (unless `keep_unexpressed` is off).
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from hakit.ocf import cluster, exits
from hakit.tools.topology import model, roundtrip
from hakit.tools.topology.render import render

#: The sections a topology owns (each replaced by the rendered one).
OWNED_SECTIONS = roundtrip.SECTIONS


@dataclass
class Change:
    """What applying would do: the patch, the objects it adds, changes and removes
    (`summary`), and what crm_simulate predicts."""

    patch: str | None
    transition: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    #: live objects a topology cannot express, kept as they are (with the reason)
    kept: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.patch is None


def desired_cib(
    topology: model.Topology, live: etree._Element, keep: dict[str, str] | None = None
) -> etree._Element:
    """The live CIB with the topology's configuration in place (status kept), and the
    live objects named in `keep` (by `kind id`) carried over."""
    wanted = render(topology)
    result = copy.deepcopy(live)
    config = result.find("configuration")
    new_config = wanted.find("configuration")
    if config is None or new_config is None:
        raise ValueError("a CIB without a configuration section")
    for section in OWNED_SECTIONS:
        old, new = config.find(section), new_config.find(section)
        position = len(config)
        if old is not None:
            position = list(config).index(old)
            config.remove(old)
        if new is not None:
            config.insert(position, _same_as_live(copy.deepcopy(new), old))
        elif section in ("resources", "constraints"):
            etree.SubElement(config, section)
    _merge_properties(config, new_config)
    _merge_nodes(config, new_config)
    if keep:
        _carry_over(config, live, keep)
    return result


def unexpressed(live: etree._Element) -> dict[str, str]:
    """The live objects a topology cannot express, by `kind id`, with what it would lose."""
    from hakit.tools.topology.importer import import_tree

    found = {}
    for line in import_tree(live).skipped:
        key, _, why = line.partition(": ")
        found[key] = why
    return found


def _carry_over(config: etree._Element, live: etree._Element, keep: dict[str, str]) -> None:
    """Put the kept live objects back; refuse when the topology names one of them."""
    taken = {e.get("id") for e in config.iter() if e.get("id")}
    named = []
    for section in OWNED_SECTIONS:
        for element in live.iterfind(f"configuration/{section}/*"):
            key = f"{element.tag} {element.get('id')}"
            if key not in keep:
                continue
            if any(e.get("id") in taken for e in element.iter() if e.get("id")):
                named.append(f"{key} ({keep[key]})")
                continue
            target = config.find(section)
            if target is None:
                target = etree.SubElement(config, section)
            target.append(copy.deepcopy(element))
    if named:
        raise exits.UsageError(
            "the topology rewrites live objects it cannot express, which would lose what it "
            f"cannot say: {'; '.join(named)}; leave them out of the file, or pass "
            "--replace-unexpressed"
        )


def _same_as_live(section: etree._Element, live: etree._Element | None) -> etree._Element:
    """Objects that say the same as the live ones (ids of nvpairs, operations and rule
    parts aside, attribute and nvpair order aside) are the live ones, in the live order,
    so that applying over a cluster built by pcs or crmsh churns nothing."""
    if live is None:
        return section
    existing = {(e.tag, e.get("id")): e for e in live if isinstance(e.tag, str)}
    order = {key: number for number, key in enumerate(existing)}
    placed = []
    for rendered in list(section):
        section.remove(rendered)
        key = (rendered.tag, rendered.get("id"))
        match = existing.get(key)
        element = rendered
        if match is not None and _meaning(match) == _meaning(rendered):
            element = copy.deepcopy(match)
        placed.append((order.get(key, len(order)), element))
    for _, kept in sorted(placed, key=lambda pair: pair[0]):  # live order; new ones last
        section.append(kept)
    return section


def _meaning(element: etree._Element) -> bytes:
    return etree.tostring(roundtrip.canonical(element, keep_id=True), method="c14n")


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
    """Attributes of listed nodes come from the topology; node ids stay the cluster's. A
    remote node with attributes gets its entry (its id is its name) if it has none yet."""
    nodes = config.find("nodes")
    if nodes is None:
        return
    for wanted in new_config.iterfind("nodes/node"):
        live = nodes.find(f"node[@uname='{wanted.get('uname')}']")
        if live is None and wanted.get("type") == "remote" and len(wanted):
            nodes.append(copy.deepcopy(wanted))
            continue
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
    kept = [f"  = {line}" for line in change.kept]
    if kept:
        kept.insert(0, "kept, as a topology cannot express them (--replace-unexpressed):")
    if change.empty:
        return "\n".join(["no change", *kept])
    added, changed, removed = (sum(ln.startswith(m) for ln in change.summary) for m in "+~-")
    head = f"{'applied' if applied else 'would apply'}: {added} added, {changed} changed, "
    lines = [f"{head}{removed} removed", *(f"  {line}" for line in change.summary)]
    lines += [f"  {'' if applied else 'would '}{ln}" for ln in change.transition]
    return "\n".join(lines + kept)


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


def compute(
    topology: model.Topology, *, live_file: str | None = None, keep_unexpressed: bool = True
) -> Change:
    """The change against the live CIB (or a CIB file), predicted by crm_simulate."""
    with tempfile.TemporaryDirectory(prefix="hakit-topology-") as workdir:
        return _compute(topology, Path(workdir), live_file, keep_unexpressed)


def apply(topology: model.Topology, *, keep_unexpressed: bool = True) -> Change:
    """Push the change to the live CIB in one patch (nothing when there is none)."""
    with tempfile.TemporaryDirectory(prefix="hakit-topology-") as workdir:
        change = _compute(topology, Path(workdir), None, keep_unexpressed)
        if change.patch is not None:
            patch_file = Path(workdir) / "patch.xml"
            patch_file.write_text(change.patch)
            cluster.cib_patch(str(patch_file), timeout=60)
    return change


def _compute(
    topology: model.Topology, workdir: Path, live_file: str | None, keep_unexpressed: bool
) -> Change:
    if live_file is None:
        live_tree = read_cib(cluster.cib_text(timeout=30), "the live CIB")
    else:
        live_tree = read_cib(Path(live_file).read_text(encoding="utf-8"), live_file)
    keep = unexpressed(live_tree) if keep_unexpressed else {}
    desired = desired_cib(topology, live_tree, keep)
    (workdir / "live.xml").write_text(_tostring(live_tree))
    (workdir / "desired.xml").write_text(_tostring(desired))
    change = Change(cluster.cib_diff(str(workdir / "live.xml"), str(workdir / "desired.xml")))
    before = _objects(live_tree)
    change.kept = [f"{key} ({why})" for key, why in keep.items() if key in before]
    if change.patch is not None:
        change.summary = summarize(live_tree, desired)
        change.transition = cluster.simulate_transition(str(_simulated(desired, workdir)))
    return change


def _simulated(desired: etree._Element, workdir: Path) -> Path:
    """desired.xml as crm_simulate can take it: without the history of Pacemaker Remote
    connections the topology removes (crm_simulate 2.1 aborts, "Triggered fatal assertion
    at pcmk_injections.c", injecting their stop; the summary names them anyway)."""
    kept = {p.get("id") for p in desired.iterfind("configuration/resources//primitive")}
    simulated = copy.deepcopy(desired)
    gone = [
        entry
        for entry in simulated.iterfind("status/node_state/lrm/lrm_resources/lrm_resource")
        if entry.get("type") == "remote" and entry.get("id") not in kept
    ]
    if not gone:
        return workdir / "desired.xml"
    for entry in gone:
        entry.getparent().remove(entry)  # type: ignore[union-attr]
    (workdir / "simulated.xml").write_text(_tostring(simulated))
    return workdir / "simulated.xml"


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
