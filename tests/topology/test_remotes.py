"""Compute nodes as Pacemaker Remote nodes (the topology's `remotes:`): rendered as
ocf:pacemaker:remote connections, remote node entries, fencing levels and placement
constraints that Pacemaker's schema, crm_verify and crm_simulate accept and act on
(control plane only on cluster nodes, computes' resources only on remotes, no probes
across), every problem located, import recovering the section, pcs and crmsh building
the same, and a lost remote simulated. Real crm_simulate, crm_verify, pcs and crmsh on
CIB files; no cluster, no mocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from hakit.tools.topology import apply, model, roundtrip
from hakit.tools.topology.export import pcs_script
from hakit.tools.topology.export_crm import crm_script
from hakit.tools.topology.importer import import_cib, to_yaml
from hakit.tools.topology.layers import layer_texts
from hakit.tools.topology.load import load, load_text
from hakit.tools.topology.render import render, to_text
from hakit.tools.topology.schema import json_schema
from hakit.tools.topology.simulate import what_if
from hakit.tools.topology.validate import validate
from hakit.tools.topology.verify import relaxng
from tests.conftest import REPO
from tests.topology.test_export import canonical, empty_cib, pcs_built

EXAMPLE = REPO / "examples" / "remotes.yaml"
DATA = Path(__file__).with_name("data")
CONTROLLERS = ["node1", "node2", "node3"]
#: the control plane of `many`: a primitive, a clone, a promotable clone, a group
CONTROL = {"vip", "haproxy", "db", "api-a", "api-b"}


def many(count: int = 24, discovery: str = "scoped", stickiness: str | None = "1") -> str:
    """Three controllers, `count` computes (nova-compute a clone on them); resources stay
    where they run unless `stickiness` is None."""
    computes = "".join(
        f"    - {{name: compute{i}, address: 192.168.122.{20 + i}}}\n" for i in range(1, count + 1)
    )
    if stickiness is not None:
        computes += f"defaults: {{resources: {{resource-stickiness: '{stickiness}'}}}}\n"
    return f"""cluster: {{name: big, properties: {{stonith-enabled: false}}}}
nodes: [{{name: node1}}, {{name: node2}}, {{name: node3}}]
resources:
  - {{name: vip, agent: 'ocf:heartbeat:IPaddr2', params: {{ip: 192.168.122.100}},
     ops: [{{name: monitor, interval: 10s, timeout: 20s}}]}}
  - {{name: haproxy, agent: 'ocf:heartbeat:Dummy', clone: {{meta: {{interleave: true}}}}}}
  - {{name: db, agent: 'ocf:pacemaker:Stateful', clone: {{promotable: true, promoted_max: 1}}}}
  - {{name: api-a, agent: 'ocf:heartbeat:Dummy'}}
  - {{name: api-b, agent: 'ocf:heartbeat:Dummy'}}
  - {{name: nova-compute, agent: 'ocf:heartbeat:Dummy', clone: {{meta: {{interleave: true}}}}}}
groups:
  - {{name: api, members: [api-a, api-b]}}
