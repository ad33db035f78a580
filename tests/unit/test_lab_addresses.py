"""The lab's address plan: every node, remote and service namespace has its own address,
all inside the /16 the lab's namespaces are configured with (so remotes beyond 150, at
10.77.1.x, reach the cluster nodes at 10.77.0.x on-link)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from hakit.lab import remotes
from hakit.lab.lab import Lab, node_names
from hakit.lab.namespaces import CONTROLLER_ADDRESS, INFRA_ADDRESS, PREFIX_LENGTH, SUBNET


def test_every_address_is_distinct_and_inside_the_lab_network(tmp_path: Path) -> None:
    lab = Lab(tmp_path)  # no lab.json: names and addresses only
    network = ipaddress.ip_network(f"{SUBNET}.0/{PREFIX_LENGTH}", strict=False)
    names = node_names(9) + remotes.names(remotes.MAX_REMOTES)
    every = [INFRA_ADDRESS, CONTROLLER_ADDRESS, *(lab.address(name) for name in names)]
    assert len(set(every)) == len(every)
    for address in every:
        host = ipaddress.ip_address(address)
        assert host in network and host not in (network.network_address, network.broadcast_address)
        assert not address.endswith((".0", ".255")), address
    assert remotes.address("remote150") == f"{SUBNET}.250"
    assert remotes.address("remote151") == f"{remotes.NEXT_SUBNET}.1"
