"""The health pipeline on the real 3-node lab: Pacemaker's alerts into each node's outbox,
the ocf:hakit:publisher clone, and a real signed HTTP receiver in the infra namespace
(outside the cluster, so no node fault touches it). Faults are real: a SIGKILLed
service, a power cut with real fencing, a partition, a SIGKILLed publisher."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hakit.lab import demo
from hakit.lab.health import HEALTH, LabReceiver, dc, settled
from hakit.lab.health import host_alarms as alarms_of
from hakit.lab.lab import Lab, pids_in_netns
from hakit.lab.routers import RouterLab
from tests.lab.test_lab import online, wait

CLONES = ("health-publisher", "worker")
HOST_DOWN = {"HOST_UNREACHABLE_UNFENCED", "HOST_DOWN_FENCED", "HOST_LEFT_CLUSTER"}


def stored_notifications(lab: Lab, node: str) -> list[str]:
    """Ids of the notifications in `node`'s outbox, in stream order."""
    path = lab.health_dir(node) / "outbox.db"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute(
            "SELECT event_id FROM records WHERE stream = 'notifications' " "ORDER BY seq"
        ).fetchall()
    except sqlite3.OperationalError:  # no table yet
        return []
    finally:
        db.close()
    return [row[0] for row in rows]


def stored_events(lab: Lab, node: str, about: str, event_id: str) -> list[str]:
    """Bodies of the events about node `about` in `node`'s outbox whose id is LIKE `event_id`."""
    db = sqlite3.connect(f"file:{lab.health_dir(node) / 'outbox.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT body FROM records WHERE stream = 'events' AND node = ? AND event_id LIKE ?",
            (about, event_id),
        ).fetchall()
    finally:
        db.close()
    return [row[0] for row in rows]


def not_dc(lab: Lab) -> str:
    leader = dc(lab)
    return next(n for n in reversed(lab.nodes) if n != leader)


def publisher_pids(lab: Lab, node: str) -> list[int]:
    found = []
    for pid in pids_in_netns(lab.netns(node)):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if HEALTH.encode() in argv and b"publish" in argv:
            found.append(pid)
    return found


def in_order_and_complete(receiver: LabReceiver, lab: Lab, leader: str) -> None:
    """Every notification the leader stored since this subscription's first delivery
    arrived, signed, each the first time in stream order."""
    mine = receiver.subscriptions[leader]

    def got() -> list[str]:
        return [
            e["key"]
            for e in receiver.first_acceptances()
            if e["notification"]["subscriptionId"] == mine
        ]

    def complete() -> bool:
        stored, keys = stored_notifications(lab, leader), got()
        return bool(keys) and set(stored[stored.index(keys[0]) :]) <= set(keys)

    wait(complete, 60, "every stored notification delivered")
    stored, keys = stored_notifications(lab, leader), got()
    start = stored.index(keys[0])
    assert keys == stored[start : start + len(keys)], "order broken"
    assert not receiver.entries("refused"), "a delivery failed its signature check"


@pytest.fixture(scope="module")
def receiver(lab: Lab) -> Iterator[LabReceiver]:
    demo.configure(lab)
    wait(lambda: settled(lab, CLONES), 120, "publisher and worker clones on every node")
    the_receiver = LabReceiver(lab)
    the_receiver.start()
    try:
        the_receiver.subscribe()
        time.sleep(6)  # publishers read subscriptions on their next resync (5 s)
        yield the_receiver
    finally:
        the_receiver.stop()
        lab.restore()
        lab.wait_until_online(timeout=180)
        the_receiver.unsubscribe()


def test_killed_service_is_service_down_with_no_host_alarm(lab: Lab, receiver: LabReceiver) -> None:
    target, before = not_dc(lab), len(receiver.entries())
    assert lab.kill(target, "sleep"), "the worker clone's process"
    wait(
        lambda: ("AlarmNotification", "SERVICE_DOWN_HOST_UP")
        in alarms_of(receiver.entries()[before:], target),
        30,
        "a service-down alarm",
    )
    wait(
        lambda: alarms_of(receiver.entries()[before:], target)[-1][0] == "AlarmClearedNotification",
        60,
        "the alarm cleared after recovery",
    )
    new = receiver.entries()[before:]
    assert not any(kind in HOST_DOWN for _, kind in alarms_of(new, target)), "a host alarm"
    raised = next(e["notification"]["alarm"] for e in new if "alarm" in e["notification"])
    assert (
        raised["eventType"] == "PROCESSING_ERROR_ALARM" and raised["perceivedSeverity"] == "MAJOR"
    )
    assert any("worker" in detail for detail in raised["faultDetails"]), raised["faultDetails"]
    in_order_and_complete(receiver, lab, dc(lab))


