"""hakit.resource_agents — hakit's OCF agents, one module per agent.

`AGENTS` maps the OCF type (`ocf:hakit:<type>`) to the module that declares it as
`AGENT`; modules are imported only when needed.
"""

AGENTS: dict[str, str] = {
    "service": "hakit.resource_agents.service",
    "openstack-service": "hakit.resource_agents.openstack_service",
    "cinder-volume": "hakit.resource_agents.cinder_volume",
    "nova-scheduler": "hakit.resource_agents.nova_scheduler",
    "nova-consoleauth": "hakit.resource_agents.nova_consoleauth",
    "publisher": "hakit.resource_agents.publisher",
}
