"""QoS alarms from Pacemaker's utilization, on CIBs that real crm_simulate placed and failed
(examples/qos.yaml, node ctl1 lost) and real crm_mon read: with placement-strategy
balanced the batch job is left stopped (CAPACITY_EXHAUSTED, never an overloaded node);
without a strategy a survivor is overloaded (NODE_OVER_CAPACITY); both after the grace,
through the publisher's resync into its outbox, and cleared by the same id."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from hakit.ocf import cluster
from hakit.ocf.status import ClusterStatus
from hakit.resource_agents.clouds import CloudError
from hakit.resource_agents.health import placement
from hakit.resource_agents.health.capacity_alarms import CAUSES, Finding, Utilization
from hakit.resource_agents.health.constants import (
    ALARM_CLEARED_NOTIFICATION,
    LEADER_VARIABLE,
)
from hakit.resource_agents.health.outbox import NOTIFICATIONS
from hakit.resource_agents.health.placement import PlacementCheck, Usage
from hakit.resource_agents.health.publisher import Publisher, PublisherConfig
from hakit.tools.topology.load import load_text
from hakit.tools.topology.simulate import what_if
from hakit.tools.topology.validate import check

EXAMPLE = Path(__file__).parents[2] / "examples" / "qos.yaml"


def failed_over(tmp_path: Path, text: str) -> Path:
    """The CIB after ctl1's loss, placed and recovered by crm_simulate."""
    loaded = check(load_text(text, "qos.yaml"), agents=False, pacemaker=False)
    assert loaded.topology is not None, loaded.problems
    what_if(loaded.topology, fail_node="ctl1", keep=tmp_path)
    return tmp_path / "after.xml"


def read(cib: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Utilization, ClusterStatus]:
    monkeypatch.setenv("CIB_file", str(cib))
    configuration = ElementTree.parse(cib).getroot().find("configuration")
    assert configuration is not None
    return Utilization.from_configuration(configuration), ClusterStatus(cluster.status_xml())


def test_a_failover_without_room_leaves_the_batch_job_stopped_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    utilization, status = read(failed_over(tmp_path, EXAMPLE.read_text()), monkeypatch)
    assert utilization.findings(status) == [
        Finding(
            "CAPACITY_EXHAUSTED",
            "batch",
            "batch needs cpu 6, memory 2048; no online node has it left",
        )
    ]


def test_without_a_strategy_a_survivor_is_over_capacity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = EXAMPLE.read_text().replace("placement-strategy: balanced", "")
    utilization, status = read(failed_over(tmp_path, text), monkeypatch)
    found = utilization.findings(status)
    assert found and {f.kind for f in found} == {"NODE_OVER_CAPACITY"}, found
    assert all(f.subject in ("ctl2", "ctl3") and "cpu" in f.detail for f in found)


def test_no_utilization_means_no_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = """\
cluster: {name: q, properties: {stonith-enabled: false, placement-strategy: balanced}}
nodes: [{name: ctl1}, {name: ctl2}]
resources: [{name: r, agent: "ocf:heartbeat:Dummy"}]
"""
    utilization, status = read(failed_over(tmp_path, text), monkeypatch)
    assert utilization.needs == {} and utilization.findings(status) == []


