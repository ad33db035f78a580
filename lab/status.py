"""What the lab's cluster says: each node's view (crm_mon through the node's runner),
the lab's summary (`hakit lab status`) and waiting until every node is online."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from hakit.lab.errors import LabError
from hakit.ocf import cluster
from hakit.ocf.status import ClusterStatus

if TYPE_CHECKING:
    from hakit.lab.lab import Lab


def cluster_status(lab: Lab, node: str, timeout: float = 10) -> ClusterStatus | None:
    """crm_mon's view from `node`, or None if it cannot answer."""
    if not lab.powered(node):
        return None
    try:
        with lab.on(node):
            return cluster.cluster_status(timeout=timeout)
    except (LabError, cluster.ClusterCommandError):
        return None


def status(lab: Lab) -> dict[str, object]:
    """Power, membership and DC as one running node sees them (remotes after the nodes)."""
    nodes: dict[str, dict[str, object]] = {
        n: {"power": "on" if lab.powered(n) else "off", "online": False}
        for n in lab.nodes + lab.remotes
    }
    result: dict[str, object] = {
        "profile": lab.state.profile,
        "dc": None,
        "quorate": False,
        "nodes": nodes,
    }
    for node in lab.nodes:
        seen_from = cluster_status(lab, node)
        if seen_from is None:
            continue
        result["dc"], result["quorate"] = seen_from.dc, seen_from.quorate
        for seen in seen_from.nodes:
            if seen.name in nodes:
                nodes[seen.name]["online"] = seen.online
        break
    return result


def wait_until_online(lab: Lab, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    want = set(lab.nodes)
    while time.monotonic() < deadline:
        found = cluster_status(lab, lab.nodes[0], timeout=5)
        if found and found.dc and {n.name for n in found.nodes if n.online} >= want:
            return
        time.sleep(0.2)
    raise LabError(
        f"the cluster did not come up within {timeout:g}s; see "
        f"{lab.node_dir(lab.nodes[0]) / 'var-log-pacemaker'}"
    )
