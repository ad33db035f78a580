"""ocf:hakit:openstack-service — any other oslo.service daemon (cinder-scheduler,
nova-conductor, cinder-backup, cinder-api, ...), with the same health checks as hakit's
dedicated OpenStack agents: the master at depth 0; at depth 10 the broker connections
(when transport_url is set and broker=true), the `services` heartbeat (`service_binary`
on this host; heartbeat=false for services without a row) and, with `port`, an HTTP
answer from the process tree; the consumers of `queues` at depth 20. An API service:
heartbeat=false broker=false port=<its port>.
"""

from __future__ import annotations

import os

from hakit.ocf import BooleanParam, StringParam
from hakit.ocf._typing import TYPE_CHECKING
from hakit.resource_agents.openstack.agent import make_agent
from hakit.resource_agents.openstack.facts import Profile
from hakit.resource_agents.openstack.parameters import BROKER, PORT

if TYPE_CHECKING:
    from hakit.resource_agents.openstack.facts import Facts

SERVICE_BINARY = StringParam(
    "service_binary",
    "The `binary` column of its services row",
    "Empty: the program's name (e.g. cinder-scheduler).",
    default="",
)
HEARTBEAT = BooleanParam(
    "heartbeat",
    "Check the services-table heartbeat",
    "false for daemons without a services row.",
    default="true",
)


def service_binary(facts: Facts) -> str | None:
    if facts.ctx.params.get(HEARTBEAT) is False:
        return None
    return facts.ctx.params.get(SERVICE_BINARY) or os.path.basename(facts.binary_path)


AGENT = make_agent(
    Profile(
        name="openstack-service",
        shortdesc="Any oslo.service daemon, with broker and heartbeat checks",
        longdesc=__doc__ or "",
        binary=None,
        config=None,
        service_binary=service_binary,
        rows=lambda facts: [facts.host],
        extra_parameters=[SERVICE_BINARY, HEARTBEAT, BROKER, PORT],
        requires_transport=False,
    )
)

if __name__ == "__main__":
    AGENT.main()