remotes:
  discovery: {discovery}
  resources: [nova-compute]
  nodes:
{computes}"""


def written(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def example() -> model.Topology:
    topology = load(EXAMPLE).topology
    assert topology is not None
    return topology


def graph_ops(cib: Path, tmp_path: Path) -> list[tuple[str, str, str]]:
    """(operation, resource, node) of every action crm_simulate's transition graph holds
    once the controllers are up (a probe is a monitor of interval 0)."""
    graph = tmp_path / "graph.xml"
    up = [arg for node in CONTROLLERS for arg in ("--node-up", node)]
    subprocess.run(
        ["crm_simulate", "-x", str(cib), "-S", "--quorum", "true", *up, "-G", str(graph)],
        capture_output=True,
        check=True,
    )
    found = []
    for op in etree.parse(str(graph)).iterfind("synapse/action_set/rsc_op"):  # not inputs
        key = str(op.get("operation_key"))  # RESOURCE_OPERATION_INTERVAL
        primitive = op.find("primitive")  # absent for a connection's own start
        named = key.rsplit("_", 2)[0] if primitive is None else str(primitive.get("id"))
        resource = named.split(":")[0]  # nova-compute:3 → nova-compute
        kind = "probe" if key.endswith("_monitor_0") else str(op.get("operation"))
        found.append((kind, resource, str(op.get("on_node"))))
    return found


def test_24_remotes_pass_the_schema_and_crm_verify_and_place_by_kind(tmp_path: Path) -> None:
    path = written(tmp_path, many())
    loaded = validate(path, agents=False)  # Pacemaker's RelaxNG and crm_verify included
    assert loaded.problems == [] and loaded.warnings == []
    assert loaded.skipped == ["agents and their parameters: --no-agents"]  # both ran
    assert loaded.topology is not None
    cib = render(loaded.topology)
    assert relaxng().validate(cib)
    computes = {f"compute{i}" for i in range(1, 25)}
    connections = cib.findall("configuration/resources/primitive[@type='remote']")
    assert {c.get("id") for c in connections} == computes
    first = connections[0]
    assert {p.get("name"): p.get("value") for p in first.iter("nvpair")} == {
        "server": "192.168.122.21",
        "port": "3121",
        "reconnect_interval": "60s",
    }
    assert [(o.get("name"), o.get("interval"), o.get("timeout")) for o in first.iter("op")] == [
        ("monitor", "20s", "30s"),
        ("start", "0s", "60s"),
        ("stop", "0s", "60s"),
    ]
    remote_nodes = cib.findall("configuration/nodes/node[@type='remote']")
    assert {(n.get("id"), n.get("uname")) for n in remote_nodes} == {(c, c) for c in computes}
    scoping = {
        str(loc.get("id")): (loc.get("rsc"), loc.get("resource-discovery"))
        for loc in cib.iterfind("configuration/constraints/rsc_location")
    }
    assert scoping == {
        "vip-cluster-only": ("vip", "never"),
        "haproxy-clone-cluster-only": ("haproxy-clone", "never"),
        "db-clone-cluster-only": ("db-clone", "never"),
        "nova-compute-clone-remotes-only": ("nova-compute-clone", "never"),
        "api-cluster-only": ("api", "never"),
    }
    ops = graph_ops(written(tmp_path, to_text(cib), "cib.xml"), tmp_path)
    starts = [(rsc, node) for kind, rsc, node in ops if kind == "start"]
    assert {node for rsc, node in starts if rsc in CONTROL} <= set(CONTROLLERS)
    assert sorted(node for rsc, node in starts if rsc == "nova-compute") == sorted(computes)
    assert {rsc for rsc, node in starts if node in CONTROLLERS} == CONTROL | computes
    probes = [(rsc, node) for kind, rsc, node in ops if kind == "probe"]
    assert {rsc for rsc, _ in probes} == CONTROL | computes | {"nova-compute"}
    assert [p for p in probes if p[0] in CONTROL and p[1] in computes] == []
    assert [p for p in probes if p[0] == "nova-compute" and p[1] in CONTROLLERS] == []
    assert {node for rsc, node in probes if rsc == "nova-compute"} == computes


def test_unscoped_places_the_same_and_probes_everything_everywhere(tmp_path: Path) -> None:
    """What scoping saves: unscoped, every control-plane resource is probed on every
    compute (5 x 24 probes more), though placement is the same."""
    loaded = load_text(many(discovery="unscoped"))
    assert loaded.topology is not None
    cib = render(loaded.topology)
    assert not cib.findall(".//rsc_location[@resource-discovery]")
    ops = graph_ops(written(tmp_path, to_text(cib), "cib.xml"), tmp_path)
    remote_probes = {
        (rsc, node) for kind, rsc, node in ops if kind == "probe" and "compute" in node
    }
    assert len([p for p in remote_probes if p[0] in CONTROL]) == len(CONTROL) * 24
    starts = [(rsc, node) for kind, rsc, node in ops if kind == "start"]
    assert {node for rsc, node in starts if rsc in CONTROL} <= set(CONTROLLERS)
    assert len([1 for rsc, node in starts if rsc == "nova-compute" and "compute" in node]) == 24


def test_remotes_at_scale_without_stickiness_are_a_located_warning(tmp_path: Path) -> None:
    """Without a positive resource-stickiness default, a lost remote lets the scheduler
    rebalance the other connections in the transition that handles the loss."""
    for stickiness in (None, "0", "-5"):
        text = many(stickiness=stickiness)
        loaded = validate(written(tmp_path, text), agents=False)
        assert loaded.problems == []
        assert [str(w) for w in loaded.warnings] == [
            f"{tmp_path / 't.yaml'}:17:5: remotes.nodes: 24 remotes and no resource-stickiness "
            "default: when one is lost, the scheduler may move the other remotes' connections "
            "(and fence devices) to rebalance, in the transition that handles the loss (hint: "
            "set `defaults: {resources: {resource-stickiness: 1}}`)"
        ], stickiness
    for stickiness in ("1", "100", "INFINITY"):
        loaded = validate(written(tmp_path, many(stickiness=stickiness)), agents=False)
        assert loaded.problems == [] and loaded.warnings == [], stickiness
    few = validate(written(tmp_path, many(16, stickiness=None)), agents=False)
    assert few.warnings == []


def test_unscoped_discovery_at_scale_is_a_located_warning(tmp_path: Path) -> None:
    loaded = validate(written(tmp_path, many(discovery="unscoped")), agents=False)
    assert loaded.problems == []  # valid: a warning, not an error
    assert [str(w) for w in loaded.warnings] == [
        f"{tmp_path / 't.yaml'}:14:14: remotes.discovery: unscoped with 24 remotes: every "
        "resource is probed on every node; start-up probes are a bottleneck at scale (hint: "
        "Pacemaker recommends limiting resource discovery: `discovery: scoped`)"
    ]
    few = validate(written(tmp_path, many(16, "unscoped"), "few.yaml"), agents=False)
    assert few.problems == [] and few.warnings == []
    cli = [sys.executable, "-m", "hakit.tools.cli", "topology", "validate"]
    said = subprocess.run(
        [*cli, str(tmp_path / "t.yaml")], capture_output=True, text=True, check=False
    )
    assert said.returncode == 0, said.stderr  # valid: the warning does not fail it
    assert f"warning: {tmp_path / 't.yaml'}:14:14: remotes.discovery: unscoped" in said.stderr
    as_json = subprocess.run(
        [*cli, "--json", str(tmp_path / "t.yaml")], capture_output=True, check=False
    )
    found = json.loads(as_json.stdout)
    assert found["valid"] and [p["severity"] for p in found["problems"]] == ["warning"]


BROKEN = """cluster: {name: t, properties: {stonith-enabled: false}}
nodes: [{name: node1}, {name: node2}]
fencing:
  devices: [{name: fence-c1, agent: fence_ipmilan}]
