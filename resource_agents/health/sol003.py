"""ETSI GS NFV-SOL 003 (VNF fault management) alarms from node health.

One root alarm per unhealthy host (`isRootCause` true, `managedObjectId` the host: a
hakit extension, the host is not a VNF) and, for host-level faults, one alarm per
instance the inventory places on it, correlated both ways (`correlatedAlarmIds`).
`transition` turns a host's open alarm and its new health into the notifications to
send: AlarmNotification when an alarm is raised or changes, AlarmClearedNotification
when it ends. Alarm ids derive from the host and the raise time, so a clear carries
the id of its raise, and instance alarm ids from the root's.

Stored notifications carry no subscriptionId; `for_subscription` adds it per delivery.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hakit.resource_agents.health.constants import (
    ALARM_CLEARED_NOTIFICATION,
    ALARM_NOTIFICATION,
    API_BASE,
    VIM_CONNECTION_ID,
)
from hakit.resource_agents.health.model import Health, NodeHealth, rfc3339

ALARM_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:hakit:health:alarm")
FM_PATH = "/vnffm/v1"


@dataclass(frozen=True)
class Fault:
    """How one health class reads as a SOL 003 alarm."""

    severity: str
    event_type: str
    probable_cause: str
    instance_severity: str | None  # None: the host's instances get no alarm of their own
    instance_cause: str = ""


FAULTS = {
    Health.DEGRADED: Fault("WARNING", "QOS_ALARM", "Host degraded", None),
    Health.SERVICE_DOWN_HOST_UP: Fault(
        "MAJOR", "PROCESSING_ERROR_ALARM", "Service down on a running host", None
    ),
    Health.HOST_LEFT_CLUSTER: Fault(
        "WARNING", "EQUIPMENT_ALARM", "Host left the cluster cleanly (not fenced)", None
    ),
    Health.HOST_UNREACHABLE_UNFENCED: Fault(
        "MAJOR",
        "COMMUNICATIONS_ALARM",
        "Host unreachable, not fenced",
        "MAJOR",
        "Instance state unknown: its host is unreachable and not fenced",
    ),
    Health.HOST_DOWN_FENCED: Fault(
        "CRITICAL",
        "EQUIPMENT_ALARM",
        "Host down, fencing confirmed",
        "CRITICAL",
        "Instance down with its host (host fenced: safe to evacuate)",
    ),
}


@dataclass(frozen=True)
class Instance:
    """An instance (VM) the inventory places on a host."""

    id: str
    managed_object_id: str  # its VNF instance id when known, else its own id


def load_inventory(path: str | Path) -> dict[str, list[Instance]]:
    """host → instances, from JSON (or YAML when PyYAML is there): each host maps to a list
    of ids or of {"id": …, "vnfInstanceId": …}."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        import yaml  # YAML needs PyYAML; JSON does not

        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of host to instances")
    inventory: dict[str, list[Instance]] = {}
    for host, items in data.items():
        if not isinstance(items, list):
            raise ValueError(f"{path}: {host}: expected a list of instances")
        inventory[str(host)] = [_instance(path, host, item) for item in items]
    return inventory


def _instance(path: str | Path, host: str, item: object) -> Instance:
    if isinstance(item, str | int):
        return Instance(str(item), str(item))
    if isinstance(item, dict) and item.get("id"):
        return Instance(str(item["id"]), str(item.get("vnfInstanceId") or item["id"]))
    raise ValueError(f"{path}: {host}: an instance is an id or a mapping with an id")


@dataclass
class OpenAlarm:
    """A host's alarm while it is raised, with its instances' alarms."""

    host: str
    alarm_id: str
    raised: float
    changed: float
    health: Health
    services_down: list[str] = field(default_factory=list)
    instances: dict[str, str] = field(default_factory=dict)  # managed object id → alarm id
    severity: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "alarm_id": self.alarm_id,
            "raised": self.raised,
            "changed": self.changed,
            "health": self.health.value,
            "services_down": self.services_down,
            "instances": self.instances,
            "severity": self.severity,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpenAlarm:
        return cls(
            data["host"],
            data["alarm_id"],
            data["raised"],
            data["changed"],
            Health(data["health"]),
            data["services_down"],
            data["instances"],
            data["severity"],
        )