def test_the_publisher_raises_it_after_the_grace_and_clears_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cib = failed_over(tmp_path, EXAMPLE.read_text())
    monkeypatch.setenv("CIB_file", str(cib))
    monkeypatch.setenv(LEADER_VARIABLE, "1")
    publisher = Publisher(
        PublisherConfig(outbox=str(tmp_path / "outbox.db"), subscriptions=str(tmp_path / "s.db"))
    )
    publisher.cycle(resync=True)  # first seen: within the grace
    assert notifications(publisher) == []
    publisher.capacity.grace = 0.0
    publisher.cycle(resync=True)
    publisher.cycle(resync=True)  # unchanged: nothing new
    [raised] = notifications(publisher)
    alarm = raised["alarm"]
    assert alarm["faultType"] == "CAPACITY_EXHAUSTED" and alarm["managedObjectId"] == "batch"
    assert alarm["eventType"] == "QOS_ALARM" and alarm["perceivedSeverity"] == "MAJOR"
    assert alarm["rootCauseFaultyResource"]["faultyResource"]["vimLevelResourceType"] == "resource"
    # ctl1 back: everything placed again, the alarm cleared by its id
    placed = tmp_path / "placed.xml"
    monkeypatch.setenv("CIB_file", str(placed))
    publisher.cycle(resync=True)
    cleared = notifications(publisher)[-1]
    assert cleared["notificationType"] == ALARM_CLEARED_NOTIFICATION
    assert cleared["alarmId"] == alarm["id"]


def notifications(publisher: Publisher) -> list[dict[str, Any]]:
    records = publisher.outbox.read(NOTIFICATIONS, 0, limit=-1)
    found, ours = [json.loads(r.body)["notification"] for r in records], set()
    for notification in found:  # the host alarms (ctl1 lost) are not this test's
        if notification.get("alarm", {}).get("faultType") in CAUSES:
            ours.add(notification["alarm"]["id"])
    return [n for n in found if n.get("alarm", {}).get("id", n.get("alarmId")) in ours]


# --- from placement: the reading and its cadence (the real placement: test_nova_force_down)


def test_placement_usage_beyond_capacity_is_one_finding_per_host_and_kind() -> None:
    usages = [
        Usage("c1", "VCPU", 5, 4),
        Usage("c1", "MEMORY_MB", 9000, 8192),
        Usage("c1", "PCPU", 2, 2),  # full, not beyond
        Usage("c2", "PCPU", 3, 2),
        Usage("c3", "VCPU", 4, 4),
    ]
    assert placement.findings(usages) == [
        Finding(
            "COMPUTE_OVER_COMMITTED", "c1", "c1 uses VCPU 5/4, MEMORY_MB 9000/8192 (placement)"
        ),
        Finding("GUARANTEED_CPU_SHARED", "c2", "c2 uses PCPU 3/2 (placement)"),
    ]
    assert set(CAUSES) >= {"COMPUTE_OVER_COMMITTED", "GUARANTEED_CPU_SHARED"}


def test_placement_is_read_once_per_interval_and_a_failed_reading_keeps_the_last() -> None:
    now, logged = [0.0], list[str]()
    answers: list[list[Usage] | Exception] = [[Usage("c1", "VCPU", 5, 4)]]

    def read() -> list[Usage]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    check = PlacementCheck(read, interval=30.0, clock=lambda: now[0], background=False)
    (over,) = check(logged.append)
    now[0] = 29.0
    assert check(logged.append) == [over] and answers == []  # not read again yet
    answers += [CloudError("placement: connection refused", kind="api"), KeyError("usages")]
    for now[0] in (30.0, 60.0):
        assert check(logged.append) == [over]
    assert logged == ["placement not checked: placement: connection refused"]  # once
    answers.append([Usage("c1", "VCPU", 4, 4)])
    now[0] = 90.0
    assert check(logged.append) == []


def test_a_hung_placement_never_holds_the_publishers_cycle() -> None:
    release, readings = threading.Event(), [0]

    def read() -> list[Usage]:
        readings[0] += 1
        release.wait(10)
        return [Usage("c1", "VCPU", 5, 4)]

    check = PlacementCheck(read, interval=0.0)
    began = time.monotonic()
    assert check(print) == [] and check(print) == []  # placement hangs: nothing waits
    assert time.monotonic() - began < 1 and readings == [1]  # one reading at a time
    release.set()
    assert check.reading is not None
    check.reading.join(10)
    assert [f.kind for f in check(print)] == ["COMPUTE_OVER_COMMITTED"]
