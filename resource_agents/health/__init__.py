"""hakit.resource_agents.health — node health, the alert outbox, SOL 003 alarms and their publisher.

Nothing is imported here: the alert agent loads `outbox` and `alert_agent` under
`python3 -IS` on every Pacemaker event and must stay light.
"""
