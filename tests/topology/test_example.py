"""The OpenStack reference topology (examples/openstack.yaml): valid with every agent's
metadata (real fence agents: fence_ipmilan, then fence_redfish), built the same by pcs,
and applied to the lab's live cluster idempotently, fenced there by the lab's own agent
through the layer lab/example-fencing.yaml."""

from __future__ import annotations

import sys
from pathlib import Path

from lxml import etree

from hakit.lab import cib
from hakit.lab.lab import Lab
from hakit.tools.topology.load import load
from hakit.tools.topology.render import render
from hakit.tools.topology.validate import validate
from tests.conftest import REPO
from tests.topology.test_export import pcs_built
from tests.topology.test_features import sections
from tests.topology.test_topology import EXAMPLE as DEMO

OPENSTACK = REPO / "examples" / "openstack.yaml"
NODES = ("node1", "node2", "node3")
#: What the lab adds above the example when it applies it: nothing starts (the lab has no
#: haproxy or galera to run).
STOP_ALL = ("<stop-all-resources>", "cluster:\n  properties: {stop-all-resources: true}\n")


def test_the_reference_topology_is_valid_with_every_agent(installed_agents: Path) -> None:
    """No lab: fence_ipmilan and fence_redfish come with fence-agents, the ocf:hakit
    agents are installed."""
    loaded = validate(OPENSTACK)
    assert [str(p) for p in loaded.problems] == []
    topology = loaded.topology
    assert topology is not None
    agents = {r.agent for r in topology.resources}
    assert {
        "ocf:hakit:cinder-volume",
        "ocf:hakit:nova-scheduler",
        "ocf:hakit:nova-consoleauth",
    } <= agents


def test_the_reference_fences_each_node_by_ipmi_then_redfish_without_a_password() -> None:
    topology = load(OPENSTACK).topology
    assert topology is not None
    devices = {d.name: d for d in topology.fencing.devices}
    levels = {(level.target, level.index): level.devices for level in topology.fencing.levels}
    for node in NODES:
        assert levels[(node, 1)] == [f"fence-{node}-ipmi"]
        assert levels[(node, 2)] == [f"fence-{node}-redfish"]
        ipmi, redfish = devices[f"fence-{node}-ipmi"], devices[f"fence-{node}-redfish"]
        assert (ipmi.agent, redfish.agent) == ("fence_ipmilan", "fence_redfish")
        for device in (ipmi, redfish):
            assert device.params["pcmk_host_list"] == node
            assert str(device.params["password_script"]).startswith("cat /etc/hakit/fence/")
            assert not {"password", "passwd"} & set(device.params)
    assert set(devices) == {f"fence-{n}-{kind}" for n in NODES for kind in ("ipmi", "redfish")}


def test_the_lab_layer_swaps_every_fence_device_for_the_labs_agent() -> None:
    """Same names and levels, every device fence_hakit_lab (level 1 the `primary` one the
    fence-device-failure drill breaks), nothing else changed."""
    reference = load(OPENSTACK).topology
    swapped = cib.example_layers(OPENSTACK, [STOP_ALL]).topology
    assert reference is not None and swapped is not None
    devices = swapped.fencing.devices
    assert {d.agent for d in devices} == {"fence_hakit_lab"}
    assert [d.name for d in devices] == [d.name for d in reference.fencing.devices]
    assert swapped.fencing.levels == reference.fencing.levels
    for device in devices:
        node = device.name.split("-")[1]
        primary = {"device": "primary"} if device.name.endswith("-ipmi") else {}
        assert device.params == {"pcmk_host_list": node, **primary}
    assert swapped.cluster.properties["stop-all-resources"] is True
    rendered, ours = sections(render(swapped)), sections(render(reference))
    assert rendered["resources"] != ours["resources"]  # the fence devices
    for section in ("constraints", "tags", "rsc_defaults", "op_defaults"):
        assert rendered[section] == ours[section]


def test_pcs_builds_the_reference_topology_the_same(installed_agents: Path, tmp_path: Path) -> None:
    topology = load(OPENSTACK).topology
    assert topology is not None
    built = etree.parse(str(pcs_built(topology, tmp_path / "cib.xml"))).getroot()
    ours = sections(render(topology))
    assert {"resources", "constraints", "tags", "rsc_defaults", "op_defaults"} <= set(ours)
    assert sections(built) == ours


def hakit(lab: Lab, verb: str, path: Path, *flags: str) -> str:
    done = lab.run(
        "node1",
        [sys.executable, "-I", "-m", "hakit.tools.cli", "topology", verb, str(path), *flags],
        timeout=180,
    )
    return done.stdout


def test_the_reference_topology_applies_to_the_lab(lab: Lab) -> None:
    """The example with the lab's layer (fence_hakit_lab) and stop-all-resources, applied
    in one patch (agents and crm_verify checked inside node1), again with no change; then
    the demo topology is put back for the other tests."""
    loaded = cib.example_layers(OPENSTACK, [STOP_ALL])
    try:
        assert cib.summary(cib.apply(lab, loaded, node="node1")).startswith("applied: ")
        assert cib.summary(cib.apply(lab, loaded, node="node1")) == "no change"
        live = lab.run("node1", ["cibadmin", "--query", "--scope", "configuration"]).stdout
        for expected in (
            'id="nova-scheduler-clone"',
            'id="fence-node3-ipmi"',
            'id="fl-node3-2"',
            'tag id="openstack-',
            'id="location-nova-scheduler-clone-rule"',
            'path="/usr/libexec/hakit/alert"',
        ):
            assert expected in live
        devices = etree.fromstring(live.encode()).iterfind(".//primitive[@class='stonith']")
        assert {d.get("type") for d in devices} == {"fence_hakit_lab"}
        assert "fence_ipmilan" not in live and "password_script" not in live
    finally:
        hakit(lab, "apply", DEMO, "--yes")
        lab.run("node1", ["crm_attribute", "--delete", "--name", "stop-all-resources"], check=False)
