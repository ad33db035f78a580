"""testinfra checks of a cluster that playbooks/site.yml deployed: Corosync links up,
every node online, fencing configured and registered, every resource running where the
topology allows it, no failed actions, secrets and configs with their modes.

    pytest playbooks/verify --hosts=ssh://node1,ssh://node2,ssh://node3 \\
        --ssh-config=ssh_config --topology=topology.yaml
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any


def node_names(topology: dict[str, Any]) -> list[str]:
    return [node["name"] for node in topology.get("nodes", [])]


def test_corosync_reaches_every_node_on_every_link(host: Any, topology: dict[str, Any]) -> None:
    status = host.check_output("corosync-cfgtool -s")
    links = re.split(r"^LINK ID \d+", status, flags=re.MULTILINE)[1:]
    assert links, status
    for link in links:
        seen = dict(re.findall(r"nodeid:\s+(\d+):\s+(\w+)", link))
        expected = {str(i) for i in range(1, len(node_names(topology)) + 1)}
        assert set(seen) == expected, link
        assert all(state in ("localhost", "connected") for state in seen.values()), link


def test_every_topology_node_is_online(status: ET.Element, topology: dict[str, Any]) -> None:
    nodes = {node.get("name"): node for node in status.findall("nodes/node")}
    for name in node_names(topology):
        assert name in nodes, f"{name} is not a cluster member"
        assert nodes[name].get("online") == "true", f"{name} is not online"
        assert nodes[name].get("unclean") == "false", f"{name} is unclean"
    assert status.find("summary/current_dc").get("with_quorum") == "true"  # type: ignore[union-attr]


def test_fencing_is_configured_started_and_registered(
    host: Any, status: ET.Element, topology: dict[str, Any]
) -> None:
    devices = [device["name"] for device in topology.get("fencing", {}).get("devices", [])]
    assert devices, "the topology configures no fence device"
    stonith = {
        resource.get("id"): resource
        for resource in status.iter("resource")
        if (resource.get("resource_agent") or "").startswith("stonith:")
    }
    for name in devices:
        assert stonith.get(name) is not None, f"fence device {name} is not in the cluster"
        assert stonith[name].get("active") == "true", f"fence device {name} is not started"
    registered = host.check_output("stonith_admin --list-registered")
    for name in devices:
        assert name in registered, f"{name} is not registered with the fencer here"
    assert host.check_output("crm_attribute --type crm_config --name stonith-enabled --query")


def _placed(status: ET.Element) -> dict[str, set[str]]:
    """Resource id (clone instances folded onto their resource) → nodes running it."""
    placed: dict[str, set[str]] = {}
    for resource in status.iter("resource"):
        name = (resource.get("id") or "").split(":")[0]
        for node in resource.iter("node"):
            if resource.get("role") in ("Started", "Promoted", "Unpromoted"):
                placed.setdefault(name, set()).add(node.get("name") or "")
    return placed


def test_resources_run_where_the_topology_puts_them(
    status: ET.Element, topology: dict[str, Any]
) -> None:
    placed = _placed(status)
    online = set(node_names(topology))
    banned = {
        (c.get("resource"), c.get("node"))
        for c in topology.get("constraints", {}).get("locations", [])
        if str(c.get("score", "")).startswith("-INF")
    }
    for resource in topology.get("resources", []):
        name = resource["name"]
        if (resource.get("meta") or {}).get("target-role") == "Stopped":
            continue
        nodes = placed.get(name, set())
        assert nodes, f"{name} runs nowhere"
        clone = resource.get("clone")
        if clone is None:
            assert len(nodes) == 1, f"{name} runs on {sorted(nodes)}, not on one node"
        else:
            expected = min(len(online), int(clone.get("max") or len(online)))
            assert len(nodes) == expected, f"{name}: {len(nodes)} instances, not {expected}"
        for node in nodes:
            assert (name, node) not in banned, f"{name} runs on {node}, where it is banned"


def test_no_failed_actions(status: ET.Element) -> None:
    failures = [dict(failure.attrib) for failure in status.iter("failure")]
    assert failures == []


def test_secrets_and_configs_have_their_modes(host: Any, hakit_venv: str) -> None:
    for path, mode in (
        ("/etc/corosync/authkey", 0o400),
        ("/etc/corosync/corosync.conf", 0o644),
        ("/etc/hakit/topology.yaml", 0o640),
    ):
        file = host.file(path)
        assert file.is_file, f"{path} is missing"
        assert (file.user, file.group, file.mode) == ("root", "root", mode), path
    assert host.file(f"{hakit_venv}/bin/hakit").is_file
    agent = host.file("/usr/lib/ocf/resource.d/hakit/service")
    assert agent.is_file and agent.mode == 0o755
