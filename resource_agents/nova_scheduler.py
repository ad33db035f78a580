"""ocf:hakit:nova-scheduler — nova-scheduler, one instance or an active/active clone.

Several schedulers are safe only while placement refuses every claim beyond capacity.
Placement's default in-transaction retry of a conflicting claim over-allocates
(docs/placement-overallocation.md), so validate-all requires `[placement]
allocation_conflict_retry_count = 1` in `placement_config`: the conflict then becomes a
409 that nova retries as a new request. nova-scheduler runs a master and `[scheduler]
workers` children; a killed worker is respawned by the master and is not a failure.
Depth 10: the workers' broker connections and the `services` heartbeat (`nova-scheduler`
on this host, in `[database] connection`); depth 20: consumers of `scheduler` and
`scheduler.<host>` in this process tree.
"""

from __future__ import annotations

from hakit.ocf import OCFError, OCFExit, StringParam
from hakit.ocf._typing import TYPE_CHECKING
from hakit.resource_agents.openstack.agent import make_agent
from hakit.resource_agents.openstack.config import checked_config, option, read_config
from hakit.resource_agents.openstack.facts import Profile

if TYPE_CHECKING:
    from hakit.ocf import Context
    from hakit.resource_agents.openstack.facts import Facts

DEFAULT_PLACEMENT_CONFIG = "/etc/placement/placement.conf"
PLACEMENT_CONFIG = StringParam(
    "placement_config",
    "placement.conf of this cloud's placement service",
    "validate-all requires [placement] allocation_conflict_retry_count = 1 in it (placement's "
    "default retry over-allocates under concurrent claims). The default path is checked when "
    "it exists on this node; an explicit path must exist. Empty: not checked.",
    default=DEFAULT_PLACEMENT_CONFIG,
)
SAFE_RETRY_COUNT = "1"
PLACEMENT_DEFAULT_RETRY_COUNT = "10"


def check_placement(ctx: Context, facts: Facts) -> None:
    """Refuse a placement whose claim retry over-allocates (OCF_ERR_CONFIGURED)."""
    path = checked_config(ctx, PLACEMENT_CONFIG)
    if path is None:
        return
    config = read_config([path])
    retries = option(
        config, "placement", "allocation_conflict_retry_count", PLACEMENT_DEFAULT_RETRY_COUNT
    )
    if retries.strip() != SAFE_RETRY_COUNT:
        raise OCFError(
            OCFExit.ERR_CONFIGURED,
            f"{path}: [placement] allocation_conflict_retry_count = {retries}: placement's "
            "in-transaction retry over-allocates under concurrent schedulers; set it to 1",
        )


AGENT = make_agent(
    Profile(
        name="nova-scheduler",
        shortdesc="nova-scheduler, one instance or an active/active clone",
        longdesc=__doc__ or "",
        binary="nova-scheduler",
        config="/etc/nova/nova.conf",
        service_binary=lambda facts: "nova-scheduler",
        rows=lambda facts: [facts.host],
        queues=lambda facts: ["scheduler", f"scheduler.{facts.host}"],
        extra_parameters=[PLACEMENT_CONFIG],
        validate=check_placement,
    )
)

if __name__ == "__main__":
    AGENT.main()
