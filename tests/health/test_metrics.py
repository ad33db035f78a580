"""The publisher's Prometheus metrics, scraped over HTTP from a real publisher: node health
classes, alarms raised/changed/cleared, deliveries to a real receiver (failures, retries,
lag), outbox depth while the receiver is down, evacuations through a stand-in cloud; the
`publish` daemon as the agent's argv starts it, with metrics and (by default) without;
the agent's validate-all refusing bad metrics parameters."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hakit.ocf import proc
from hakit.ocf.context import Context
from hakit.ocf.exits import EnvironmentProblem
from hakit.ocf.log import Logger
from hakit.ocf.params import ParameterValues
from hakit.resource_agents import publisher as agent
from hakit.resource_agents.clouds import CloudSession
from hakit.resource_agents.health.constants import LEADER_VARIABLE
from hakit.resource_agents.health.liveness import holds_open
from hakit.resource_agents.health.metrics import PublisherMetrics
from hakit.resource_agents.health.model import Health
from hakit.resource_agents.health.nova import ComputeAPI
from hakit.resource_agents.health.outbox import NOTIFICATIONS
from hakit.resource_agents.health.publisher import Publisher, PublisherConfig
from hakit.resource_agents.health.subscriptions import (
    Filter,
    SubscriptionRequest,
    SubscriptionStore,
    subscribe,
)
from tests.agents.test_service_agent import free_port
from tests.conftest import run_in_process
from tests.health.conftest import AlertRunner, Cib, Receiver, wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    """GET /metrics, parsed by prometheus_client's own parser."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/metrics")
        reply = connection.getresponse()
        text = reply.read().decode()
    finally:
        connection.close()
    assert reply.status == 200, text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


@pytest.fixture
def config(
    tmp_path: Path, outbox_path: Path, monkeypatch: pytest.MonkeyPatch, cib: Cib
) -> PublisherConfig:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"node2": ["vm-a", "vm-b"]}))
    monkeypatch.setenv(LEADER_VARIABLE, "1")
    monkeypatch.setenv("CIB_file", str(cib.placed))
    return PublisherConfig(
        outbox=str(outbox_path),
        subscriptions=str(tmp_path / "subs.db"),
        inventory=str(inventory),
        poll_interval=0.02,
        resync_interval=0.3,
        retry_initial=0.05,
        retry_max=0.3,
        http_timeout=2.0,
    )


@pytest.fixture
def metrics() -> Iterator[PublisherMetrics]:
    served = PublisherMetrics()
    served.serve("127.0.0.1", 0)
    try:
        yield served
    finally:
        served.close()


def port_of(metrics: PublisherMetrics) -> int:
    assert metrics.server is not None
    return int(metrics.server.server_port)


