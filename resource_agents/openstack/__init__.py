"""hakit.resource_agents.openstack — the shared implementation of hakit's OpenStack
agents (cinder-volume, nova-scheduler, nova-consoleauth, openstack-service), one module
per concern:

- `parameters`: the OCF parameters they declare;
- `config`: oslo.config files read without oslo; `urls`: transport_url and database URLs;
- `facts`: `Profile` (what differs between the agents), `Facts` (what an action knows);
- `probes`: does a broker, database or HTTP server answer; what a process tree holds;
- `database`: one read-only query (pymysql or sqlite3), the `services` heartbeats;
- `dependency_health`: the dependency record, its node attributes, the cluster verdict;
- `checks`: the monitor's depth-10 and depth-20 checks;
- `agent`: the actions and `make_agent(profile)`.

Names the agents use are also reachable here (`openstack.Facts`, ...), imported on first
use only: a depth-0 monitor loads no more than the agent needs to declare itself.
"""

from __future__ import annotations

from hakit.ocf._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hakit.resource_agents.openstack.agent import make_agent
    from hakit.resource_agents.openstack.config import (
        DEBIAN_DIST_PACKAGES,
        checked_config,
        option,
        read_config,
    )
    from hakit.resource_agents.openstack.facts import Facts, Profile
    from hakit.resource_agents.openstack.probes import http_problem

__all__ = [
    "DEBIAN_DIST_PACKAGES",
    "Facts",
    "Profile",
    "checked_config",
    "http_problem",
    "make_agent",
    "option",
    "read_config",
]

#: re-exported name → the module that defines it
EXPORTS = {
    "make_agent": "agent",
    "DEBIAN_DIST_PACKAGES": "config",
    "checked_config": "config",
    "option": "config",
    "read_config": "config",
    "Facts": "facts",
    "Profile": "facts",
    "http_problem": "probes",
}


def __getattr__(name: str) -> object:
    module = EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
