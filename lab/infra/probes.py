"""Does a service answer? The infra node asks the agents' own probes
(`hakit.resource_agents.openstack.probes`, the single implementation): a MySQL handshake,
an AMQP 0-9-1 Connection.Start, an HTTP status line."""

from __future__ import annotations

from hakit.resource_agents.openstack.probes import amqp_answers, http_answers, mysql_answers

__all__ = ["amqp_answers", "http_answers", "mysql_answers"]
