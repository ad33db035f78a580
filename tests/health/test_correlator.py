"""VNF error reports end to end: POSTed to the publisher's API on 127.0.0.1, resolved
(the inventory places servers: no cloud here; tests/openstack resolves through real
nova), correlated by the rules, delivered as SOL 003 alarms to a real HTTP subscriber;
fused with Pacemaker's evidence (crm_mon of CIB files, the installed alert agent's
fencing events); nothing lost when the publisher is SIGKILLed mid-stream."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hakit.resource_agents.health.api import ApiServer
from hakit.resource_agents.health.constants import ALARM_CLEARED_NOTIFICATION, LEADER_VARIABLE
from hakit.resource_agents.health.correlation import parse_rules
from hakit.resource_agents.health.model import rfc3339
from hakit.resource_agents.health.publisher import Publisher, PublisherConfig
from hakit.resource_agents.health.subscriptions import SubscriptionStore
from hakit.resource_agents.health.vnf_reports import ReportStore
from tests.health.conftest import CLI, AlertRunner, Cib, Receiver, wait_for
from tests.health.test_publisher import subscribe_receiver
from tests.openstack.infra import free_port

RULES = {
    "rules": [
        {
            "name": "compute-host",
            "scope": "host",
            "error_classes": [],
            "min_vnfs": 3,
            "window_s": 60,
        }
    ],
}
INVENTORY = {"node2": ["vm-a", "vm-b", "vm-c", "vm-x"], "node3": ["vm-d", "vm-e"]}


class Client:
    """A VNF manager posting reports with its bearer token."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    def post(self, vnf: str, server: str, key: str | None = None, **extra: Any) -> int:
        body = {
            "vnfInstanceId": vnf,
            "resource": {"type": "server", "id": server},
            "errorClass": "compute",
            "perceivedSeverity": "MAJOR",
            "observedTime": rfc3339(time.time()),
            "details": f"{vnf}: heartbeat lost on {server}",
            "idempotencyKey": key or str(uuid.uuid4()),
            **extra,
        }
        status, _ = self.request("POST", "/vnffm/v1/error-reports", body)
        return status

    def request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Authorization": f"Bearer {self.token}"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            connection.request(method, path, data, headers)
            reply = connection.getresponse()
            text = reply.read()
            return reply.status, json.loads(text) if text else None
        finally:
            connection.close()


@pytest.fixture
def config(
    tmp_path: Path, outbox_path: Path, monkeypatch: pytest.MonkeyPatch, cib: Cib
) -> PublisherConfig:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps(INVENTORY))
    monkeypatch.setenv(LEADER_VARIABLE, "1")
    monkeypatch.setenv("CIB_file", str(cib.placed))
    return PublisherConfig(
        outbox=str(outbox_path),
        subscriptions=str(tmp_path / "subs.db"),
        inventory=str(inventory),
        poll_interval=0.02,
        resync_interval=0.3,
        retry_initial=0.05,
        http_timeout=2.0,
        correlation=parse_rules(RULES),
    )


def token(config: PublisherConfig) -> str:
    with SubscriptionStore(config.subscriptions) as store:
        return store.add_token("vnfm")


@pytest.fixture
def serving(config: PublisherConfig, receiver: Receiver) -> Iterator[tuple[Publisher, Client]]:
    """The publisher and its API in one process, as `hakit health publish --api-port`."""
    subscribe_receiver(config, receiver)
    bearer = token(config)
    server = ApiServer("127.0.0.1", 0, store_path=config.subscriptions, reports_path=config.outbox)
    publisher = Publisher(config)
    assert server.reports is not None
    server.reports.writer.on_stored = publisher.wake.set
    threads = [
        threading.Thread(target=server.serve_forever),
        threading.Thread(target=publisher.run),
    ]
    for thread in threads:
        thread.start()
    try:
        yield publisher, Client(server.server_address[1], bearer)
    finally:
        publisher.stop()
        server.shutdown()
        server.server_close()
        for thread in threads:
            thread.join(timeout=10)


def alarms(receiver: Receiver) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for receipt in receiver.receipts:
        if "alarm" in receipt.body:
            seen[receipt.body["alarm"]["id"]] = receipt.body["alarm"]
    return list(seen.values())