resources:
  - {name: vip, agent: 'ocf:heartbeat:Dummy'}
  - {name: nova-compute, agent: 'ocf:heartbeat:Dummy', clone: {}}
remotes:
  port: 0
  reconnect_interval: soon
  resources: [nova-compte, nova-compute-clone, nova-compute, fence-c1]
  nodes:
    - {name: c1, address: 10.0.0.1, fence: [fence-c2]}
    - {name: c1, address: 10.0.0.2}
    - {name: node2, address: 10.0.0.3}
    - {name: vip, address: 10.0.0.4}
    - {name: c5, address: 10.0.0.256, port: 70000, reconnect_interval: a fortnight}
    - {name: c6, address: bad host!}
    - {name: c7, address: 10.0.0.1, port: 0}
    - {name: 7c, address: 10.0.0.7}
"""


def test_every_problem_is_located_and_says_what_to_do(tmp_path: Path) -> None:
    loaded = validate(written(tmp_path, BROKEN), agents=False, pacemaker=False)
    file = tmp_path / "t.yaml"
    assert [str(p).removeprefix(f"{file}:") for p in loaded.problems] == [
        "20:14: remotes.nodes[7] \"7c\".name: '7c' cannot be a CIB id: it starts with '7' "
        "(hint: an id holds letters, digits, '.', '-' and '_', and starts with a letter or '_')",
        "9:9: remotes.port: 0 is not a port (hint: a TCP port: 1 to 65535 (default 3121))",
        "10:23: remotes.reconnect_interval: 'soon' is not a duration "
        "(hint: e.g. 60s, 5min or 0s (at once))",
        "13:45: remotes.nodes[0] \"c1\".fence[0]: no fencing device 'fence-c2' "
        "(hint: did you mean 'fence-c1'?)",
        "14:14: remotes.nodes[1] \"c1\".name: a second remote named 'c1' "
        "(hint: remotes.nodes[0] has it; list each remote once)",
        "15:14: remotes.nodes[2] \"node2\".name: 'node2' is also a cluster node (hint: a "
        "node is a Corosync member (nodes:) or a remote (remotes.nodes:), not both)",
        "16:14: remotes.nodes[3] \"vip\".name: the name 'vip' is already used by "
        "resources[0] (hint: the remote's connection resource takes its name: rename one "
        "of them)",
        "17:27: remotes.nodes[4] \"c5\".address: '10.0.0.256' is not an IP address or a "
        "host name (hint: e.g. 192.168.122.21, fd00::21 or compute1.example.org)",
        '17:45: remotes.nodes[4] "c5".port: 70000 is not a port '
        "(hint: a TCP port: 1 to 65535 (default 3121))",
        "17:72: remotes.nodes[4] \"c5\".reconnect_interval: 'a fortnight' is not a duration "
        "(hint: e.g. 60s, 5min or 0s (at once))",
        "18:27: remotes.nodes[5] \"c6\".address: 'bad host!' is not an IP address or a "
        "host name (hint: e.g. 192.168.122.21, fd00::21 or compute1.example.org)",
        '19:43: remotes.nodes[6] "c7".port: 0 is not a port '
        "(hint: a TCP port: 1 to 65535 (default 3121))",
        '19:27: remotes.nodes[6] "c7".address: remotes.nodes[0] has the same address and '
        "port (hint: each remote is one pacemaker-remoted: its own address (or port))",
        "11:15: remotes.resources[0]: no resource 'nova-compte' "
        "(hint: did you mean 'nova-compute'?)",
        "11:48: remotes.resources[2]: 'nova-compute' is listed already "
        "(remotes.resources[1]) (hint: list it once)",
        "11:62: remotes.resources[3]: 'fence-c1' is a fence device or a remote's connection "
        "(hint: list the resources that run on remotes (computes))",
    ]


def test_names_inside_a_group_and_levels_twice_are_refused(tmp_path: Path) -> None:
    text = (
        many(2)
        .replace("  resources: [nova-compute]\n", "  resources: [api-a]\n")
        .replace(
            "    - {name: compute2, address: 192.168.122.22}\n",
            "    - {name: compute2, address: 192.168.122.22, fence: [f]}\n",
        )
    )
    text += "fencing:\n  devices: [{name: f, agent: fence_ipmilan}]\n"
    text += "  levels: [{index: 1, target: compute2, devices: [f]}]\n"
    found = [str(p) for p in validate(written(tmp_path, text), agents=False).problems]
    assert [line.split(": ", 1)[1] for line in found] == [
        "remotes.nodes[1] \"compute2\".fence: fencing.levels[0] is level 1 for 'compute2' "
        "too (hint: give the devices in one place: `fence:` here, or that level)",
        "remotes.resources[0]: 'api-a' is inside 'api' (hint: list 'api': it is placed "
        "as a whole)",
    ]
    # a level 2 for a remote, and constraints naming a remote node, are the file's own
    text = many(2) + "fencing:\n  devices: [{name: f, agent: fence_ipmilan}]\n"
    text += "  levels: [{index: 2, target: compute2, devices: [f]}]\n"
    text += "constraints:\n  locations: [{resource: vip, node: compute1, score: -100},\n"
    text += "              {resource: compute1, node: node1, score: 50}]\n"
    assert validate(written(tmp_path, text), agents=False).problems == []
    # an id the section generates, given in the file too: said at both places
    text = many(2) + "constraints:\n  locations:\n"
    text += "    - {id: vip-cluster-only, resource: vip, node: node1, score: 10}\n"
    found = [str(p) for p in validate(written(tmp_path, text), agents=False).problems]
    assert [line.split(": ", 1)[1] for line in found] == [
        "remotes.discovery: its CIB id 'vip-cluster-only' is also the id of "
        "constraints.locations[0] (hint: give one of them another name or id)"
    ]


def test_import_recovers_the_section_and_renders_it_back() -> None:
    topology = example()
    rendered = to_text(render(topology))
    imported = import_cib(rendered)
    assert imported.lossless, imported.skipped
    assert imported.topology.remotes == topology.remotes
    assert [n.name for n in imported.topology.nodes] == CONTROLLERS
    assert "compute1" not in {r.name for r in imported.topology.resources}
    text = to_yaml(imported.topology)
    assert "remotes:\n  resources:\n  - nova-compute\n  nodes:\n  - name: compute1\n" in text
    again = load_text(text, "again.yaml")
    assert again.problems == [] and again.topology is not None
    assert again.topology.remotes == topology.remotes
    assert to_text(render(again.topology)) == rendered


@pytest.fixture(scope="module")
def pcs_cib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's remotes and compute devices, one control-plane resource and
    nova-compute, built by their pcs export on an empty CIB (pcs takes a second or two a
    command: test_export_rebuild builds the whole example)."""
    return pcs_built(computes(), tmp_path_factory.mktemp("pcs") / "cib.xml", with_nodes=False)