@dataclass(frozen=True)
class Outgoing:
    """One notification to store: its id, host, severity (for filters) and JSON body."""

    notification_id: str
    notification_type: str
    host: str
    severity: str
    body: dict[str, Any]
    event_time: float


@dataclass(frozen=True)
class FaultyResource:
    """An alarm's rootCauseFaultyResource: the resource id, its vimLevelResourceType and
    its faultyResourceType."""

    id: str
    level: str
    type: str


@dataclass(frozen=True)
class Context:
    """Where alarms point: the VIM connection id and the API's base URL."""

    vim_connection_id: str = VIM_CONNECTION_ID
    api_base: str = API_BASE


def alarm_id(host: str, raised: float) -> str:
    return str(uuid.uuid5(ALARM_NAMESPACE, f"host/{host}/{raised:.6f}"))


def instance_alarm_id(root_id: str, managed_object_id: str) -> str:
    return str(uuid.uuid5(uuid.UUID(root_id), f"instance/{managed_object_id}"))


def transition(
    current: OpenAlarm | None,
    node: NodeHealth,
    *,
    now: float,
    event_time: float,
    instances: list[Instance],
    context: Context,
) -> tuple[OpenAlarm | None, list[Outgoing]]:
    """The host's alarm after `node`'s new health, and the notifications that says."""
    if node.health is Health.OK:
        return None, clear(current, now=now, event_time=event_time, context=context)
    fault = FAULTS[node.health]
    wanted = instances if fault.instance_severity else []
    if (
        current is not None
        and current.health is node.health
        and current.services_down == node.services_down
        and set(current.instances) == {i.managed_object_id for i in wanted}
    ):
        return current, []
    raised = current.raised if current else now
    root_id = current.alarm_id if current else alarm_id(node.node, raised)
    new = OpenAlarm(
        node.node,
        root_id,
        raised,
        now,
        node.health,
        list(node.services_down),
        {i.managed_object_id: instance_alarm_id(root_id, i.managed_object_id) for i in wanted},
        fault.severity,
    )
    out = [_notify(new, _root_alarm(new, node, fault, event_time, context), now, event_time)]
    for instance in wanted:
        body = _instance_alarm(new, instance, node, fault, event_time, context)
        out.append(_notify(new, body, now, event_time))
    if current is not None:  # instances no longer concerned: their alarms end
        gone = [a for i, a in current.instances.items() if i not in new.instances]
        out += [
            cleared_notification(node.node, a, current.severity, now, event_time, context)
            for a in gone
        ]
    return new, out


def clear(
    current: OpenAlarm | None, *, now: float, event_time: float, context: Context
) -> list[Outgoing]:
    """AlarmClearedNotification for a host's alarm and its instances' (instances first)."""
    if current is None:
        return []
    ids = [*current.instances.values(), current.alarm_id]
    return [
        cleared_notification(current.host, a, current.severity, now, event_time, context)
        for a in ids
    ]


def _root_alarm(
    alarm: OpenAlarm, node: NodeHealth, fault: Fault, event_time: float, context: Context
) -> dict[str, Any]:
    return _alarm(
        alarm,
        alarm.alarm_id,
        node.node,
        severity=fault.severity,
        event_type=fault.event_type,
        probable_cause=fault.probable_cause,
        root=True,
        correlated=list(alarm.instances.values()),
        details=node.reasons,
        event_time=event_time,
        context=context,
    )


def _instance_alarm(
    alarm: OpenAlarm,
    instance: Instance,
    node: NodeHealth,
    fault: Fault,
    event_time: float,
    context: Context,
) -> dict[str, Any]:
    body = _alarm(
        alarm,
        alarm.instances[instance.managed_object_id],
        instance.managed_object_id,
        severity=fault.instance_severity or fault.severity,
        event_type=fault.event_type,
        probable_cause=fault.instance_cause,
        root=False,
        correlated=[alarm.alarm_id],
        details=[f"instance {instance.id} on host {node.node}", *node.reasons],
        event_time=event_time,
        context=context,
    )
    if instance.id != instance.managed_object_id:
        body["vnfcInstanceIds"] = [instance.id]
    return body