def test_metrics_follow_alarms_deliveries_and_the_outbox(
    config: PublisherConfig,
    metrics: PublisherMetrics,
    receiver: Receiver,
    alerts: AlertRunner,
    cib: Cib,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.fail_once = lambda body: body.get("alarm", {}).get("isRootCause") is True
    with SubscriptionStore(config.subscriptions) as store:
        subscription, _ = subscribe(
            store, SubscriptionRequest(receiver.uri, Filter(), receiver.secret)
        )
    sub = subscription.id
    port = port_of(metrics)
    assert value(scrape(port), "hakit_leader") is None  # no publisher to read yet
    publisher = Publisher(config, metrics=metrics)
    assert value(scrape(port), "hakit_leader") == 0.0  # before its first derivation
    thread = threading.Thread(target=publisher.run)
    thread.start()
    try:
        wait_for(lambda: value(scrape(port), "hakit_leader") == 1.0, what="leadership")
        now = scrape(port)
        for node in ("node1", "node2", "node3"):
            classes = {
                c.value: value(now, "hakit_node_health", node=node, **{"class": c.value})
                for c in Health
            }
            assert classes.pop("OK") == 1.0
            assert set(classes.values()) == {0.0}
        assert series(now, "hakit_alarms_open") == {}
        assert value(now, "hakit_scrape_success", collector="outbox") == 1.0

        # node2 lost: a root alarm and one per instance, MAJOR; the root's first answer lost
        monkeypatch.setenv(
            "CIB_file",
            str(cib.simulate(cib.placed, "m-lost", "--node-fail", "node2", execute=False)),
        )
        alerts.node("node2", "lost")
        wait_for(
            lambda: value(
                scrape(port), "hakit_deliveries_total", subscription=sub, result="delivered"
            )
            == 3.0,
            what="three deliveries",
        )
        now = scrape(port)
        unfenced = Health.HOST_UNREACHABLE_UNFENCED.value
        assert value(now, "hakit_node_health", node="node2", **{"class": unfenced}) == 1.0
        assert value(now, "hakit_node_health", node="node2", **{"class": "OK"}) == 0.0
        raised = {"severity": "MAJOR", "fault_type": unfenced}
        assert value(now, "hakit_alarms_raised_total", **raised) == 3.0
        assert value(now, "hakit_alarms_open", node="node2", **raised) == 3.0
        assert value(now, "hakit_deliveries_total", subscription=sub, result="failed") == 1.0
        assert value(now, "hakit_delivery_retries_total", subscription=sub) == 1.0
        assert value(now, "hakit_delivery_lag_seconds_count", subscription=sub) == 3.0
        lag = value(now, "hakit_delivery_lag_seconds_sum", subscription=sub)
        assert lag is not None and 0.0 < lag < 30.0
        assert value(now, "hakit_outbox_depth", subscription=sub) == 0.0
        assert value(now, "hakit_outbox_oldest_pending_seconds", subscription=sub) == 0.0

        # the receiver is down while node2 is fenced and comes back: the outbox fills up
        receiver.stop()
        monkeypatch.setenv(
            "CIB_file", str(cib.simulate(cib.placed, "m-fenced", "--node-fail", "node2"))
        )
        alerts.fencing("node2", executioner="node3")
        wait_for(
            lambda: value(scrape(port), "hakit_outbox_depth", subscription=sub) == 3.0,
            what="three notifications waiting",
        )
        alerts.node("node2", "member")  # a member again, not yet online: DEGRADED
        wait_for(
            lambda: value(scrape(port), "hakit_outbox_depth", subscription=sub) == 6.0,
            what="six notifications waiting",
        )
        monkeypatch.setenv("CIB_file", str(cib.placed))  # online: the alarm clears
        wait_for(
            lambda: value(scrape(port), "hakit_outbox_depth", subscription=sub) == 7.0,
            what="seven notifications waiting",
        )
        wait_for(
            lambda: (
                value(scrape(port), "hakit_outbox_oldest_pending_seconds", subscription=sub) or 0
            )
            > 0.5,
            what="the oldest waiting to age",
        )
        now = scrape(port)
        fenced = {"severity": "CRITICAL", "fault_type": Health.HOST_DOWN_FENCED.value}
        joining = {"severity": "WARNING", "fault_type": Health.DEGRADED.value}
        assert value(now, "hakit_alarms_changed_total", **fenced) == 3.0
        assert value(now, "hakit_alarms_changed_total", **joining) == 1.0
        assert value(now, "hakit_alarms_cleared_total", **fenced) == 2.0  # the instances'
        assert value(now, "hakit_alarms_cleared_total", **joining) == 1.0  # the host's
        assert value(now, "hakit_alarms_raised_total", **raised) == 3.0  # no new alarm ids
        assert value(now, "hakit_node_health", node="node2", **{"class": "OK"}) == 1.0
        assert series(now, "hakit_alarms_open") == {}
        failed = value(now, "hakit_deliveries_total", subscription=sub, result="failed")
        assert failed is not None and failed >= 3.0  # retried with backoff
        retries = value(now, "hakit_delivery_retries_total", subscription=sub)
        assert retries == failed - 1  # every failed attempt but the first was a retry

        receiver.start()  # same port
        wait_for(
            lambda: value(scrape(port), "hakit_outbox_depth", subscription=sub) == 0.0,
            what="the outbox drained",
        )
        now = scrape(port)
        assert value(now, "hakit_deliveries_total", subscription=sub, result="delivered") == 10.0
        assert value(now, "hakit_delivery_lag_seconds_count", subscription=sub) == 10.0
        assert value(now, "hakit_outbox_records", stream="notifications") == 10.0
        assert value(now, "hakit_outbox_records", stream="events") == 3.0
        assert value(now, "hakit_outbox_pending_events") == 0.0
        slow = value(now, "hakit_delivery_lag_seconds_bucket", subscription=sub, le="0.5")
        assert slow is not None and slow <= 3.0  # the seven that waited took longer

        # a deleted subscription's series go with it
        with SubscriptionStore(config.subscriptions) as store:
            assert store.delete(sub)
        wait_for(
            lambda: not series(scrape(port), "hakit_deliveries_total"), what="forgotten series"
        )
        assert series(scrape(port), "hakit_outbox_depth") == {}
    finally:
        publisher.stop()
        thread.join(timeout=10)


def test_a_service_down_shows_its_resource_and_a_follower_its_nodes(
    config: PublisherConfig, metrics: PublisherMetrics, cib: Cib, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = cib.simulate(
        cib.placed,
        "m-compute-failing",
        "--op-inject",
        "compute_monitor_10000@node3=1",
        "--op-fail",
        "compute_start_0@node3=1",
    )
    monkeypatch.setenv("CIB_file", str(failing))
    monkeypatch.setenv(LEADER_VARIABLE, "0")
    publisher = Publisher(config, metrics=metrics)
    port = port_of(metrics)
    down = Health.SERVICE_DOWN_HOST_UP.value
    publisher.cycle(resync=True)  # not leading: no alarm, but the health it sees
    now = scrape(port)
    assert value(now, "hakit_leader") == 0.0
    assert value(now, "hakit_node_health", node="node3", **{"class": down}) == 1.0
    assert series(now, "hakit_resource_down") == {
        frozenset({("node", "node3"), ("resource", "compute")}): 1.0
    }
    assert series(now, "hakit_alarms_raised_total") == {}
    monkeypatch.setenv(LEADER_VARIABLE, "1")
    publisher.cycle(resync=True)
    now = scrape(port)
    assert value(now, "hakit_leader") == 1.0
    assert value(now, "hakit_alarms_raised_total", severity="MAJOR", fault_type=down) == 1.0
    assert value(now, "hakit_alarms_open", node="node3", severity="MAJOR", fault_type=down) == 1.0
    monkeypatch.setenv("CIB_file", str(cib.placed))  # recovered
    publisher.cycle(resync=True)
    now = scrape(port)
    assert series(now, "hakit_resource_down") == {}
    assert value(now, "hakit_node_health", node="node3", **{"class": "OK"}) == 1.0
    assert value(now, "hakit_alarms_cleared_total", severity="MAJOR", fault_type=down) == 1.0
    assert series(now, "hakit_alarms_open") == {}
    publisher.outbox.close()


# --- evacuations, through a stand-in cloud (Keystone's token API and nova's) ----------------


class StandInCloud:
    """Keystone v3 (password tokens) and the compute API calls the publisher makes, on
    127.0.0.1. Servers start ACTIVE on node2; an evacuation moves one to node3, unless
    it is listed in `errors` (left in ERROR on node2) or `refuse` (409, once)."""

    def __init__(self, servers: list[str], errors: set[str], refuse: set[str]) -> None:
        self.servers = {s: {"host": "node2", "status": "ACTIVE"} for s in servers}
        self.errors, self.refuse = errors, refuse
        self.forced_down = False
        self.evacuations: list[str] = []
        cloud = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                cloud.answer(self, "GET")

            def do_POST(self) -> None:
                cloud.answer(self, "POST")

            def do_PUT(self) -> None:
                cloud.answer(self, "PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self, request: BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"null")
        parts = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        status, answer, headers = self.route(method, parts.path, query, body)
        data = json.dumps(answer).encode()
        request.send_response(status)
        for name, text in {"Content-Type": "application/json", **headers}.items():
            request.send_header(name, text)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def route(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if (method, path) == ("POST", "/identity/v3/auth/tokens"):
            return 201, self.token(), {"X-Subject-Token": "stand-in-token"}
        if (method, path) == ("GET", "/compute/v2.1/os-services"):
            service = {"id": "1", "host": query["host"], "state": "down"}
            return 200, {"services": [{**service, "forced_down": self.forced_down}]}, {}
        if (method, path) == ("PUT", "/compute/v2.1/os-services/1"):
            self.forced_down = bool(body["forced_down"])
            return 200, {"service": {}}, {}
        if (method, path) == ("GET", "/compute/v2.1/servers/detail"):
            found = [
                {
                    "id": server,
                    "status": state["status"],
                    "OS-EXT-SRV-ATTR:host": state["host"],
                    "OS-EXT-STS:task_state": None,
                }
                for server, state in sorted(self.servers.items())
                if query.get("host") in (None, state["host"])
            ]
            return 200, {"servers": found}, {}
        if method == "POST" and path.endswith("/action") and "evacuate" in body:
            server = path.split("/")[-2]
            if server in self.refuse:
                self.refuse.discard(server)
                return 409, {"conflictingRequest": {"message": "busy"}}, {}
            self.evacuations.append(server)
            moved = {"host": "node3", "status": "ACTIVE"}
            self.servers[server] = (
                {"host": "node2", "status": "ERROR"} if server in self.errors else moved
            )
            return 200, {}, {}
        return 404, {"error": f"{method} {path}"}, {}

    def token(self) -> dict[str, Any]:
        domain = {"id": "default", "name": "Default"}
        return {
            "token": {
                "methods": ["password"],
                "expires_at": "2099-01-01T00:00:00.000000Z",
                "issued_at": "2025-01-01T00:00:00.000000Z",
                "user": {"id": "u1", "name": "hakit", "domain": domain},
                "project": {"id": "p1", "name": "service", "domain": domain},
                "roles": [{"id": "r1", "name": "admin"}],
                "catalog": [
                    {
                        "type": "compute",
                        "name": "nova",
                        "id": "s1",
                        "endpoints": [
                            {
                                "id": "e1",
                                "interface": "public",
                                "region": "RegionOne",
                                "region_id": "RegionOne",
                                "url": f"{self.url}/compute/v2.1",
                            }
                        ],
                    }
                ],
            }
        }

    def clouds_yaml(self, directory: Path) -> Path:
        path = directory / "clouds.yaml"
        auth = {
            "auth_url": f"{self.url}/identity",
            "username": "hakit",
            "password": "stand-in",
            "user_domain_name": "Default",
            "project_name": "service",
            "project_domain_name": "Default",
        }
        path.write_text(json.dumps({"clouds": {"test": {"auth": auth}}}))  # JSON is YAML
        return path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_evacuations_started_succeeded_failed(
    config: PublisherConfig,
    metrics: PublisherMetrics,
    alerts: AlertRunner,
    cib: Cib,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    cloud = StandInCloud(["vm-a", "vm-b", "vm-c"], errors={"vm-b"}, refuse={"vm-c"})
    try:
        config.inventory = None  # nova's servers are the instances
        config.nova = ComputeAPI(CloudSession(str(cloud.clouds_yaml(tmp_path)), "test"))
        config.evacuate, config.evacuate_retry, config.evacuate_attempts = True, 0.0, 2
        publisher = Publisher(config, metrics=metrics)
        monkeypatch.setenv(
            "CIB_file", str(cib.simulate(cib.placed, "e-fenced", "--node-fail", "node2"))
        )
        alerts.fencing("node2", executioner="node3")
        port = port_of(metrics)
        counts = []
        for _ in range(3):
            publisher.cycle(resync=True)
            now = scrape(port)
            counts.append(
                [
                    value(now, "hakit_evacuations_total", result=r)
                    for r in ("started", "succeeded", "failed")
                ]
            )
        publisher.outbox.close()
    finally:
        cloud.stop()
    assert cloud.forced_down
    # 1: a and b requested, c refused; 2: a gone, b requested again (it was left in ERROR),
    # c requested; 3: c gone, b given up on after its two attempts
    assert counts == [[2.0, None, 1.0], [4.0, 1.0, 2.0], [4.0, 2.0, 3.0]]
    assert sorted(cloud.evacuations) == ["vm-a", "vm-b", "vm-b", "vm-c"]  # in parallel
    now = scrape(port)
    assert value(now, "hakit_node_health", node="node2", **{"class": "HOST_DOWN_FENCED"}) == 1.0
    assert (
        value(now, "hakit_alarms_raised_total", severity="CRITICAL", fault_type="HOST_DOWN_FENCED")
        == 4.0
    )


def test_the_mass_failure_guard_raises_one_alarm_and_holds_evacuations(
    config: PublisherConfig,
    metrics: PublisherMetrics,
    alerts: AlertRunner,
    cib: Cib,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """node2 fenced while node3 is lost too (2 of 3 nodes): node2 forced down, nothing
    evacuated, one MASS_HOST_FAILURE alarm over three cycles, root cause of both hosts'
    alarms; node3 back: held on while node2 is lost, for the guard's hold (node2 may be
    one of the event's slow returns), then that alarm cleared and node2's servers
    evacuated."""
    cloud = StandInCloud(["vm-a", "vm-b"], errors=set(), refuse=set())
    try:
        config.inventory = None
        config.nova = ComputeAPI(CloudSession(str(cloud.clouds_yaml(tmp_path)), "test"))
        config.evacuate = True
        publisher = Publisher(config, metrics=metrics)
        lost = cib.simulate(cib.placed, "m-lost", "--node-fail", "node2", "--node-fail", "node3")
        monkeypatch.setenv("CIB_file", str(lost))
        alerts.fencing("node2", executioner="node1")
        for _ in range(3):
            publisher.cycle(resync=True)
        assert cloud.forced_down and cloud.evacuations == []
        raised = [n["alarm"] for n in notifications(publisher, "AlarmNotification")]
        [mass] = [a for a in raised if a["faultType"] == "MASS_HOST_FAILURE"]
        assert (mass["isRootCause"], mass["perceivedSeverity"]) == (True, "CRITICAL")
        assert "2 of 3 nodes lost (node2, node3)" in mass["probableCause"]
        hosts = {a["managedObjectId"]: a["id"] for a in raised if a is not mass}
        assert sorted(mass["correlatedAlarmIds"]) == sorted([hosts["node2"], hosts["node3"]])

        one = cib.simulate(cib.placed, "m-one", "--node-fail", "node2")
        monkeypatch.setenv("CIB_file", str(one))
        publisher.cycle(resync=True)
        cleared = [n["alarmId"] for n in notifications(publisher, "AlarmClearedNotification")]
        assert mass["id"] not in cleared and cloud.evacuations == []  # within the hold
        config.evacuate_guard_hold = 0.0  # the hold is over
        publisher.cycle(resync=True)
        cleared = [n["alarmId"] for n in notifications(publisher, "AlarmClearedNotification")]
        assert cleared.count(mass["id"]) == 1
        assert sorted(cloud.evacuations) == ["vm-a", "vm-b"]
        publisher.outbox.close()
    finally:
        cloud.stop()


def test_an_evacuation_past_its_deadline_raises_an_alarm_until_the_host_is_back(
    config: PublisherConfig,
    metrics: PublisherMetrics,
    alerts: AlertRunner,
    cib: Cib,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """node2 fenced: vm-a moves, vm-b stays (its evacuation left it in ERROR there, one
    attempt allowed); past the deadline one EVACUATION_OVERDUE alarm for vm-b, correlated
    with node2's alarm, over several cycles; node2 back: cleared."""
    cloud = StandInCloud(["vm-a", "vm-b"], errors={"vm-b"}, refuse=set())
    try:
        config.inventory = None
        config.nova = ComputeAPI(CloudSession(str(cloud.clouds_yaml(tmp_path)), "test"))
        config.evacuate, config.evacuate_attempts, config.evacuate_deadline = True, 1, 0.5
        publisher = Publisher(config, metrics=metrics)
        monkeypatch.setenv(
            "CIB_file", str(cib.simulate(cib.placed, "o-fenced", "--node-fail", "node2"))
        )
        alerts.fencing("node2", executioner="node3")
        publisher.cycle(resync=True)
        assert not notifications(publisher, "AlarmNotification", "EVACUATION_OVERDUE")
        time.sleep(0.6)
        for _ in range(3):
            publisher.cycle(resync=True)
        [late] = [
            n["alarm"] for n in notifications(publisher, "AlarmNotification", "EVACUATION_OVERDUE")
        ]
        host = [
            n["alarm"]["id"]
            for n in notifications(publisher, "AlarmNotification", "HOST_DOWN_FENCED")
            if n["alarm"]["managedObjectId"] == "node2"
        ]
        assert (late["managedObjectId"], late["perceivedSeverity"]) == ("vm-b", "MAJOR")
        assert late["correlatedAlarmIds"] == host[:1] and not late["isRootCause"]
        assert sorted(cloud.evacuations) == ["vm-a", "vm-b"]  # vm-b given up after one

        monkeypatch.setenv("CIB_file", str(cib.placed))
        publisher.cycle(resync=True)
        cleared = [n["alarmId"] for n in notifications(publisher, "AlarmClearedNotification")]
        assert cleared.count(late["id"]) == 1
        publisher.outbox.close()
    finally:
        cloud.stop()


def notifications(publisher: Publisher, kind: str, fault: str = "") -> list[dict[str, Any]]:
    """The notifications stored, of `kind` (and alarms of faultType `fault`)."""
    records = publisher.outbox.read(NOTIFICATIONS, 0, limit=-1)
    bodies = [json.loads(r.body)["notification"] for r in records]
    return [
        b
        for b in bodies
        if b["notificationType"] == kind and (not fault or b["alarm"]["faultType"] == fault)
    ]


def test_a_taken_port_is_one_line_with_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EnvironmentProblem) as refused:
            PublisherMetrics().serve("127.0.0.1", port)
    assert str(refused.value) == f"metrics on 127.0.0.1:{port}: Address already in use"
    assert refused.value.exit_code == 3


# --- the daemon, as the agent starts it ------------------------------------------------------


def daemon_argv(tmp_path: Path, outbox: Path, **params: str) -> list[str]:
    """The agent's argv for the daemon, its program this interpreter running the real
    `hakit health` entry point, printing every module it imports (-X importtime)."""
    program = tmp_path / "health"
    program.write_text(
        f"#!{sys.executable} -Ximporttime\n"
        "import sys\nfrom hakit.resource_agents.health.cli import main\nsys.exit(main())\n"
    )
    program.chmod(0o755)
    env = {
        "OCF_RESOURCE_INSTANCE": "health-publisher",
        "OCF_RESKEY_program": str(program),
        "OCF_RESKEY_outbox": str(outbox),
        "OCF_RESKEY_subscriptions": str(tmp_path / "subs.db"),
        **{f"OCF_RESKEY_{k}": v for k, v in params.items()},
    }
    ctx = Context(
        "start", env, params=ParameterValues(agent.AGENT.parameters, env), log=Logger("t", env)
    )
    return agent.argv(ctx)


def run_daemon(argv: list[str], cib: Cib, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CIB_file": str(cib.placed), LEADER_VARIABLE: "1"}
    with log.open("wb") as err:
        return subprocess.Popen(argv, env=env, stderr=err)


def imported(err: str) -> set[str]:
    """The modules a -X importtime run imported, from its stderr."""
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in err.splitlines()
        if line.startswith("import time:")
    }


def stop_daemon(daemon: subprocess.Popen[bytes], log: Path) -> str:
    wait_for(lambda: "publishing from" in log.read_text(), what="signals handled")
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=20)
    err = log.read_text()
    assert daemon.returncode == 0, err[-2000:]
    return err


def test_the_daemon_serves_metrics_with_metrics_port(
    tmp_path: Path, outbox_path: Path, cib: Cib
) -> None:
    port = free_port()
    argv = daemon_argv(tmp_path, outbox_path, metrics_port=str(port))
    assert argv[-4:] == ["--metrics-port", str(port), "--metrics-address", "127.0.0.1"]
    daemon = run_daemon(argv, cib, tmp_path / "daemon.err")
    try:

        def node1_ok() -> bool:
            try:
                now = scrape(port)
            except OSError:
                return False
            return value(now, "hakit_node_health", node="node1", **{"class": "OK"}) == 1.0

        wait_for(node1_ok, what="node1 OK in the daemon's metrics")
        assert value(scrape(port), "hakit_leader") == 1.0
    finally:
        err = stop_daemon(daemon, tmp_path / "daemon.err")
    assert f"hakit-publisher: metrics on 127.0.0.1:{port} (/metrics)" in err
    assert "prometheus_client" in imported(err)


def test_without_metrics_port_nothing_listens_and_prometheus_client_is_not_imported(
    tmp_path: Path, outbox_path: Path, cib: Cib
) -> None:
    argv = daemon_argv(tmp_path, outbox_path)
    assert not any(arg.startswith("--metrics") for arg in argv)
    daemon = run_daemon(argv, cib, tmp_path / "daemon.err")
    try:
        wait_for(lambda: holds_open(daemon.pid, str(outbox_path)), what="the outbox open")
        listening = {inode for *_, inode in proc.tcp_sockets(daemon.pid, state="0A")}
        assert not listening & proc.socket_inodes(daemon.pid)
    finally:
        err = stop_daemon(daemon, tmp_path / "daemon.err")
    modules = imported(err)
    assert "hakit.resource_agents.health.publisher" in modules  # -X importtime lists them
    assert "prometheus_client" not in modules
    assert "hakit.resource_agents.health.metrics" not in modules


def test_the_agent_imports_no_prometheus_client() -> None:
    code = (
        "import sys; import hakit.resource_agents.publisher, "
        "hakit.resource_agents.health.publisher, hakit.resource_agents.health.cli; "
        "sys.exit('prometheus_client' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- the agent's parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "code", "reason"),
    [
        (
            {"metrics_port": "70000"},
            6,
            "parameter metrics_port='70000' is not a TCP/UDP port (1-65535): out of range",
        ),
        (
            {"metrics_port": "0"},
            6,
            "parameter metrics_port='0' is not a TCP/UDP port (1-65535): out of range",
        ),
        (
            {"metrics_port": "metrics"},
            6,
            "parameter metrics_port='metrics' is not a TCP/UDP port (1-65535)",
        ),
        ({"metrics_port": "8797", "api_port": "8797"}, 6, "metrics_port 8797 is also api_port"),
        (
            {"metrics_port": "9101", "metrics_address": "192.0.2.1"},
            5,
            "metrics_address 192.0.2.1 cannot be bound here: [Errno 99] Cannot assign requested address",
        ),
        ({"metrics_port": "9101"}, 0, None),
        ({"metrics_port": "9101", "metrics_address": "::1"}, 0, None),
        ({}, 0, None),
    ],
)
def test_validate_all_checks_the_metrics_parameters(
    tmp_path: Path, params: dict[str, str], code: int, reason: str | None
) -> None:
    env = {
        "OCF_RESOURCE_INSTANCE": "health-publisher",
        "HAKIT_RUN_DIR": str(tmp_path / "run"),
        "OCF_RESKEY_program": "/bin/true",
        "OCF_RESKEY_outbox": str(tmp_path / "outbox.db"),
        **{f"OCF_RESKEY_{k}": v for k, v in params.items()},
    }
    result = run_in_process(agent.AGENT, "validate-all", env)
    assert (result.code, result.exit_reason) == (code, reason)
