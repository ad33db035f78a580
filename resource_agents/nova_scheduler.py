"""ocf:hakit:nova-scheduler — nova-scheduler, one instance or an active/active clone.

nova-scheduler is safe active/active (placement claims resources atomically). It runs
a master and `[scheduler] workers` children; a killed worker is respawned by the
master and is not a failure. Depth 10: the workers' broker connections and the
`services` heartbeat (`nova-scheduler` on this host, in `[database] connection`);
depth 20: consumers of `scheduler` and `scheduler.<host>` in this process tree.
"""

from __future__ import annotations

from hakit.resource_agents import openstack

AGENT = openstack.make_agent(
    openstack.Profile(
        name="nova-scheduler",
        shortdesc="nova-scheduler, one instance or an active/active clone",
        longdesc=__doc__ or "",
        binary="nova-scheduler",
        config="/etc/nova/nova.conf",
        service_binary=lambda facts: "nova-scheduler",
        rows=lambda facts: [facts.host],
        queues=lambda facts: ["scheduler", f"scheduler.{facts.host}"],
    )
)

if __name__ == "__main__":
    AGENT.main()
