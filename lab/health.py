"""The lab's MANO stand-in: hakit's reference receiver (`hakit health receive`) in the infra
namespace, outside the cluster so no node fault touches it, subscribed on every node.

Each node keeps its own subscriptions and outbox (/var/lib/hakit/health is per node in
the lab); the publisher on the DC delivers, so a node's subscription id also tells which
node's publisher sent a notification.
"""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import time
from typing import Any

from hakit.lab.errors import LabError
from hakit.lab.lab import INFRA_NETNS, Lab
from hakit.resource_agents.health.receiver import read_log

HEALTH = "/usr/libexec/hakit/health"
PORT = 8798
API_PORT = 8797  # the publishers' API in compute.yaml
PUBLISHER = "health-publisher"  # in demo.yaml

Entry = dict[str, Any]


class LabReceiver:
    """Start/stop the receiver, (un)subscribe it on every node, read what it accepted."""

    def __init__(self, lab: Lab, port: int = PORT) -> None:
        self.lab = lab
        self.port = port
        self.work = lab.dir / ("health-receiver" if port == PORT else f"health-receiver-{port}")
        self.secret = self.work / "secret"
        self.log = self.work / "received.jsonl"
        self.address = ""
        self.subscriptions: dict[str, str] = {}  # node → its subscription id
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://{self.address}:{self.port}/notifications"

    def start(self, delay: float = 0.0) -> None:
        """(Re)start it; `delay` holds every answer that long."""
        self.stop()
        if not self.address:
            self.address = self.lab.infra_network()
            self.work.mkdir(exist_ok=True)
            if not self.secret.exists():  # kept: subscriptions left by a crashed run still verify
                self.secret.write_text(os.urandom(16).hex())
                self.secret.chmod(0o600)
            self.log.unlink(missing_ok=True)
        argv = [
            "ip",
            "netns",
            "exec",
            INFRA_NETNS,
            HEALTH,
            "receive",
            "--address",
            self.address,
            "--port",
            str(self.port),
            "--secret-file",
            str(self.secret),
            "--log",
            str(self.log),
            "--delay",
            str(delay),
        ]
        with open(self.work / "receiver.log", "ab") as out:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        probe = ["ip", "netns", "exec", INFRA_NETNS, "ss", "-Htln", f"sport = :{self.port}"]
        deadline = time.monotonic() + 10
        while not subprocess.run(probe, capture_output=True, text=True, check=False).stdout:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"the receiver did not start; see {self.work / 'receiver.log'}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def subscribe(self) -> None:
        """Subscribe it on every node; publishers see it on their next resync (≤ 5 s)."""
        for node in self.lab.nodes:
            listed = self.lab.run(node, [HEALTH, "subscriptions", "list"]).stdout.splitlines()
            for stale in [line.split()[0] for line in listed if f" {self.uri} " in line]:
                self.lab.run(node, [HEALTH, "subscriptions", "delete", stale, "--yes"])
            out = self.lab.run(
                node, [HEALTH, "subscriptions", "add", self.uri, "--secret-file", str(self.secret)]
            ).stdout
            self.subscriptions[node] = out.split(":", 1)[1].split()[0]

    def unsubscribe(self) -> None:
        for node, subscription in self.subscriptions.items():
            if self.lab.powered(node):
                self.lab.run(
                    node, [HEALTH, "subscriptions", "delete", subscription, "--yes"], check=False
                )
        self.subscriptions.clear()

    def entries(self, stage: str = "accepted") -> list[Entry]:
        return [e for e in read_log(self.log) if e["stage"] == stage]

    def first_acceptances(self) -> list[Entry]:
        """Each notification once, in the order it was first accepted."""
        seen: dict[str, Entry] = {}
        for entry in self.entries():
            seen.setdefault(entry["key"], entry)
        return list(seen.values())