def computes() -> model.Topology:
    topology = example()
    fencing = topology.fencing
    fencing.devices = [d for d in fencing.devices if d.name.startswith("fence-compute")]
    fencing.levels = []
    topology.resources = [r for r in topology.resources if r.name in ("vip", "nova-compute")]
    topology.constraints = model.Constraints()
    return topology


def test_import_of_the_pcs_built_cib_recovers_the_section(pcs_cib: Path) -> None:
    script = pcs_cib.with_suffix(".sh").read_text()
    assert (
        "cluster node add-remote --no-default-ops compute4 compute4.example.org port=3122 "
        "reconnect_interval=60s op monitor interval=20s timeout=30s" in script
    )
    imported = import_cib(pcs_cib.read_text())
    assert imported.lossless, imported.skipped
    assert imported.topology.remotes == example().remotes


def test_what_the_section_would_not_write_stays_plain() -> None:
    """Placement the section would not give (a constraint missing) keeps the remotes as
    plain resources and constraints, losslessly; a connection with other operations
    stays a plain resource while the others are recovered, and its node entry's
    attributes, which only `remotes:` can say, are named as lost."""
    loaded = load_text(many(2))
    assert loaded.topology is not None
    cib = render(loaded.topology)
    constraints = cib.find("configuration/constraints")
    assert constraints is not None
    vip = constraints.find("rsc_location[@id='vip-cluster-only']")
    assert vip is not None
    constraints.remove(vip)
    imported = import_cib(etree.tostring(cib))
    assert imported.lossless, imported.skipped
    assert imported.topology.remotes.nodes == []
    assert {"compute1", "compute2"} <= {r.name for r in imported.topology.resources}
    assert not roundtrip.losses(cib, render(imported.topology))
    cib = render(example())
    monitor = cib.find(".//primitive[@id='compute1']/operations/op[@name='monitor']")
    assert monitor is not None
    monitor.set("interval", "30s")
    imported = import_cib(etree.tostring(cib))
    assert [r.name for r in imported.topology.remotes.nodes] == ["compute2", "compute3", "compute4"]
    assert "compute1" in {r.name for r in imported.topology.resources}
    assert imported.skipped == ["node compute1: the object: type='remote' lost"]