def _alarm(
    alarm: OpenAlarm,
    identifier: str,
    managed_object: str,
    *,
    severity: str,
    event_type: str,
    probable_cause: str,
    root: bool,
    correlated: list[str],
    details: list[str],
    event_time: float,
    context: Context,
) -> dict[str, Any]:
    return alarm_body(
        identifier,
        managed_object,
        FaultyResource(alarm.host, "host", "COMPUTE"),
        raised=alarm.raised,
        changed=alarm.changed,
        severity=severity,
        event_type=event_type,
        fault_type=alarm.health.value,
        probable_cause=probable_cause,
        root=root,
        correlated=correlated,
        details=details,
        event_time=event_time,
        context=context,
    )


def alarm_body(
    identifier: str,
    managed_object: str,
    resource: FaultyResource,
    *,
    raised: float,
    changed: float,
    severity: str,
    event_type: str,
    fault_type: str,
    probable_cause: str,
    root: bool,
    correlated: list[str],
    details: list[str],
    event_time: float,
    context: Context,
) -> dict[str, Any]:
    """A SOL 003 Alarm (host alarms here, correlation alarms in correlation_alarms.py)."""
    return {
        "id": identifier,
        "managedObjectId": managed_object,
        "rootCauseFaultyResource": {
            "faultyResource": {
                "vimConnectionId": context.vim_connection_id,
                "resourceId": resource.id,
                "vimLevelResourceType": resource.level,
            },
            "faultyResourceType": resource.type,
        },
        "alarmRaisedTime": rfc3339(raised),
        "alarmChangedTime": rfc3339(changed),
        "ackState": "UNACKNOWLEDGED",
        "perceivedSeverity": severity,
        "eventTime": rfc3339(event_time),
        "eventType": event_type,
        "faultType": fault_type,
        "probableCause": probable_cause,
        "isRootCause": root,
        "correlatedAlarmIds": correlated,
        "faultDetails": details,
        "_links": {"self": {"href": f"{context.api_base}{FM_PATH}/alarms/{identifier}"}},
    }


def _notify(alarm: OpenAlarm, body: dict[str, Any], now: float, event_time: float) -> Outgoing:
    return raised_notification(body, alarm.host, alarm.changed, now, event_time)


def raised_notification(
    body: dict[str, Any], host: str, version: float, now: float, event_time: float
) -> Outgoing:
    """AlarmNotification of `body`; its id derives from the alarm's and `version` (the
    time the alarm last changed), so the same change is never stored twice."""
    identifier = str(body["id"])
    notification_id = str(uuid.uuid5(uuid.UUID(identifier), f"raise/{version:.6f}"))
    notification: dict[str, Any] = {
        "id": notification_id,
        "notificationType": ALARM_NOTIFICATION,
        "timeStamp": rfc3339(now),
        "alarm": body,
    }
    return Outgoing(
        notification_id,
        ALARM_NOTIFICATION,
        host,
        str(body["perceivedSeverity"]),
        notification,
        event_time,
    )


def cleared_notification(
    host: str, identifier: str, severity: str, now: float, event_time: float, context: Context
) -> Outgoing:
    """AlarmClearedNotification for alarm `identifier`, cleared at `event_time`."""
    notification_id = str(uuid.uuid5(uuid.UUID(identifier), f"clear/{now:.6f}"))
    notification: dict[str, Any] = {
        "id": notification_id,
        "notificationType": ALARM_CLEARED_NOTIFICATION,
        "timeStamp": rfc3339(now),
        "alarmId": identifier,
        "alarmClearedTime": rfc3339(event_time),
        "_links": {"alarm": {"href": f"{context.api_base}{FM_PATH}/alarms/{identifier}"}},
    }
    return Outgoing(
        notification_id, ALARM_CLEARED_NOTIFICATION, host, severity, notification, event_time
    )


def for_subscription(
    notification: dict[str, Any], subscription_id: str, api_base: str
) -> dict[str, Any]:
    """The stored notification as one subscriber receives it."""
    links = dict(notification.get("_links") or {})
    links["subscription"] = {"href": f"{api_base}{FM_PATH}/subscriptions/{subscription_id}"}
    return {**notification, "subscriptionId": subscription_id, "_links": links}
