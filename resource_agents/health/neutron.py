"""neutron's opinion of its L3 HA routers: the agent host it calls active or standby
(`ha_state`), through the network API with the publisher's clouds.yaml credentials (an
admin sees every project's routers): one call for the routers, one per HA router for its
agents, every `INTERVAL` s beside the cycle (`PeriodicReading`). The router watch
compares it with the data plane (ROUTER_API_MISMATCH)."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from hakit.resource_agents.clouds import CloudError, CloudSession
from hakit.resource_agents.health.periodic import PeriodicReading

if TYPE_CHECKING:
    from hakit.resource_agents.health.nova import ComputeAPI

INTERVAL = 10.0
#: how far neutron's view may trail the data plane: the l3 agent's state-change report
#: (a few seconds) plus the age of this reading
API_LAG = 10.0 + INTERVAL
STATES = frozenset({"active", "standby"})  # neutron's ha_state also says "unknown"

HaStates = dict[str, dict[str, str]]  # router id → agent host → ha_state


def ha_states(cloud: CloudSession, endpoint: str | None = None) -> HaStates:
    """router id → agent host → ha_state for every HA router (CloudError when neutron
    cannot be asked; KeyError, TypeError or ValueError when its answer is not neutron's)."""

    def get(path: str) -> dict[str, Any]:
        answer = cloud.request("network", "GET", path, endpoint=endpoint)
        if not isinstance(answer, dict):
            raise CloudError(f"GET {path}: not a JSON object", kind="api")
        return answer

    query = urllib.parse.urlencode([("fields", "id"), ("fields", "ha")])
    states: HaStates = {}
    for router in get(f"/v2.0/routers?{query}")["routers"]:
        if router.get("ha") is not True:
            continue
        router_id = str(router["id"])
        agents = get(f"/v2.0/routers/{urllib.parse.quote(router_id)}/l3-agents")["agents"]
        states[router_id] = {
            str(agent["host"]): str(agent.get("ha_state"))
            for agent in agents
            if agent.get("ha_state") in STATES
        }
    return states


def on_nodes(states: HaStates, nodes: set[str], seen: set[str]) -> HaStates:
    """neutron's view of the routers on `nodes` (the cluster's): agent hosts named as
    nodes, or by a name whose first label is a node's (net1.example.com is node net1, net1
    is node net1.example.com); the others left out, and so is a router none of whose hosts
    is a node. A router the data plane does not show (`seen`: none) is kept only when
    neutron calls one of them active: one it is still setting up is not an outage."""
    by_label = {node.split(".", 1)[0]: node for node in nodes}
    found: HaStates = {}
    for router, agents in states.items():
        mine = {}
        for host, state in agents.items():
            node = host if host in nodes else by_label.get(host.split(".", 1)[0])
            if node is not None:
                mine[node] = state
        if mine and (router in seen or "active" in mine.values()):
            found[router] = mine
    return found


def check_of(nova: ComputeAPI | None) -> PeriodicReading[HaStates] | None:
    """With a cloud (the compute API's credentials), its neutron (the catalog's
    endpoint); a reading that fails leaves no opinion rather than a stale one."""
    if nova is None:
        return None
    cloud = nova.cloud
    return PeriodicReading(
        lambda: ha_states(cloud), {}, "neutron's ha_state not read", INTERVAL, failed={}
    )