def test_a_lost_remote_is_fenced_and_only_its_resources_stop() -> None:
    placed, reaction = what_if(example(), fail_node="compute2")
    assert {(a.target, a.to_node) for a in placed if a.target.startswith("nova-compute")} == {
        (f"nova-compute:{i}", f"compute{i + 1}") for i in range(4)
    }
    assert [(a.action, a.target) for a in reaction] == [
        ("Fence (reboot)", "compute2"),
        ("Stop", "compute2"),
        ("Stop", "nova-compute:1"),
    ]
    assert reaction[2].from_node == "compute2"
    with pytest.raises(ValueError, match="no node 'compute9'.*compute4"):
        what_if(example(), fail_node="compute9")


def test_an_operation_of_a_connection_can_fail_too() -> None:
    _, reaction = what_if(example(), fail_op="compute1:monitor:node1")
    assert ("Fence (reboot)", "compute1") in [(a.action, a.target) for a in reaction]


def remote_parts(cib: etree._Element) -> dict[str, str]:
    """The remote nodes' entries (those with attributes), their connections, the
    constraints and the fencing levels, ids normalised away."""
    config = cib.find("configuration")
    assert config is not None
    parts = {
        "nodes": [n for n in config.findall("nodes/node[@type='remote']") if len(n)],
        "connections": config.findall("resources/primitive[@type='remote']"),
        "constraints": config.findall("constraints/*"),
        "levels": config.findall("fencing-topology/*"),
    }
    return {name: "".join(sorted(canonical(e) for e in found)) for name, found in parts.items()}