def test_three_vnfs_on_one_host_make_one_root_and_three_children(
    serving: tuple[Publisher, Client], receiver: Receiver, config: PublisherConfig
) -> None:
    publisher, client = serving
    assert client.post("vnf-1", "vm-a") == 201
    assert client.post("vnf-1", "vm-b") == 201  # the same VNF again: still one VNF
    assert client.post("vnf-2", "vm-d") == 201  # another host
    time.sleep(0.5)
    assert alarms(receiver) == []
    assert client.post("vnf-2", "vm-b") == 201
    assert client.post("vnf-3", "vm-c") == 201
    wait_for(lambda: len(alarms(receiver)) == 5, what="the root and four children")
    roots = [a for a in alarms(receiver) if a["isRootCause"]]
    assert len(roots) == 1
    root = roots[0]
    assert root["managedObjectId"] == "node2"
    assert root["rootCauseFaultyResource"]["faultyResource"]["resourceId"] == "node2"
    children = [a for a in alarms(receiver) if not a["isRootCause"]]
    assert sorted(c["managedObjectId"] for c in children) == ["vnf-1", "vnf-1", "vnf-2", "vnf-3"]
    assert all(c["correlatedAlarmIds"] == [root["id"]] for c in children)
    assert sorted(root["correlatedAlarmIds"]) == sorted(c["id"] for c in children)
    assert all(r.signed for r in receiver.receipts)

    # explain: the rule, the window, the reports
    status, listed = client.request("GET", "/vnffm/v1/correlations")
    assert status == 200 and [c["root_alarm_id"] for c in listed] == [root["id"]]
    status, one = client.request("GET", f"/vnffm/v1/correlations/{listed[0]['id']}")
    assert status == 200 and len(one["reports"]) == 4
    assert any("at least 3 distinct VNFs within 60 s" in line for line in one["explanation"])
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            CLI,
            "health",
            "correlations",
            "explain",
            listed[0]["id"],
            "--outbox",
            config.outbox,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "rule compute-host" in shown.stdout and "vm-c" in shown.stdout


def test_reports_from_vnfs_on_different_hosts_raise_no_host_alarm(
    serving: tuple[Publisher, Client], receiver: Receiver
) -> None:
    _, client = serving
    for vnf, server in (("vnf-1", "vm-a"), ("vnf-2", "vm-d"), ("vnf-3", "vm-e"), ("vnf-4", "vm-z")):
        assert client.post(vnf, server) == 201
    status, listed = client.request("GET", "/vnffm/v1/error-reports")
    wait_for(
        lambda: all(
            r["resolution"]["state"] != "pending"
            for r in client.request("GET", "/vnffm/v1/error-reports")[1]
        ),
        what="every report resolved or marked",
    )
    time.sleep(0.5)
    assert alarms(receiver) == []
    reports = {r["resource"]["id"]: r for r in client.request("GET", "/vnffm/v1/error-reports")[1]}
    assert reports["vm-a"]["resolution"]["host"] == "node2"
    unknown = reports["vm-z"]["resolution"]  # kept and marked, not dropped
    assert unknown["state"] == "unresolved" and "vm-z" in unknown["reason"]