def test_power_cut_alarms_survive_a_receiver_outage(lab: Lab, receiver: LabReceiver) -> None:
    leader, target = dc(lab), not_dc(lab)
    before = len(receiver.entries())
    receiver.stop()
    stopped = time.time()
    lab.cut(target)
    wait(lambda: online(lab) == set(lab.nodes), 120, f"{target} fenced, rebooted and back")
    time.sleep(max(0.0, stopped + 60 - time.time()))
    assert len(receiver.entries()) == before
    receiver.start()
    back = time.time()
    wait(
        lambda: (a := alarms_of(receiver.entries()[before:], target)) != []
        and a[-1][0] == "AlarmClearedNotification",
        90,
        "every alarm after the outage",
    )
    new = receiver.entries()[before:]
    assert all(e["received"] >= back for e in new)
    sequence = alarms_of(new, target)
    assert sequence[:2] == [
        ("AlarmNotification", "HOST_UNREACHABLE_UNFENCED"),
        ("AlarmNotification", "HOST_DOWN_FENCED"),
    ], sequence
    # a member again, not yet online in Pacemaker: joining, then cleared
    assert ("AlarmNotification", "DEGRADED") in sequence[2:], sequence
    seen = stored_events(lab, leader, target, "corosync:%")  # the membership watcher's
    assert {json.loads(body)["desc"] for body in seen} == {"lost", "member"}, seen
    fenced = next(
        e["notification"]["alarm"]
        for e in new
        if e["notification"].get("alarm", {}).get("faultType") == "HOST_DOWN_FENCED"
    )
    assert fenced["perceivedSeverity"] == "CRITICAL" and fenced["isRootCause"]
    assert any(d.startswith("fenced: ") for d in fenced["faultDetails"]), fenced["faultDetails"]
    assert dc(lab) == leader
    in_order_and_complete(receiver, lab, leader)


def test_publisher_killed_mid_delivery_loses_nothing(lab: Lab, receiver: LabReceiver) -> None:
    leader, target = dc(lab), not_dc(lab)
    receiver.start(delay=3.0)  # every answer held 3 s: a delivery is in flight that long
    try:
        before, arrived = len(receiver.entries()), len(receiver.entries("arrived"))
        lab.kill(target, "sleep")
        wait(lambda: len(receiver.entries("arrived")) > arrived, 30, "a delivery in flight")
        victims = publisher_pids(lab, leader)
        assert victims
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        wait(
            lambda: any(e["duplicate"] for e in receiver.entries()[before:]),
            90,
            "the restarted publisher sending the unacknowledged notification again",
        )
        wait(
            lambda: alarms_of(receiver.entries()[before:], target)[-1][0]
            == "AlarmClearedNotification",
            90,
            "the alarm cleared",
        )
    finally:
        receiver.start()
    in_order_and_complete(receiver, lab, leader)


def test_isolated_minority_publishes_nothing(lab: Lab, receiver: LabReceiver) -> None:
    leader, target = dc(lab), not_dc(lab)
    stored_before = stored_notifications(lab, target)
    before = len(receiver.entries())
    lab.isolate(target)
    try:
        wait(
            lambda: ("AlarmNotification", "HOST_DOWN_FENCED")
            in alarms_of(receiver.entries()[before:], target),
            60,
            "the majority's alarm",
        )
    finally:
        lab.heal()
    wait(lambda: settled(lab, CLONES), 120, f"{target} back")
    assert stored_notifications(lab, target) == stored_before, "the minority derived alarms"
    senders = {e["notification"]["subscriptionId"] for e in receiver.entries()[before:]}
    assert senders == {receiver.subscriptions[leader]}


