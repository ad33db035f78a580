"""SOL 003 alarms: a root host alarm, correlated instance alarms, stable ids from raise to clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hakit.resource_agents.health.constants import ALARM_CLEARED_NOTIFICATION, ALARM_NOTIFICATION
from hakit.resource_agents.health.model import Health, NodeHealth
from hakit.resource_agents.health.sol003 import (
    Context,
    Instance,
    OpenAlarm,
    Outgoing,
    for_subscription,
    load_inventory,
    transition,
)

CONTEXT = Context("vim-1", "http://127.0.0.1:8797")
INSTANCES = [Instance("vm-a", "vm-a"), Instance("vm-b", "vnf-1")]


def step(
    current: OpenAlarm | None, health: Health, now: float, services_down: tuple[str, ...] = ()
) -> tuple[OpenAlarm | None, list[Outgoing]]:
    """node2's alarm after it turns `health` at `now` (the event a tenth of a second before)."""
    node = NodeHealth("node2", health, [f"reason for {health.value}"], list(services_down))
    return transition(
        current, node, now=now, event_time=now - 0.1, instances=INSTANCES, context=CONTEXT
    )


def test_raise_update_clear_keep_their_ids() -> None:
    alarm, raised = step(None, Health.HOST_UNREACHABLE_UNFENCED, 1_800_000_000.0)
    assert alarm is not None and len(raised) == 3
    root = raised[0].body["alarm"]
    instances = [r.body["alarm"] for r in raised[1:]]
    assert root == {
        "id": alarm.alarm_id,
        "managedObjectId": "node2",
        "rootCauseFaultyResource": {
            "faultyResource": {
                "vimConnectionId": "vim-1",
                "resourceId": "node2",
                "vimLevelResourceType": "host",
            },
            "faultyResourceType": "COMPUTE",
        },
        "alarmRaisedTime": "2027-01-15T08:00:00.000000Z",
        "alarmChangedTime": "2027-01-15T08:00:00.000000Z",
        "ackState": "UNACKNOWLEDGED",
        "perceivedSeverity": "MAJOR",
        "eventTime": "2027-01-15T07:59:59.900000Z",
        "eventType": "COMMUNICATIONS_ALARM",
        "faultType": "HOST_UNREACHABLE_UNFENCED",
        "probableCause": "Host unreachable, not fenced",
        "isRootCause": True,
        "correlatedAlarmIds": [i["id"] for i in instances],
        "faultDetails": ["reason for HOST_UNREACHABLE_UNFENCED"],
        "_links": {"self": {"href": f"http://127.0.0.1:8797/vnffm/v1/alarms/{alarm.alarm_id}"}},
    }
    assert [i["managedObjectId"] for i in instances] == ["vm-a", "vnf-1"]
    assert instances[1]["vnfcInstanceIds"] == ["vm-b"]
    assert all(
        i["correlatedAlarmIds"] == [alarm.alarm_id] and not i["isRootCause"] for i in instances
    )

    fenced, updated = step(alarm, Health.HOST_DOWN_FENCED, 1_800_000_010.0)
    assert fenced is not None and fenced.alarm_id == alarm.alarm_id
    assert [u.body["alarm"]["id"] for u in updated] == [root["id"], *(i["id"] for i in instances)]
    assert [u.body["alarm"]["perceivedSeverity"] for u in updated] == ["CRITICAL"] * 3
    assert updated[0].body["alarm"]["alarmRaisedTime"] == root["alarmRaisedTime"]
    assert updated[0].body["alarm"]["eventType"] == "EQUIPMENT_ALARM"

    assert step(fenced, Health.HOST_DOWN_FENCED, 1_800_000_020.0) == (fenced, [])

    closed, cleared = step(fenced, Health.OK, 1_800_000_030.0)
    assert closed is None
    assert [c.notification_type for c in cleared] == [ALARM_CLEARED_NOTIFICATION] * 3
    assert [c.body["alarmId"] for c in cleared] == [i["id"] for i in instances] + [root["id"]]
    assert cleared[-1].severity == "CRITICAL"  # what a severity filter matches on
    every_id = [n.notification_id for n in raised + updated + cleared]
    assert len(set(every_id)) == len(every_id)


def test_a_service_fault_raises_no_instance_alarms() -> None:
    alarm, raised = step(None, Health.SERVICE_DOWN_HOST_UP, 1.0, services_down=("compute",))
    assert alarm is not None and [r.notification_type for r in raised] == [ALARM_NOTIFICATION]
    assert raised[0].body["alarm"]["perceivedSeverity"] == "MAJOR"
    assert raised[0].body["alarm"]["correlatedAlarmIds"] == []
    # the host then goes down: the same alarm, now with its instances
    down, more = step(alarm, Health.HOST_UNREACHABLE_UNFENCED, 2.0)
    assert down is not None and down.alarm_id == alarm.alarm_id and len(more) == 3
    # and back to a service fault: the instance alarms are cleared, the root one updated
    back, fewer = step(down, Health.SERVICE_DOWN_HOST_UP, 3.0, services_down=("compute",))
    assert back is not None and back.instances == {}
    assert [n.notification_type for n in fewer] == [ALARM_NOTIFICATION] + [
        ALARM_CLEARED_NOTIFICATION
    ] * 2


def test_a_healthy_host_without_an_alarm_says_nothing() -> None:
    assert step(None, Health.OK, 1.0) == (None, [])


def test_the_open_alarm_round_trips_through_json() -> None:
    alarm, _ = step(None, Health.HOST_DOWN_FENCED, 5.0)
    assert alarm is not None
    assert OpenAlarm.from_dict(json.loads(json.dumps(alarm.as_dict()))) == alarm


def test_each_subscriber_gets_its_id_and_link() -> None:
    _, (first, *_) = step(None, Health.DEGRADED, 1.0)
    personal = for_subscription(first.body, "sub-1", "http://api")
    assert personal["subscriptionId"] == "sub-1"
    assert personal["_links"] == {
        "subscription": {"href": "http://api/vnffm/v1/subscriptions/sub-1"}
    }
    assert "subscriptionId" not in first.body


def test_inventory_from_json_or_yaml(tmp_path: Path) -> None:
    as_json = tmp_path / "inventory.json"
    as_json.write_text(json.dumps({"node2": ["vm-a", {"id": "vm-b", "vnfInstanceId": "vnf-1"}]}))
    as_yaml = tmp_path / "inventory.yaml"
    as_yaml.write_text("node2:\n  - vm-a\n  - {id: vm-b, vnfInstanceId: vnf-1}\n")
    assert load_inventory(as_json) == load_inventory(as_yaml) == {"node2": INSTANCES}
    bad = tmp_path / "bad.json"
    bad.write_text('{"node2": "vm-a"}')
    with pytest.raises(ValueError, match="expected a list of instances"):
        load_inventory(bad)