def settled(lab: Lab, clones: tuple[str, ...] = (PUBLISHER,)) -> bool:
    """Every node online in a quorate partition, and `clones` running on every node."""
    status = lab.cluster_status(lab.nodes[0], timeout=5)
    if status is None or not status.dc or not status.quorate:
        return False
    if {n.name for n in status.nodes if n.online} != set(lab.nodes):
        return False
    return all(sorted(status.running_on(r)) == sorted(lab.nodes) for r in clones)


def dc(lab: Lab) -> str:
    """The DC of the quorate partition (where the publisher delivers from)."""
    for node in lab.nodes:
        status = lab.cluster_status(node, timeout=5)
        if status is not None and status.dc and status.quorate:
            return status.dc
    raise LabError("no quorate partition with a DC")


def host_of(entry: Entry) -> str | None:
    """The host a (raised) host alarm is about."""
    alarm = entry["notification"].get("alarm")
    if alarm is None:
        return None
    return str(alarm["rootCauseFaultyResource"]["faultyResource"]["resourceId"])


def event_time(entry: Entry) -> float:
    """The Pacemaker event time a notification carries (eventTime or alarmClearedTime)."""
    notification = entry["notification"]
    alarm = notification.get("alarm")
    text = alarm["eventTime"] if alarm else notification["alarmClearedTime"]
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def host_alarms(entries: list[Entry], host: str) -> list[tuple[str, str]]:
    """(notification type, faultType — or the alarm id for a clear) of `host`'s root
    alarms, in order."""
    raised: set[str] = set()
    found = []
    for entry in entries:
        notification = entry["notification"]
        alarm = notification.get("alarm")
        if alarm is not None and alarm["isRootCause"] and host_of(entry) == host:
            raised.add(alarm["id"])
            found.append(("AlarmNotification", str(alarm["faultType"])))
        elif notification.get("alarmId") in raised:
            found.append(("AlarmClearedNotification", str(notification["alarmId"])))
    return found


class LabReports:
    """The lab's VNF manager: posts error reports to the publishers' API from the infra
    namespace (outside the cluster), with each node's own token; a node whose publisher
    does not lead answers 503, so a report goes to the next node until one takes it."""

    def __init__(self, lab: Lab, name: str = "lab-vnfm") -> None:
        self.lab = lab
        self.tokens: dict[str, str] = {}
        for node in lab.nodes:
            lab.run(node, [HEALTH, "tokens", "delete", name, "--yes"], check=False)
            self.tokens[node] = lab.run(node, [HEALTH, "tokens", "add", name]).stdout.strip()

    def post(self, vnf: str, server: str, key: str, timeout: float = 60.0) -> str:
        """Report a compute error of `vnf` on `server` (same `key`: the same report); the
        node whose API stored it."""
        import json

        body = json.dumps(
            {
                "vnfInstanceId": vnf,
                "resource": {"type": "server", "id": server},
                "errorClass": "compute",
                "perceivedSeverity": "MAJOR",
                "observedTime": datetime.datetime.now(datetime.UTC).isoformat(),
                "details": f"{vnf} lost its heartbeat on {server}",
                "idempotencyKey": key,
            }
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.lab.nodes:
                if self.lab.powered(node) and self._post(node, body) in (200, 201):
                    return node
            time.sleep(0.2)
        raise LabError(f"no publisher took the report {key} within {timeout:.0f}s")

    def _post(self, node: str, body: str) -> int:
        import http.client

        def send() -> int:
            connection = http.client.HTTPConnection(self.lab.address(node), API_PORT, timeout=5)
            try:
                headers = {
                    "Authorization": f"Bearer {self.tokens[node]}",
                    "Content-Type": "application/json",
                }
                connection.request("POST", "/vnffm/v1/error-reports", body, headers)
                reply = connection.getresponse()
                reply.read()
                return reply.status
            except (OSError, http.client.HTTPException):
                return 0
            finally:
                connection.close()

        return self.lab.as_client(send)