def set_publisher_parameters(lab: Lab, **values: str) -> None:
    """Set parameters of the publisher clone (none: take them all away again, as the
    demo topology has none); its instances restart."""
    for name, value in values.items():
        change = ["--set-parameter", name, "--parameter-value", value]
        lab.run("node1", ["crm_resource", "--resource", "health-publisher", *change])
    if not values:
        where = "//primitive[@id='health-publisher']/instance_attributes"
        lab.run("node1", ["cibadmin", "--delete", "--xpath", where])
    time.sleep(2)  # the restarts begin
    wait(lambda: settled(lab, CLONES), 120, "publisher clone restarted on every node")


def router_alarms(entries: list[dict[str, object]], router: str) -> list[tuple[str, str]]:
    """(notification type, fault type or cleared alarm id) about `router`, in order."""
    found = []
    for entry in entries:
        notification: Any = entry["notification"]
        alarm = notification.get("alarm") or {}
        if alarm.get("managedObjectId") == router:
            found.append((notification["notificationType"], alarm["faultType"]))
        elif notification["notificationType"] == "AlarmClearedNotification":
            found.append(("AlarmClearedNotification", notification["alarmId"]))
    return found


def test_a_router_split_brain_reaches_the_subscriber_and_clears(
    lab: Lab, receiver: LabReceiver
) -> None:
    """A real keepalived per node in a qrouter- namespace of each cluster node (neutron's
    layout, not neutron): every node's publisher reports its routers through a private
    node attribute; a dual master is a ROUTER_SPLIT_BRAIN alarm at the subscriber within
    10 s, cleared within 10 s of the fix."""
    set_publisher_parameters(lab, router_watch="true", router_advert_interval="1")
    routers = RouterLab(routers=1, on_hosts={n: lab.init_pid(n) or 0 for n in lab.nodes})
    try:
        routers.up()
        router = routers.router_ids()[0]
        wait(lambda: len(routers.active_hosts(router)) == 1, 30, "one master")
        time.sleep(10)  # the standbys seen, every grace passed: the steady state
        reported = json.loads(lab.run("node1", [HEALTH, "routers", "--all", "--json"]).stdout)
        states = {h: r["routers"].get(router) for h, r in reported["hosts"].items()}
        assert sorted(states) == sorted(lab.nodes), reported  # every node's, on node1
        assert sorted(states.values()) == ["active", "standby", "standby"], reported
        before = len(receiver.entries())
        (active,) = routers.active_hosts(router)
        standby = next(h for h in range(1, routers.hosts + 1) if h != active)
        routers.cut(router, standby)
        try:
            wait(lambda: len(routers.active_hosts(router)) == 2, 15, "two masters")
            dual = time.monotonic()
            wait(
                lambda: ("AlarmNotification", "ROUTER_SPLIT_BRAIN")
                in router_alarms(receiver.entries()[before:], router),
                15,
                "the split-brain alarm",
            )
            raised = time.monotonic() - dual
        finally:
            routers.cut(router, standby, cut=False)
        fixed = time.monotonic()
        alarm: Any = next(
            e["notification"]["alarm"]
            for e in receiver.entries()[before:]
            if e["notification"].get("alarm", {}).get("managedObjectId") == router
        )
        wait(
            lambda: ("AlarmClearedNotification", alarm["id"])
            in router_alarms(receiver.entries()[before:], router),
            15,
            "the alarm cleared",
        )
        cleared = time.monotonic() - fixed
        print(f"\nsplit-brain alarm {raised:.1f}s after the dual master; cleared {cleared:.1f}s")
        assert raised <= 10 and cleared <= 10
        assert alarm["perceivedSeverity"] == "CRITICAL" and alarm["isRootCause"]
        assert alarm["rootCauseFaultyResource"]["faultyResource"]["resourceId"] == router
        kinds = {k for _, k in router_alarms(receiver.entries()[before:], router)}
        assert kinds <= {"ROUTER_SPLIT_BRAIN", alarm["id"]}, kinds  # nothing else raised
        for node in lab.nodes:  # private: attrd only, never the CIB
            assert "hakit-routers" not in lab.run(node, ["cibadmin", "--query"]).stdout
    finally:
        routers.down()
        set_publisher_parameters(lab)