def test_pcs_and_crmsh_build_what_hakit_renders(pcs_cib: Path, tmp_path: Path) -> None:
    """pcs: `cluster node add-remote` and `node attribute` on the remote; crmsh:
    primitives, `node NAME:remote` and `resource-discovery=` (crmsh 4.4 writes no
    fencing levels, for any node)."""
    topology = computes()
    ours = remote_parts(render(topology))
    assert all(ours.values())
    assert remote_parts(etree.parse(str(pcs_cib)).getroot()) == ours
    (tmp_path / "config.crm").write_text(crm_script(topology))
    cib = empty_cib(tmp_path / "crm.xml")
    done = subprocess.run(
        ["crm", "-F", "configure", "load", "update", str(tmp_path / "config.crm")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CIB_file": str(cib), "LC_ALL": "C"},
    )
    assert done.returncode == 0, done.stderr
    theirs = remote_parts(etree.parse(str(cib)).getroot())
    assert theirs == {**ours, "levels": ""}
    assert "node compute1:remote attributes openstack-role=compute" in crm_script(topology)
    assert "pcs -f cib.xml stonith level add --force 1 compute1 fence-compute1" in pcs_script(
        topology
    )


def test_apply_adds_the_entry_of_a_remote_with_attributes(tmp_path: Path) -> None:
    """The cluster adds no configuration entry for a remote node: apply writes the ones
    that carry attributes, and then there is nothing left to change."""
    topology = example()
    live = render(topology)
    nodes = live.find("configuration/nodes")
    assert nodes is not None
    for node in nodes.findall("node[@type='remote']"):
        nodes.remove(node)
    desired = apply.desired_cib(topology, live)
    entries = desired.findall("configuration/nodes/node[@type='remote']")
    assert [n.get("uname") for n in entries] == ["compute1", "compute2", "compute3", "compute4"]
    assert apply.summarize(live, desired) == [f"+ node compute{i}" for i in range(1, 5)]
    change = apply.compute(topology, live_file=str(written(tmp_path, to_text(desired), "l.xml")))
    assert change.empty, change.summary


def test_a_layer_adds_remotes_and_the_schema_has_the_section() -> None:
    base = "cluster: {name: c}\nnodes: [{name: n1}]\nresources:\n"
    base += "  - {name: nova, agent: 'ocf:heartbeat:Dummy', clone: {}}\n"
    base += "remotes:\n  resources: [nova]\n  nodes: [{name: c1, address: 10.0.0.1}]\n"
    layer = "remotes:\n  nodes: [{name: c2, address: 10.0.0.2}]\n"
    loaded = layer_texts([("base.yaml", base), ("computes.yaml", layer)])
    assert loaded.problems == [] and loaded.topology is not None
    assert [r.name for r in loaded.topology.remotes.nodes] == ["c1", "c2"]
    port = layer_texts([("base.yaml", base), ("port.yaml", "remotes: {port: 4000}\n")])
    assert port.problems == [] and port.topology is not None  # the base left it unset
    assert port.topology.remotes.port == 4000
    again = "remotes: {port: 4001}\n"
    changed = layer_texts(
        [("b.yaml", base), ("p.yaml", "remotes: {port: 4000}\n"), ("q.yaml", again)]
    )
    assert [p.message for p in changed.problems] == [
        "port is '4000' in an earlier layer; a layer cannot change it"
    ]
    defs = json_schema()["$defs"]
    assert isinstance(defs, dict)
    assert defs["Topology"]["properties"]["remotes"]["$ref"] == "#/$defs/Remotes"
    assert defs["Remotes"]["properties"]["discovery"]["enum"] == ["scoped", "unscoped"]
    assert defs["Remote"]["required"] == ["name", "address"]


def test_removing_a_running_remote_is_predicted_and_patched() -> None:
    """A live CIB of the lab (`hakit lab up --remotes 20`, cut down to remote1, 2, 19
    and 20) and its topology without remote20: crm_simulate 2.1 aborts predicting the
    stop of that removed connection ("Triggered fatal assertion at pcmk_injections.c"),
    so hakit predicts without its history; the patch still removes it."""
    live = DATA / "lab-remotes-cib.xml"
    imported = import_cib(live.read_text())
    topology = imported.topology
    assert {n.name for n in topology.remotes.nodes} == {
        "remote1",
        "remote2",
        "remote19",
        "remote20",
    }
    topology.remotes.nodes = [n for n in topology.remotes.nodes if n.name != "remote20"]
    change = apply.compute(topology, live_file=str(live))
    assert "- primitive remote20" in change.summary
    assert change.patch is not None and "primitive[@id=&apos;remote20&apos;]" in change.patch
    assert change.transition  # predicted (the other remotes' connections may move)