def test_reports_about_a_fenced_host_are_children_of_its_alarm(
    serving: tuple[Publisher, Client],
    receiver: Receiver,
    alerts: AlertRunner,
    cib: Cib,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, client = serving
    monkeypatch.setenv(
        "CIB_file", str(cib.simulate(cib.placed, "corr-fenced", "--node-fail", "node2"))
    )
    alerts.node("node2", "lost")
    alerts.fencing("node2", executioner="node3")
    wait_for(
        lambda: any(a["faultType"] == "HOST_DOWN_FENCED" for a in alarms(receiver)),
        what="the fenced host's alarm",
    )
    host_alarm = next(a for a in alarms(receiver) if a["faultType"] == "HOST_DOWN_FENCED")
    for vnf, server in (("vnf-1", "vm-a"), ("vnf-2", "vm-b"), ("vnf-3", "vm-c")):
        assert client.post(vnf, server) == 201
    wait_for(
        lambda: len([a for a in alarms(receiver) if a["faultType"] == "VNF_ERROR_REPORT"]) == 3,
        what="three reports under the fencing root",
    )
    children = [a for a in alarms(receiver) if a["faultType"] == "VNF_ERROR_REPORT"]
    assert all(c["correlatedAlarmIds"] == [host_alarm["id"]] for c in children)
    assert not any(a["faultType"] == "SUSPECTED_NFVI_FAULT" for a in alarms(receiver))

    # node2 back: its alarm and the reports' clear; the fence explained those reports, so
    # they make no suspicion of the recovered host either
    monkeypatch.setenv("CIB_file", str(cib.placed))
    alerts.node("node2", "member")
    cleared = {c["id"] for c in children} | {host_alarm["id"]}
    wait_for(
        lambda: cleared <= cleared_ids(receiver), what="the host's alarm and its children cleared"
    )
    time.sleep(0.5)
    assert not any(a["faultType"] == "SUSPECTED_NFVI_FAULT" for a in alarms(receiver))


def cleared_ids(receiver: Receiver) -> set[str]:
    return {
        r.body["alarmId"]
        for r in receiver.receipts
        if r.body["notificationType"] == ALARM_CLEARED_NOTIFICATION
    }


def test_a_publisher_killed_mid_stream_loses_no_report(
    config: PublisherConfig, receiver: Receiver, tmp_path: Path
) -> None:
    """Reports keep coming while the publisher (and its API) is SIGKILLed and restarted:
    every report answered 201 is stored once, correlated and its alarm delivered; the
    client retries what got no answer with the same idempotency key."""
    subscribe_receiver(config, receiver)
    client = Client(free_port(), token(config))
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
        "--inventory",
        str(config.inventory),
        "--api-port",
        str(client.port),
        "--correlation",
        json.dumps(RULES),
    ]
    environment = {**os.environ, LEADER_VARIABLE: "1"}

    def start() -> subprocess.Popen[str]:
        process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)
        wait_for(lambda: client_answers(client), 30, "the API")
        return process

    first = start()
    accepted: set[str] = set()
    keys = [str(uuid.uuid4()) for _ in range(30)]
    second = None
    for index, key in enumerate(keys):
        while True:
            try:
                status = client.post(f"vnf-{index}", "vm-a", key)
            except OSError:
                status = 0
            if status in (200, 201):
                accepted.add(key)
                break
            if second is None and first.poll() is not None:
                second = start()
            time.sleep(0.05)
        if index == 12:
            first.kill()  # SIGKILL, mid-stream
            first.wait(timeout=10)
    assert second is not None
    with ReportStore(config.outbox) as store:
        assert store.count() == 30  # once each, though some were sent twice
    wait_for(
        lambda: len([a for a in alarms(receiver) if not a["isRootCause"]]) == 30,
        30,
        "an alarm for every report",
    )
    second.terminate()
    _, err = second.communicate(timeout=20)
    first.communicate(timeout=5)
    assert "Traceback" not in err
    assert len([a for a in alarms(receiver) if a["isRootCause"]]) == 1
    assert not any(
        r.body["notificationType"] == ALARM_CLEARED_NOTIFICATION for r in receiver.receipts
    )


def client_answers(client: Client) -> bool:
    try:
        return client.request("GET", "/vnffm/v1/error-reports?limit=1")[0] == 200
    except OSError:
        return False


def test_replay_says_what_edited_rules_would_have_raised(tmp_path: Path) -> None:
    """Stored, resolved reports replayed through `hakit health reports replay` against the
    rules `hakit topology correlation-rules` makes of a topology, then against edited ones."""
    from hakit.resource_agents.health.vnf_reports import parse_report

    outbox = str(tmp_path / "outbox.db")
    now = time.time()
    with ReportStore(outbox) as store:
        for index, (vnf, host) in enumerate(
            [("vnf-1", "node2"), ("vnf-2", "node2"), ("vnf-3", "node2"), ("vnf-4", "node3")]
        ):
            body = {
                "vnfInstanceId": vnf,
                "resource": {"type": "server", "id": f"vm-{index}"},
                "errorClass": "compute",
                "perceivedSeverity": "MAJOR",
                "observedTime": rfc3339(now - 30 + index),
                "idempotencyKey": f"k{index}",
            }
            [(stored, _)] = store.add([parse_report(body, "vnfm", now)])
            store.resolve(stored.id, host=host, state="resolved", reason="")
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "hakit.tools.cli",
            "topology",
            "correlation-rules",
            str(Path(__file__).parents[1] / "topology" / "data" / "correlation.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    parse_rules(made.stdout)  # what the publisher would get

    def replay(rules: dict[str, Any]) -> list[dict[str, Any]]:
        path = tmp_path / "rules.json"
        path.write_text(json.dumps(rules))
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                CLI,
                "health",
                "reports",
                "replay",
                str(path),
                "--outbox",
                outbox,
                "--json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        return list(json.loads(done.stdout)["events"])

    events = replay(RULES)
    assert [(e["event"], e["key"], sorted(e["vnfs"])) for e in events] == [
        ("raised", "node2", ["vnf-1", "vnf-2", "vnf-3"]),
        ("cleared", "node2", ["vnf-1", "vnf-2", "vnf-3"]),
    ]
    stricter = {"rules": [{**RULES["rules"][0], "min_vnfs": 4}]}
    assert replay(stricter) == []
    not_json = tmp_path / "topology.yaml"
    not_json.write_text("cluster: {name: x}\n")
    refused = subprocess.run(
        [
            sys.executable,
            "-c",
            CLI,
            "health",
            "reports",
            "replay",
            str(not_json),
            "--outbox",
            outbox,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2 and "correlation-rules" in refused.stderr
    assert "Traceback" not in refused.stderr
