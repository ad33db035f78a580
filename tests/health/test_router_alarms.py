"""Router watch verdicts as SOL 003 alarms, through the publisher's router stage on a real
SQLite outbox: raised after the grace, changed when the hosts change, cleared with the
same id, carried on by a new leader, root-caused to a fenced host's alarm; the node
attribute's encoding; the node-side reporter's pacing. (The readings here are given;
tests/health/test_router_watch.py reads them from real keepalived.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hakit.resource_agents.health.constants import (
    ALARM_CLEARED_NOTIFICATION,
    ALARM_NOTIFICATION,
)
from hakit.resource_agents.health.model import Health, HealthReport, NodeHealth
from hakit.resource_agents.health.neutron import API_LAG, on_nodes
from hakit.resource_agents.health.outbox import NOTIFICATIONS
from hakit.resource_agents.health.publisher import Publisher, PublisherConfig
from hakit.resource_agents.health.router_alarms import (
    REFRESH,
    STALE_AFTER,
    RouterAlarms,
    RouterReporter,
    RouterStage,
    current_readings,
    decode,
    encode,
)
from hakit.resource_agents.health.routers import ACTIVE, STANDBY, graces

A, S = ACTIVE, STANDBY
HOSTS = ("net1", "net2", "net3")
T0 = 1_000_000.0


def watching(tmp_path: Path) -> PublisherConfig:
    return PublisherConfig(
        outbox=str(tmp_path / "outbox.db"),
        subscriptions=str(tmp_path / "subs.db"),
        routers=True,
        router_advert_interval=1.0,
    )


@pytest.fixture
def publisher(tmp_path: Path) -> Publisher:
    return Publisher(watching(tmp_path))


def stage(publisher: Publisher) -> RouterStage:
    assert publisher.routers is not None
    return publisher.routers


def report(**health: Health) -> HealthReport:
    nodes = [NodeHealth(h, health.get(h, Health.OK)) for h in HOSTS]
    return HealthReport(T0, "net1", True, nodes)


def notifications(publisher: Publisher) -> list[dict[str, Any]]:
    records = publisher.outbox.read(NOTIFICATIONS, 0, limit=-1)
    return [json.loads(r.body)["notification"] for r in records]


def test_a_split_brain_is_raised_after_its_grace_changed_then_cleared(
    publisher: Publisher,
) -> None:
    routers = stage(publisher)
    split = {"net1": {"r1": A}, "net2": {"r1": A}, "net3": {"r1": S}}
    assert routers.derive(split, report(), T0) == 0  # first sight
    assert routers.derive(split, report(), T0 + 1.5) == 0  # within advert + 1 s
    assert routers.derive(split, report(), T0 + 2.1) == 1
    assert routers.derive(split, report(), T0 + 3.0) == 0  # unchanged: nothing new
    [raised] = notifications(publisher)
    alarm = raised["alarm"]
    assert raised["notificationType"] == ALARM_NOTIFICATION
    assert alarm["managedObjectId"] == "r1"
    assert alarm["faultType"] == "ROUTER_SPLIT_BRAIN"
    assert alarm["perceivedSeverity"] == "CRITICAL"
    assert alarm["isRootCause"] is True and alarm["correlatedAlarmIds"] == []
    assert alarm["rootCauseFaultyResource"]["faultyResource"]["vimLevelResourceType"] == "router"
    assert alarm["rootCauseFaultyResource"]["faultyResourceType"] == "NETWORK"
    assert "active: net1, net2" in alarm["faultDetails"]
    three = {"net1": {"r1": A}, "net2": {"r1": A}, "net3": {"r1": A}}
    assert routers.derive(three, report(), T0 + 4.0) == 1  # a third master: changed
    changed = notifications(publisher)[-1]["alarm"]
    assert changed["id"] == alarm["id"]
    assert "active: net1, net2, net3" in changed["faultDetails"]
    assert [a.kind for a in routers.open_alarms()] == ["ROUTER_SPLIT_BRAIN"]
    fixed = {"net1": {"r1": A}, "net2": {"r1": S}, "net3": {"r1": S}}
    assert routers.derive(fixed, report(), T0 + 5.0) == 1
    cleared = notifications(publisher)[-1]
    assert cleared["notificationType"] == ALARM_CLEARED_NOTIFICATION
    assert cleared["alarmId"] == alarm["id"]
    assert routers.open_alarms() == []


def test_a_failover_within_the_grace_raises_nothing(publisher: Publisher) -> None:
    routers = stage(publisher)
    states = [
        {"net1": {"r1": A}, "net2": {"r1": S}},
        {"net1": {"r1": S}, "net2": {"r1": S}},  # the handover: nobody for 4 s
        {"net1": {"r1": S}, "net2": {"r1": A}},
    ]
    for second, reading in zip((0.0, 1.0, 5.0), states, strict=True):
        assert routers.derive(reading, report(), T0 + second) == 0
    assert routers.derive(states[-1], report(), T0 + 60) == 0
    assert notifications(publisher) == []


def test_a_new_leader_carries_the_open_alarm_on_and_clears_it_by_its_id(tmp_path: Path) -> None:
    config = watching(tmp_path)
    first = Publisher(config)
    none = {"net1": {"r1": S}, "net2": {"r1": S}}
    stage(first).derive(none, report(), T0)
    assert stage(first).derive(none, report(), T0 + 10) == 1  # 5 adverts + 4 s
    [raised] = notifications(first)
    first.outbox.close()
    second = Publisher(config)  # the DC moved: a new process on the same (shared) store
    assert [a.kind for a in stage(second).open_alarms()] == ["ROUTER_NO_ACTIVE"]
    assert stage(second).derive(none, report(), T0 + 10.5) == 0  # still so: kept open
    assert [a.alarm_id for a in stage(second).open_alarms()] == [raised["alarm"]["id"]]
    assert stage(second).derive({"net1": {"r1": A}, "net2": {"r1": S}}, report(), T0 + 11) == 1
    cleared = notifications(second)[-1]
    assert cleared["notificationType"] == ALARM_CLEARED_NOTIFICATION
    assert cleared["alarmId"] == raised["alarm"]["id"]


def test_a_fenced_host_is_the_root_cause_of_its_routers_alarms(publisher: Publisher) -> None:
    """net3 held r1 and is fenced: its host alarm is the root; r1's reduced redundancy
    (net3 still meant to host it) correlates to it instead of being a root itself."""
    routers = stage(publisher)
    host_alarm = {"host": "net3", "alarm_id": "11111111-2222-3333-4444-555555555555"}
    publisher.outbox.db.execute(
        "INSERT INTO alarms (host, state) VALUES (?, ?)", ("net3", json.dumps(host_alarm))
    )
    before = {"net1": {"r1": S}, "net2": {"r1": S}, "net3": {"r1": A}}
    routers.derive(before, report(), T0)
    fenced = report(net3=Health.HOST_DOWN_FENCED)
    after = {"net1": {"r1": S}, "net2": {"r1": A}}  # net2 took over
    routers.derive(after, fenced, T0 + 4)
    assert routers.derive(after, fenced, T0 + 13) == 1  # 5 adverts + 4 s after the loss
    [raised] = notifications(publisher)
    alarm = raised["alarm"]
    assert alarm["faultType"] == "ROUTER_REDUCED_REDUNDANCY"
    assert alarm["isRootCause"] is False
    assert alarm["correlatedAlarmIds"] == [host_alarm["alarm_id"]]
    assert "root cause: host net3 fenced" in alarm["faultDetails"]
    assert raised["alarm"]["perceivedSeverity"] == "MAJOR"
    back = {"net1": {"r1": S}, "net2": {"r1": A}, "net3": {"r1": S}}
    assert routers.derive(back, report(), T0 + 30) == 1
    assert notifications(publisher)[-1]["notificationType"] == ALARM_CLEARED_NOTIFICATION


def test_a_router_removed_from_a_host_that_is_read_is_not_missed(publisher: Publisher) -> None:
    """neutron moved r1 off net3 (net3 still reports, without it): no reduced redundancy."""
    routers = stage(publisher)
    routers.derive({"net1": {"r1": A}, "net2": {"r1": S}, "net3": {"r1": S}}, report(), T0)
    moved = {"net1": {"r1": A}, "net2": {"r1": S}, "net3": {}}
    routers.derive(moved, report(), T0 + 1)
    assert routers.derive(moved, report(), T0 + 30) == 0
    assert notifications(publisher) == []


def test_readings_from_down_hosts_stale_ones_and_junk_are_left_out() -> None:
    values = {
        "net1": encode({"r1": A}, T0),
        "net2": encode({"r1": S}, T0 - STALE_AFTER - 1),  # its publisher stopped
        "net3": encode({"r1": A}, T0),  # fenced: attrd may still hold its last value
        "net4": "garbage",
    }
    health = HealthReport(
        T0,
        "net1",
        True,
        [NodeHealth("net3", Health.HOST_DOWN_FENCED), NodeHealth("net4", Health.OK)],
    )
    assert current_readings(values, health, T0) == {"net1": {"r1": A}}


@given(
    st.dictionaries(
        st.from_regex(r"[0-9a-f-]{1,40}", fullmatch=True), st.sampled_from([A, S]), max_size=50
    ),
    st.integers(min_value=0, max_value=2**40),
)
def test_an_encoded_reading_decodes_to_itself(states: dict[str, str], taken: int) -> None:
    assert decode(encode(states, taken)) == (taken, states)


@given(st.text(max_size=200))
def test_any_attribute_value_decodes_or_is_refused(value: str) -> None:
    decoded = decode(value)
    assert decoded is None or set(decoded[1].values()) <= {A, S}


def test_the_reporter_sends_changes_at_once_and_the_rest_every_refresh() -> None:
    reading = {"r1": A}
    sent: list[str] = []
    logged: list[str] = []
    reporter = RouterReporter(lambda: dict(reading), sent.append, 0.5, logged.append)
    reporter.tick(0.0)
    reporter.tick(0.2)  # before the interval: not even read
    reporter.tick(0.6)  # unchanged
    assert len(sent) == 1 and decode(sent[0]) is not None
    reading["r1"] = S
    reporter.tick(1.2)
    assert len(sent) == 2 and decode(sent[1])[1] == {"r1": S}  # type: ignore[index]
    reporter.tick(1.2 + REFRESH)
    assert len(sent) == 3  # unchanged, sent again so that it is not stale

    def broken() -> None:
        raise RuntimeError("attrd is away")

    reporter.send = lambda _: broken()
    reading["r1"] = A
    reporter.tick(10.0)
    assert logged and "not reported" in logged[-1]


# --- neutron's view (its ha_state per agent host, as `neutron.ha_states` reads it) ------


def with_neutron(tmp_path: Path, view: dict[str, dict[str, str]]) -> RouterStage:
    """The router stage of a publisher whose neutron reading is `view` (changed in place)."""
    publisher = Publisher(watching(tmp_path))
    routers = stage(publisher)
    routers.alarms = RouterAlarms(1.0, neutron=lambda: view)
    return routers


def test_neutron_disagreeing_is_an_alarm_only_past_its_lag(tmp_path: Path) -> None:
    """The data plane holds r1 on net2; neutron (its agents named by FQDN) still says
    net1: a planned failover that neutron has not heard of yet raises nothing within
    the failover grace plus API_LAG (its agents' report and the reading's age); past it,
    one ROUTER_API_MISMATCH. neutron catching up clears it."""
    view = {"r1": {"net1.example.com": A, "net2.example.com": S, "elsewhere": A}}
    routers = with_neutron(tmp_path, view)
    plane = {"net1": {"r1": S}, "net2": {"r1": A}, "net3": {}}
    grace = graces(1.0, API_LAG)["ROUTER_API_MISMATCH"]
    assert routers.derive(plane, report(), T0) == 0
    assert routers.derive(plane, report(), T0 + grace - 0.5) == 0
    assert routers.derive(plane, report(), T0 + grace) == 1
    [raised] = notifications_of(routers)
    alarm = raised["alarm"]
    assert (alarm["faultType"], alarm["managedObjectId"]) == ("ROUTER_API_MISMATCH", "r1")
    assert "router r1: neutron says active on net1, the data plane on net2" in alarm["faultDetails"]
    view["r1"] = {"net1.example.com": S, "net2.example.com": A}
    assert routers.derive(plane, report(), T0 + grace + 1) == 1
    cleared = notifications_of(routers)[-1]
    assert (cleared["notificationType"], cleared["alarmId"]) == (
        ALARM_CLEARED_NOTIFICATION,
        alarm["id"],
    )


def test_neutron_names_the_hosts_a_router_should_be_on(tmp_path: Path) -> None:
    """neutron schedules r1 to net1, net2 and net3; net3 shows no namespace for it: its
    redundancy is reduced (neutron's host counted as missing), not silently fine. Only
    neutron's view says so, and it may be API_LAG old (a router just moved off net3):
    the alarm waits that much longer than the data plane's own."""
    view = {"r1": {"net1": A, "net2": S, "net3": S}}
    routers = with_neutron(tmp_path, view)
    plane: dict[str, dict[str, str]] = {"net1": {"r1": A}, "net2": {"r1": S}, "net3": {}}
    grace = graces(1.0)["ROUTER_REDUCED_REDUNDANCY"] + API_LAG  # neutron's view may be late
    routers.derive(plane, report(), T0)
    assert routers.derive(plane, report(), T0 + grace - 0.5) == 0
    assert routers.derive(plane, report(), T0 + grace) == 1
    (alarm,) = [n["alarm"] for n in notifications_of(routers)]
    assert alarm["faultType"] == "ROUTER_REDUCED_REDUNDANCY"
    assert "router r1: 1 standby of 2 (missing: net3)" in alarm["faultDetails"]


def test_routers_only_neutron_knows(tmp_path: Path) -> None:
    """r2 neutron calls active on net1, and no host holds: an outage (ROUTER_NO_ACTIVE,
    after the failover grace and API_LAG: a router just deleted may linger in the view).
    r3 on net2 and r4 on hosts outside the cluster, neither active for neutron (being set
    up) or not ours: nothing. A reading that failed (no opinion, {}) raises nothing."""
    view = {
        "r2": {"net1": A, "net2": S},
        "r3": {"net2": S, "net3": S},
        "r4": {"compute7": A},
    }
    routers = with_neutron(tmp_path, view)
    plane: dict[str, dict[str, str]] = {"net1": {}, "net2": {}, "net3": {}}
    grace = graces(1.0, API_LAG)["ROUTER_API_MISMATCH"]
    for at in (T0, T0 + grace):
        routers.derive(plane, report(), at)
    alarms = {
        (n["alarm"]["managedObjectId"], n["alarm"]["faultType"]) for n in notifications_of(routers)
    }
    assert alarms == {("r2", "ROUTER_NO_ACTIVE")}
    view.clear()
    routers.derive(plane, report(), T0 + grace + 1)
    assert notifications_of(routers)[-1]["notificationType"] == ALARM_CLEARED_NOTIFICATION


def test_on_nodes_keeps_the_clusters_hosts_only() -> None:
    nodes = {"net1", "net2"}
    states = {
        "r1": {"net1.dc.example": A, "net2": S, "net9": S},
        "r2": {"other": A},
        "r3": {"net1": S},
        "r4": {"net2": S},
    }
    assert on_nodes({"r5": {"net1": A}}, {"net1.dc.example"}, seen=set()) == {
        "r5": {"net1.dc.example": A}
    }
    assert on_nodes(states, nodes, seen={"r3"}) == {"r1": {"net1": A, "net2": S}, "r3": {"net1": S}}


def notifications_of(routers: RouterStage) -> list[dict[str, Any]]:
    records = routers.outbox.read(NOTIFICATIONS, 0, limit=-1)
    return [json.loads(r.body)["notification"] for r in records]
