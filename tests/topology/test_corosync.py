"""corosync.conf from the topology (`hakit topology corosync-conf`, what Ansible writes): the
nodes in the file's order with the node ids the rendered CIB gives them, one knet link
per address, the profile's token timing and the file's overrides, every problem said."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from hakit.ocf import exits
from hakit.tools.topology.corosync import CorosyncError, for_topology
from hakit.tools.topology.load import load
from hakit.tools.topology.render import render
from tests.unit.test_cli import hakit

EXAMPLE = Path(__file__).parents[2] / "examples" / "openstack.yaml"
ADDRESSES = {"node1": ["10.0.0.1"], "node2": ["10.0.0.2"], "node3": ["10.0.0.3"]}


def topology_file(tmp_path: Path, corosync: dict[str, object] | None, nodes: int = 3) -> Path:
    document: dict[str, object] = {
        "cluster": {"name": "east", **({"corosync": corosync} if corosync else {})},
        "nodes": [{"name": f"node{i}"} for i in range(1, nodes + 1)],
    }
    path = tmp_path / "east.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def node_ids(text: str) -> dict[str, str]:
    return dict(re.findall(r"name: (\S+)\n\t\tnodeid: (\d+)", text))


def test_node_ids_are_the_cibs_and_every_address_is_a_link() -> None:
    topology = load(EXAMPLE).topology
    assert topology is not None
    addresses = {name: [a, a.replace("10.0.", "10.1.")] for name, [a] in ADDRESSES.items()}
    text = for_topology(topology, addresses)
    cib = render(topology)
    assert node_ids(text) == {n.get("uname"): n.get("id") for n in cib.iter("node")}
    assert "\t\tring0_addr: 10.0.0.2\n\t\tring1_addr: 10.1.0.2\n" in text
    assert "cluster_name: openstack" in text and "transport: knet" in text
    assert "keyfile: /etc/corosync/authkey" in text and "crypto_cipher: aes256" in text
    assert "token:" not in text and "two_node" not in text  # Corosync's defaults


def test_the_profile_sets_the_token_and_the_file_overrides_it(tmp_path: Path) -> None:
    fast = load(topology_file(tmp_path, {"profile": "fast"})).topology
    assert fast is not None
    text = for_topology(fast, ADDRESSES)
    assert "\ttoken: 1000\n\ttoken_coefficient: 0\n" in text
    tuned = load(topology_file(tmp_path, {"profile": "fast", "token": 3000})).topology
    assert tuned is not None
    assert "\ttoken: 3000\n\ttoken_coefficient: 0\n" in for_topology(tuned, ADDRESSES)


def test_two_nodes_keep_quorum_with_one(tmp_path: Path) -> None:
    pair = load(topology_file(tmp_path, None, nodes=2)).topology
    assert pair is not None
    text = for_topology(pair, {"node1": ["10.0.0.1"], "node2": ["10.0.0.2"]})
    assert "\ttwo_node: 1\n" in text


def test_every_address_problem_is_said_at_once() -> None:
    topology = load(EXAMPLE).topology
    assert topology is not None
    with pytest.raises(CorosyncError) as raised:
        for_topology(
            topology, {"node1": ["10.0.0.1"], "node2": ["10.0.0.2", "10.1.0.2"], "n9": ["x"]}
        )
    message = str(raised.value)
    assert "node3: no address given (--address node3=ADDRESS)" in message
    assert "n9: not a node of the topology (its nodes: node1, node2, node3)" in message
    assert "every node needs the same number of link addresses" in message


def test_the_command_prints_the_file_or_says_what_is_wrong(tmp_path: Path) -> None:
    args = [f"--address={name}={','.join(links)}" for name, links in ADDRESSES.items()]
    done = hakit("topology", "corosync-conf", str(EXAMPLE), *args)
    assert done.returncode == exits.OK, done.stderr
    assert node_ids(done.stdout) == {"node1": "1", "node2": "2", "node3": "3"}
    missing = hakit("topology", "corosync-conf", str(EXAMPLE), *args[:2])
    assert missing.returncode == exits.USAGE and "node3: no address given" in missing.stderr
    malformed = hakit("topology", "corosync-conf", str(EXAMPLE), "--address", "node1")
    assert malformed.returncode == exits.USAGE and "expected NAME=ADDRESS" in malformed.stderr
    bad = topology_file(tmp_path, {"profile": "quick"})
    located = hakit("topology", "corosync-conf", str(bad), *args)
    assert located.returncode == exits.NO and "Traceback" not in located.stderr
    assert re.search(
        rf"{re.escape(str(bad))}:4:14: cluster.corosync.profile: .quick", located.stderr
    ), located.stderr


def test_what_corosync_conf_cannot_carry_is_refused(tmp_path: Path) -> None:
    topology = load(topology_file(tmp_path, None, nodes=2)).topology
    assert topology is not None
    addresses = {"node1": ["10.0.0.1\n}\nquorum {"], "node2": ["fd00::2"]}
    with pytest.raises(CorosyncError, match="neither an IP address nor a host name"):
        for_topology(topology, addresses)
    topology.cluster.name = "east west"
    with pytest.raises(CorosyncError, match="cluster name 'east west'"):
        for_topology(topology, {"node1": ["ctl1.example.org"], "node2": ["fd00::2"]})
