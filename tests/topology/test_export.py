"""pcs/crmsh scripts from a topology build the same configuration hakit renders."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lxml import etree

from hakit.lab.lab import Lab
from hakit.tools.topology import model
from hakit.tools.topology.export import pcs_script
from hakit.tools.topology.export_crm import crm_script
from hakit.tools.topology.load import load
from hakit.tools.topology.render import render
from tests.topology.test_topology import EXAMPLE

SECTIONS = (
    "crm_config",
    "resources",
    "constraints",
    "fencing-topology",
    "rsc_defaults",
    "op_defaults",
)


def canonical(element: etree._Element) -> str:
    """Tag, attributes without ids, and children in a stable order: ids normalised away,
    and Pacemaker's defaults made explicit (an order's actions default to start, a rule's
    boolean-op to and)."""
    attrib = {str(k): str(v) for k, v in element.attrib.items() if k != "id"}
    if element.tag == "rsc_order":
        attrib.setdefault("first-action", "start")
        attrib.setdefault("then-action", attrib["first-action"])
    if element.tag == "rule":
        attrib.setdefault("boolean-op", "and")
    attrs = " ".join(f"{k}={v}" for k, v in sorted(attrib.items()))
    children = sorted(canonical(child) for child in element)
    return f"<{element.tag} {attrs}>" + "".join(children) + f"</{element.tag}>"


def sections(cib: etree._Element) -> dict[str, str]:
    config = cib.find("configuration")
    assert config is not None
    found = {name: config.find(name) for name in SECTIONS}
    return {
        name: canonical(element)
        for name, element in found.items()
        if element is not None and len(element)
    }


def empty_cib(path: Path) -> Path:
    path.write_text(
        subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True, check=True).stdout
    )
    return path


def pcs_built(topology: model.Topology, path: Path, *, with_nodes: bool = True) -> Path:
    """A CIB built by running the exported pcs script with sh (it stops at the first
    command that fails); the nodes are there first, as a cluster's are when pcs runs,
    unless `with_nodes` is false (a fresh CIB)."""
    cib = empty_cib(path)
    tree = etree.parse(str(cib))
    nodes = tree.getroot().find("configuration/nodes")
    assert nodes is not None
    for number, node in enumerate(topology.nodes if with_nodes else [], 1):
        etree.SubElement(nodes, "node", id=str(number), uname=node.name)
    tree.write(str(cib))
    script = path.with_suffix(".sh")
    script.write_text(pcs_script(topology, str(cib)))
    done = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return cib


def test_pcs_script_builds_what_hakit_renders(lab: Lab, tmp_path: Path) -> None:
    """fence_hakit_lab exists while the lab runs, so pcs accepts the stonith device."""
    topology = load(EXAMPLE).topology
    assert topology is not None
    cib = pcs_built(topology, tmp_path / "cib.xml")
    built = etree.parse(str(cib)).getroot()
    ours = render(topology)
    for name in ours.iterfind(".//nvpair[@name='cluster-name']"):  # pcs sets it from corosync
        name.getparent().remove(name)  # type: ignore[union-attr]
    assert sections(built) == sections(ours)


def test_crm_script_loads_into_crmsh(lab: Lab, tmp_path: Path) -> None:
    topology = load(EXAMPLE).topology
    assert topology is not None
    script = tmp_path / "config.crm"
    script.write_text(crm_script(topology))
    cib = empty_cib(tmp_path / "cib.xml")
    done = lab.run(
        "node1",
        ["env", f"CIB_file={cib}", "crm", "-F", "configure", "load", "update", str(script)],
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    built = etree.parse(str(cib)).getroot()
    ours, theirs = sections(render(topology)), sections(built)
    assert ours["resources"] == theirs["resources"]
    assert ours["constraints"] == theirs["constraints"]


ALERTS = """cluster: {name: t}
nodes: [{name: node1}]
resources:
  - {name: d, agent: 'ocf:heartbeat:Dummy', clone: {promotable: false, max: 2},
     ops: [{name: monitor, interval: 10s, timeout: 20s}]}
alerts:
  - name: hakit-health
    path: /usr/lib/hakit/alert
    meta: {timeout: 10s}
    params: {outbox: /var/lib/hakit/outbox.db}
    recipients:
      - {value: mano}
      - {value: /var/log/alerts.log, meta: {timestamp-format: "%H:%M:%S.%06N"}}
"""


def test_alerts_render_export_and_import(tmp_path: Path) -> None:
    from hakit.tools.topology.importer import import_cib, to_yaml
    from hakit.tools.topology.load import load_text
    from hakit.tools.topology.render import to_text
    from hakit.tools.topology.verify import relaxng

    topology = load_text(ALERTS, "alerts.yaml").topology
    assert topology is not None
    rendered = render(topology)
    assert relaxng().validate(rendered)
    built = etree.parse(str(pcs_built(topology, tmp_path / "cib.xml"))).getroot()
    assert sections(built)["resources"] == sections(rendered)["resources"]
    config = built.find("configuration")
    assert config is not None and config.find("alerts") is not None
    assert canonical(config.find("alerts")) == canonical(rendered.find("configuration/alerts"))  # type: ignore[arg-type]
    again = load_text(to_yaml(import_cib(to_text(rendered)).topology), "again.yaml")
    assert again.topology is not None
    assert to_text(render(again.topology)) == to_text(rendered)


def test_import_then_render_round_trips(tmp_path: Path) -> None:
    from hakit.tools.topology.importer import import_cib, to_yaml
    from hakit.tools.topology.load import load_text
    from hakit.tools.topology.render import to_text

    topology = load(EXAMPLE).topology
    assert topology is not None
    rendered = render(topology)
    imported = import_cib(to_text(rendered))
    assert imported.skipped == []
    again = load_text(to_yaml(imported.topology), "imported.yaml")
    assert again.problems == [] and again.topology is not None
    assert sections(render(again.topology)) == sections(rendered)


def test_import_a_cib_built_by_pcs(lab: Lab, tmp_path: Path) -> None:
    """pcs's own ids are replaced by hakit's; the configuration is the same."""
    from hakit.tools.topology.importer import import_cib

    topology = load(EXAMPLE).topology
    assert topology is not None
    imported = import_cib(pcs_built(topology, tmp_path / "cib.xml").read_text())
    rendered = render(imported.topology)
    ours = render(topology)
    for cib_tree in (rendered, ours):
        for pair in cib_tree.iterfind(".//nvpair[@name='cluster-name']"):
            pair.getparent().remove(pair)  # type: ignore[union-attr]
    assert sections(rendered) == sections(ours)
