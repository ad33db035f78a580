"""The publisher against real HTTP receivers on 127.0.0.1: signed, in order, at least once
with a stable idempotency id, nothing lost while a receiver is down or the publisher is
killed; and only the leader publishes."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakit.resource_agents.health.constants import (
    ALARM_CLEARED_NOTIFICATION,
    ALARM_NOTIFICATION,
    LEADER_VARIABLE,
)
from hakit.resource_agents.health.model import Health
from hakit.resource_agents.health.outbox import NOTIFICATIONS, Outbox
from hakit.resource_agents.health.publisher import (
    DERIVER,
    Publisher,
    PublisherConfig,
    live_view,
)
from hakit.resource_agents.health.sources import ClusterView
from hakit.resource_agents.health.subscriptions import (
    Filter,
    SubscriptionRequest,
    SubscriptionStore,
    subscribe,
)
from tests.health.conftest import CLI, AlertRunner, Cib, Receipt, Receiver, wait_for


@pytest.fixture
def config(
    tmp_path: Path, outbox_path: Path, monkeypatch: pytest.MonkeyPatch, cib: Cib
) -> PublisherConfig:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"node2": ["vm-a", {"id": "vm-b", "vnfInstanceId": "vnf-1"}]}))
    monkeypatch.setenv(LEADER_VARIABLE, "1")
    monkeypatch.setenv("CIB_file", str(cib.placed))
    return PublisherConfig(
        outbox=str(outbox_path),
        subscriptions=str(tmp_path / "subs.db"),
        inventory=str(inventory),
        poll_interval=0.02,
        resync_interval=0.3,
        retry_initial=0.05,
        retry_max=0.4,
        http_timeout=2.0,
    )


def subscribe_receiver(
    config: PublisherConfig, receiver: Receiver, wanted: Filter | None = None
) -> str:
    with SubscriptionStore(config.subscriptions) as store:
        subscription, created = subscribe(
            store, SubscriptionRequest(receiver.uri, wanted or Filter(), receiver.secret)
        )
    assert created
    return subscription.id


@pytest.fixture
def running(config: PublisherConfig) -> Iterator[Publisher]:
    publisher = Publisher(config)
    thread = threading.Thread(target=publisher.run)
    thread.start()
    try:
        yield publisher
    finally:
        publisher.stop()
        thread.join(timeout=10)


def stored(config: PublisherConfig) -> list[str]:
    with Outbox(config.outbox) as box:
        return [r.event_id for r in box.read(NOTIFICATIONS, 0, limit=-1)]


def collapsed(receipts: list[Receipt]) -> list[str]:
    """Idempotency keys in order of arrival, a repeat of the one before dropped."""
    keys: list[str] = []
    for receipt in receipts:
        if not keys or keys[-1] != receipt.idempotency_key:
            keys.append(receipt.idempotency_key)
    return keys


def assert_at_least_once_in_order(receiver: Receiver, expected: list[str]) -> None:
    assert all(r.signed for r in receiver.receipts)
    assert collapsed(receiver.receipts) == expected  # strict order, retries only in place
    first_body: dict[str, bytes] = {}
    for receipt in receiver.receipts:  # a duplicate is the same notification, byte for byte
        assert first_body.setdefault(receipt.idempotency_key, receipt.raw) == receipt.raw
        assert receipt.body["id"] == receipt.idempotency_key


def test_an_outage_loses_nothing_and_order_holds(
    config: PublisherConfig,
    receiver: Receiver,
    alerts: AlertRunner,
    cib: Cib,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.fail_once = lambda body: body.get("alarm", {}).get("isRootCause") is True
    critical_only = Receiver(secret=secrets.token_urlsafe(24))
    critical_only.start()
    try:
        subscribe_receiver(config, receiver)
        subscribe_receiver(config, critical_only, Filter(perceived_severities=("CRITICAL",)))
        publisher = Publisher(config)
        thread = threading.Thread(target=publisher.run)
        thread.start()
        try:
            monkeypatch.setenv(
                "CIB_file",
                str(cib.simulate(cib.placed, "pub-lost", "--node-fail", "node2", execute=False)),
            )
            alerts.node("node2", "lost")
            wait_for(lambda: len(set(receiver.keys())) == 3, what="the first alarms")
            receiver.stop()  # the receiver is down while node2 is fenced and comes back
            monkeypatch.setenv(
                "CIB_file", str(cib.simulate(cib.placed, "pub-fenced", "--node-fail", "node2"))
            )
            alerts.fencing("node2", executioner="node3")
            wait_for(lambda: len(stored(config)) == 6, what="the fenced alarms")
            alerts.node("node2", "member")  # a member again, not yet online in Pacemaker
            wait_for(lambda: len(stored(config)) == 9, what="the joining alarm")
            monkeypatch.setenv("CIB_file", str(cib.placed))
            wait_for(lambda: len(stored(config)) == 10, what="the clear")
            threading.Event().wait(1.0)  # several failed attempts, with backoff
            receiver.start()  # same port
            wait_for(lambda: len(set(receiver.keys())) == 10, what="everything after the outage")
            wait_for(lambda: len(set(critical_only.keys())) == 5, what="the CRITICAL subscriber")
        finally:
            publisher.stop()
            thread.join(timeout=10)
    finally:
        critical_only.stop()
    expected = stored(config)
    assert_at_least_once_in_order(receiver, expected)
    assert len(receiver.receipts) > 10  # the lost answers were sent again
    bodies = {r.idempotency_key: r.body for r in receiver.receipts}
    kinds = [bodies[k]["notificationType"] for k in expected]
    assert kinds == [ALARM_NOTIFICATION] * 7 + [ALARM_CLEARED_NOTIFICATION] * 3
    raised = [bodies[k]["alarm"] for k in expected[:3]]
    assert [a["perceivedSeverity"] for a in raised] == ["MAJOR"] * 3
    assert [bodies[k]["alarm"]["faultType"] for k in expected[3:6]] == ["HOST_DOWN_FENCED"] * 3
    joining = bodies[expected[6]]["alarm"]  # the host's alarm; its instances' alarms end
    assert (joining["id"], joining["faultType"]) == (raised[0]["id"], "DEGRADED")
    assert sorted(bodies[k]["alarmId"] for k in expected[7:]) == sorted(a["id"] for a in raised)
    assert {bodies[k]["subscriptionId"] for k in expected} == {
        bodies[expected[0]]["subscriptionId"]
    }
    assert_at_least_once_in_order(critical_only, expected[3:6] + expected[7:9])


def test_a_killed_publisher_loses_nothing(
    config: PublisherConfig,
    receiver: Receiver,
    alerts: AlertRunner,
    cib: Cib,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    subscribe_receiver(config, receiver)
    publisher = Publisher(config)  # derives only: no delivery threads without run()
    lost = cib.simulate(cib.placed, "kill-lost", "--node-fail", "node2", execute=False)
    fenced = cib.simulate(cib.placed, "kill-fenced", "--node-fail", "node2")
    steps = [(lost, "lost"), (fenced, "fenced"), (fenced, "member"), (cib.placed, "online")]
    for state, what in steps:
        monkeypatch.setenv("CIB_file", str(state))
        if what == "fenced":
            alerts.fencing("node2")
        elif what != "online":
            alerts.node("node2", what)
        publisher.cycle(resync=what == "online")
    publisher.outbox.close()
    expected = stored(config)
    assert len(expected) == 10
    receiver.delay = 0.15
    command = [
        sys.executable,
        "-c",
        CLI,
        "health",
        "publish",
        "--leader",
        "--outbox",
        config.outbox,
        "--subscriptions",
        config.subscriptions,
    ]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(receiver.keys()) >= 3, what="some deliveries")
    first.kill()  # SIGKILL, mid-stream
    first.wait(timeout=10)
    assert len(set(receiver.keys())) < 10
    second = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(set(receiver.keys())) == 10, what="the rest")
    second.send_signal(signal.SIGTERM)
    _, err = second.communicate(timeout=20)
    assert second.returncode == 0 and "Traceback" not in err
    assert_at_least_once_in_order(receiver, expected)


def test_only_the_leader_publishes(
    config: PublisherConfig, alerts: AlertRunner, cib: Cib, monkeypatch: pytest.MonkeyPatch
) -> None:
    publisher = Publisher(config)
    monkeypatch.setenv(LEADER_VARIABLE, "0")
    monkeypatch.setenv(
        "CIB_file",
        str(cib.simulate(cib.placed, "leader-lost", "--node-fail", "node2", execute=False)),
    )
    alerts.node("node2", "lost")
    assert publisher.cycle() == 0 and not publisher.leader.is_set()
    assert publisher.outbox.cursor(DERIVER) == 1  # the event was seen, and stays as evidence
    assert stored(config) == []
    monkeypatch.setenv(LEADER_VARIABLE, "1")
    assert publisher.cycle(resync=True) == 3 and publisher.leader.is_set()
    assert [a.health.value for a in publisher.open_alarms()] == ["HOST_UNREACHABLE_UNFENCED"]
    assert publisher.cycle(resync=True) == 0  # nothing new: no duplicate storm
    publisher.outbox.close()


def test_a_new_subscriber_starts_with_what_comes_after_it(
    config: PublisherConfig,
    receiver: Receiver,
    alerts: AlertRunner,
    cib: Cib,
    monkeypatch: pytest.MonkeyPatch,
    running: Publisher,
) -> None:
    monkeypatch.setenv(
        "CIB_file",
        str(cib.simulate(cib.placed, "late-lost", "--node-fail", "node2", execute=False)),
    )
    alerts.node("node2", "lost")
    wait_for(lambda: len(stored(config)) == 3, what="alarms before anyone subscribed")
    subscribe_receiver(config, receiver)
    monkeypatch.setenv("CIB_file", str(cib.placed))
    alerts.node("node2", "member")  # joining (the host's alarm; its instances' end), then OK
    wait_for(lambda: len(set(receiver.keys())) == 4, what="joining, then the clear")
    assert collapsed(receiver.receipts) == stored(config)[3:]
    assert os.environ[LEADER_VARIABLE] == "1"


def test_a_membership_alert_moves_the_alarm_on_before_a_fresh_look(
    config: PublisherConfig, alerts: AlertRunner, cib: Cib, monkeypatch: pytest.MonkeyPatch
) -> None:
    """crm_mon is slowest during a membership change: a "member" alert alone moves the
    joining node's alarm on from the last look, and one fresh look right after confirms
    (here it already shows node2 online, so the alarm clears)."""
    looks: list[str] = []

    def counted(box: Outbox) -> ClusterView:
        looks.append(Path(os.environ["CIB_file"]).name)  # noqa: SIM112 — Pacemaker's name
        return live_view(box)

    publisher = Publisher(config, view_source=counted)
    fenced = cib.simulate(cib.placed, "quick-fenced", "--node-fail", "node2")
    monkeypatch.setenv("CIB_file", str(fenced))
    alerts.node("node2", "lost")
    alerts.fencing("node2")
    assert publisher.cycle() == 3
    assert [a.health for a in publisher.open_alarms()] == [Health.HOST_DOWN_FENCED]
    monkeypatch.setenv("CIB_file", str(cib.placed))
    alerts.node("node2", "member", epoch=1_900_000_000)
    looks.clear()
    assert publisher.cycle() == 4  # joining: root + its instances' ends; then the clear
    assert looks == ["placed.xml"]  # the one look came after
    with Outbox(config.outbox) as box:
        records = box.read(NOTIFICATIONS, 0, limit=-1)[3:]
    bodies = [json.loads(r.body)["notification"] for r in records]
    joining = bodies[0]["alarm"]
    assert joining["faultType"] == "DEGRADED"
    assert joining["faultDetails"][0].startswith("a cluster member again since 2030-03-17")
    assert joining["eventTime"] == "2030-03-17T17:46:40.000000Z"  # the alert's time
    assert bodies[-1]["notificationType"] == ALARM_CLEARED_NOTIFICATION
    assert publisher.open_alarms() == []
    publisher.outbox.close()
