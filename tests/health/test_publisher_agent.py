"""ocf:hakit:publisher, installed, run as Pacemaker runs it (a fresh process per action,
only OCF_* in its environment): the publisher daemon started ready, monitored at both
depths, delivering a node loss to a real receiver on 127.0.0.1, stopped gracefully; bad
parameters refused with the right code; ocf-tester and metadata.rng.

crm_mon reads a CIB file (CIB_file, through environment_file) that the tests change
with Pacemaker's own tools; leadership is forced through environment_file
(HAKIT_HEALTH_LEADER), the publisher's own switch for a host outside a cluster."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from hakit.ocf import OCFExit, proc
from hakit.resource_agents.health.constants import ALARM_NOTIFICATION, LEADER_VARIABLE
from hakit.resource_agents.health.outbox import NOTIFICATIONS, Outbox
from hakit.resource_agents.health.publisher import DERIVER
from tests.agents.test_service_agent import free_port
from tests.conftest import HAKIT_AGENTS, AgentResult, run_installed
from tests.health.conftest import AlertRunner, Cib, Receiver, wait_for

pytestmark = pytest.mark.usefixtures("installed_agents")

HEALTH = Path("/usr/libexec/hakit/health")
ALERT = Path("/usr/libexec/hakit/alert")
METADATA_RNG = "/usr/share/resource-agents/metadata.rng"
SUBSCRIPTIONS_PATH = "/vnffm/v1/subscriptions"


@dataclass
class Node:
    """One node's files: the CIB crm_mon sees, the outbox, the subscriptions store."""

    tmp: Path
    live: Path
    outbox: Path
    subscriptions: Path

    def environment_file(self, name: str = "publisher.env", leader: str | None = "1") -> Path:
        path = self.tmp / name
        forced = f"{LEADER_VARIABLE}={leader}\n" if leader is not None else ""
        path.write_text(f"# the publisher's environment\nCIB_file={self.live}\n{forced}")
        return path

    def private(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text)
        path.chmod(0o600)
        return path


class Publisher:
    """One resource instance of ocf:hakit:publisher."""

    def __init__(self, node: Node, **params: str) -> None:
        self.node = node
        self.log_file = node.tmp / "publisher.log"
        params = {
            "outbox": str(node.outbox),
            "subscriptions": str(node.subscriptions),
            "log_file": str(self.log_file),
            **params,
        }
        params.setdefault("environment_file", str(node.environment_file()))
        self.env = {
            "OCF_RESOURCE_INSTANCE": "health-publisher",
            "HAKIT_RUN_DIR": str(node.tmp / "run"),
            "OCF_RESKEY_CRM_meta_timeout": "30000",
            **{f"OCF_RESKEY_{k}": v for k, v in params.items()},
        }

    def __call__(self, action: str, **extra: str) -> AgentResult:
        return run_installed("publisher", action, {**self.env, **extra})

    def monitor(self, depth: int = 0, interval_ms: int = 10000) -> AgentResult:
        return self(
            "monitor", OCF_CHECK_LEVEL=str(depth), OCF_RESKEY_CRM_meta_interval=str(interval_ms)
        )

    @property
    def pid(self) -> int:
        state = (self.node.tmp / "run" / "service" / "health-publisher.state").read_text()
        return int(state.split()[0].split("=")[1])

    @property
    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""


@pytest.fixture
def node(tmp_path: Path, cib: Cib) -> Node:
    live = tmp_path / "live.xml"
    live.write_bytes(cib.placed.read_bytes())
    state = tmp_path / "state"
    return Node(tmp_path, live, state / "outbox.db", state / "subscriptions.db")


@pytest.fixture
def publishers() -> Iterator[list[Publisher]]:
    """Instances a test made; stopped afterwards whatever happened."""
    made: list[Publisher] = []
    yield made
    for publisher in made:
        publisher("stop")


def health(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed `hakit health` command."""
    return subprocess.run(
        [str(HEALTH), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": os.environ["PATH"]},
    )


def api_get(port: int, token: str | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request("GET", SUBSCRIPTIONS_PATH, headers=headers)
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def exited(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while proc.is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not proc.is_alive(pid)


def test_a_node_loss_reaches_a_real_receiver_through_the_agent(
    node: Node, cib: Cib, receiver: Receiver, publishers: list[Publisher]
) -> None:
    secret = node.private("receiver.secret", receiver.secret)
    store = ["--subscriptions", str(node.subscriptions)]
    subscribed = health("subscriptions", *store, "add", receiver.uri, "--secret-file", str(secret))
    assert subscribed.returncode == 0, subscribed.stderr
    subscription_id = subscribed.stdout.split()[1]
    made = health("tokens", *store, "add", "pacemaker-monitor")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    inventory = node.private("inventory.json", json.dumps({"node2": ["vm-a", "vm-b"]}))
    port = free_port()
    publisher = Publisher(
        node,
        api_port=str(port),
        inventory=str(inventory),
        monitor_token_file=str(node.private("token", token + "\n")),
    )
    publishers.append(publisher)

    assert publisher.monitor(interval_ms=0).code == OCFExit.NOT_RUNNING  # the probe
    started = publisher("start")
    assert started.code == OCFExit.SUCCESS, started.stderr
    assert api_get(port)[0] == 401  # ready means ready: the API answers at once
    status, body = api_get(port, token)
    assert status == 200 and [s["id"] for s in json.loads(body)] == [subscription_id]
    assert publisher.monitor(0).code == OCFExit.SUCCESS
    assert publisher.monitor(10).code == OCFExit.SUCCESS
    pid = publisher.pid
    assert publisher("start").code == OCFExit.SUCCESS and publisher.pid == pid  # idempotent
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[:5] == [b"/usr/bin/python3", b"-IS", bytes(HEALTH), b"publish", b"--outbox"]

    # Pacemaker loses node2: the CIB says so, the alert agent stores the event
    node.live.write_bytes(
        cib.simulate(cib.placed, "agent-lost", "--node-fail", "node2", execute=False).read_bytes()
    )
    AlertRunner(ALERT, node.outbox).node("node2", "lost")
    wait_for(lambda: len(set(receiver.keys())) == 3, what="the host alarm and its instances'")
    assert all(r.signed for r in receiver.receipts)
    bodies = [r.body for r in receiver.receipts]
    assert {b["notificationType"] for b in bodies} == {ALARM_NOTIFICATION}
    assert {b["subscriptionId"] for b in bodies} == {subscription_id}
    (root,) = [b["alarm"] for b in bodies if b["alarm"]["isRootCause"]]
    assert (root["managedObjectId"], root["faultType"]) == ("node2", "HOST_UNREACHABLE_UNFENCED")
    instances = [b["alarm"] for b in bodies if not b["alarm"]["isRootCause"]]
    assert sorted(a["managedObjectId"] for a in instances) == ["vm-a", "vm-b"]
    assert sorted(root["correlatedAlarmIds"]) == sorted(a["id"] for a in instances)
    link = bodies[0]["_links"]["subscription"]["href"]
    assert link == f"http://127.0.0.1:{port}{SUBSCRIPTIONS_PATH}/{subscription_id}"
    assert publisher.monitor(10).code == OCFExit.SUCCESS

    # no secret on the command line, in the daemon's environment or in any log
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert b"OCF_RESKEY" not in environ
    seen = b"\0".join(cmdline) + environ + publisher.log.encode() + started.stderr.encode()
    for value in (token, receiver.secret):
        assert value.encode() not in seen

    stopped = publisher("stop")  # graceful: TERM, the publisher closes down by itself
    assert stopped.code == OCFExit.SUCCESS and not proc.is_alive(pid)
    assert publisher.log.endswith("hakit-publisher: stopped\n")
    stamped = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z hakit-publisher: ")
    lines = [line for line in publisher.log.splitlines() if "hakit-publisher: " in line]
    assert lines and all(stamped.match(line) for line in lines), lines  # each with its time
    assert publisher.monitor(0).code == OCFExit.NOT_RUNNING
    assert publisher("stop").code == OCFExit.SUCCESS  # idempotent


def test_an_instance_that_does_not_lead_delivers_nothing(
    node: Node, cib: Cib, receiver: Receiver, publishers: list[Publisher]
) -> None:
    """Not the DC (forced off here): events are seen and kept, nothing is derived or sent.
    Without api_port there is no API; depth 10 then checks the outbox only."""
    secret = node.private("receiver.secret", receiver.secret)
    assert (
        health(
            "subscriptions",
            "--subscriptions",
            str(node.subscriptions),
            "add",
            receiver.uri,
            "--secret-file",
            str(secret),
        ).returncode
        == 0
    )
    follower = node.environment_file("follower.env", leader="0")
    publisher = Publisher(node, environment_file=str(follower))
    publishers.append(publisher)
    assert publisher("start").code == OCFExit.SUCCESS
    listening = {inode for *_, inode in proc.tcp_sockets(publisher.pid, state="0A")}
    assert not listening & proc.socket_inodes(publisher.pid)  # no API
    assert publisher.monitor(10).code == OCFExit.SUCCESS
    node.live.write_bytes(
        cib.simulate(
            cib.placed, "agent-follower-lost", "--node-fail", "node2", execute=False
        ).read_bytes()
    )
    AlertRunner(ALERT, node.outbox).node("node2", "lost")

    def seen() -> bool:
        with Outbox(str(node.outbox)) as box:
            return box.cursor(DERIVER) == 1

    wait_for(seen, what="the event seen by the follower")
    time.sleep(0.5)
    with Outbox(str(node.outbox)) as box:
        assert box.read(NOTIFICATIONS, 0) == []
    assert receiver.keys() == []

    # depth 10 notices an outbox that is gone; depth 0 still sees the process
    for path in node.outbox.parent.glob("outbox.db*"):
        path.unlink()
    assert publisher.monitor(0).code == OCFExit.SUCCESS
    failed = publisher.monitor(10)
    assert failed.code == OCFExit.ERR_GENERIC
    assert failed.exit_reason == (
        f"running but not healthy: outbox {node.outbox} is not "
        "readable: unable to open database file"
    )


def test_hung_and_killed_publishers(node: Node, publishers: list[Publisher]) -> None:
    port = free_port()
    publisher = Publisher(node, api_port=str(port))
    publishers.append(publisher)
    assert publisher("start").code == OCFExit.SUCCESS
    pid = publisher.pid
    os.kill(pid, signal.SIGSTOP)  # hung: the port is open, nothing answers
    try:
        hung = publisher.monitor(10)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert hung.code == OCFExit.ERR_GENERIC, hung.stderr  # running but broken: never 7
    assert hung.exit_reason == f"running but not healthy: no connection to 127.0.0.1:{port}"
    assert publisher.monitor(10).code == OCFExit.SUCCESS
    os.kill(pid, signal.SIGKILL)
    assert exited(pid)
    dead = publisher.monitor(0)
    assert dead.code == OCFExit.NOT_RUNNING
    assert dead.exit_reason is not None and dead.exit_reason.startswith(f"daemon pid {pid} is gone")
    assert publisher("stop").code == OCFExit.SUCCESS


def test_a_taken_port_fails_the_start_with_the_daemons_words(
    node: Node, publishers: list[Publisher]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        publisher = Publisher(node, api_port=str(taken.getsockname()[1]))
        publishers.append(publisher)
        result = publisher("start")
    assert result.code == OCFExit.ERR_GENERIC
    assert result.exit_reason == (
        "daemon exited during start; last output: "
        "hakit health: [Errno 98] Address already in use"
    )


#: a complete entry (validate-all never contacts Keystone)
CLOUDS_YAML = """\
clouds:
  hakit:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: hakit
      password: not-used-offline
      project_name: service
      user_domain_name: Default
      project_domain_name: Default
"""


@pytest.mark.parametrize(
    ("params", "code", "reason"),
    [
        (
            {"program": "/nonexistent/health"},
            5,
            "program: program /nonexistent/health is not installed here",
        ),
        (
            {"inventory": "/nonexistent/inventory.json"},
            5,
            "inventory: /nonexistent/inventory.json does not exist on this node",
        ),
        (
            {"inventory": "{tmp}/inventory.json"},
            6,
            "inventory {tmp}/inventory.json: node2: expected a list of instances",
        ),
        ({"api_port": "http"}, 6, "parameter api_port='http' is not a TCP/UDP port (1-65535)"),
        (
            {"api_port": "8797", "api_address": "192.0.2.1"},
            5,
            "api_address 192.0.2.1 cannot be bound here: [Errno 99] Cannot assign requested address",
        ),
        ({"api_base": "ftp://mano"}, 6, "api_base='ftp://mano' is not an http(s) URL"),
        (
            {"monitor_token_file": "{tmp}/empty"},
            6,
            "monitor_token_file {tmp}/empty holds no single token",
        ),
        (
            {"monitor_token_file": "/nonexistent/token"},
            5,
            "monitor_token_file: /nonexistent/token does not exist on this node",
        ),
        (
            {"outbox": "{tmp}/not-a-database"},
            5,
            "outbox {tmp}/not-a-database is not readable: file is not a database",
        ),
        ({"nova_api": "nova:8774"}, 6, "nova_api='nova:8774' is not an http(s) URL"),
        (
            {"correlation": '{"rules": [{"name": "h", "scope": "rack", "min_vnfs": 0}]}'},
            6,
            "correlation: rules[0].scope: 'rack' is not host, physnet or backend; "
            "rules[0].min_vnfs: 0 is not >= 1; rules[0].window_s: missing",
        ),
        ({"evacuate": "true"}, 6, "evacuate=true needs cloud"),
        (
            {"nova_api": "http://127.0.0.1:8774/v2.1"},
            6,
            "nova_api needs cloud (its credentials)",
        ),
        (
            {"cloud": "hakit", "clouds_yaml": "/nonexistent/clouds.yaml"},
            5,
            "clouds_yaml: /nonexistent/clouds.yaml does not exist here",
        ),
        (
            {"cloud": "other", "clouds_yaml": "{tmp}/clouds.yaml"},
            6,
            "cloud: {tmp}/clouds.yaml has no cloud 'other' (clouds: hakit)",
        ),
        (
            {
                "evacuate": "true",
                "cloud": "hakit",
                "clouds_yaml": "{tmp}/clouds.yaml",
                "nova_config": "{tmp}/nova.conf",
            },
            6,
            "{tmp}/nova.conf: [service_user] send_service_user_token = false: cinder refuses to detach an evacuated server's volumes without nova's service token; set it to true (with a [service_user] of the service role)",
        ),
        (
            {
                "evacuate": "true",
                "cloud": "hakit",
                "clouds_yaml": "{tmp}/clouds.yaml",
                "nova_config": "/nonexistent/nova.conf",
            },
            5,
            "nova_config /nonexistent/nova.conf does not exist",
        ),
        (
            {"environment_file": "{tmp}/leader.env", "CRM_meta_clone_max": "3"},
            6,
            "environment_file sets HAKIT_HEALTH_LEADER=1 in a clone of 3: every instance would deliver (duplicates); the DC's instance delivers without it",
        ),
    ],
)
def test_bad_parameters_give_the_right_code_and_reason(
    node: Node, params: dict[str, str], code: int, reason: str
) -> None:
    node.private("inventory.json", '{"node2": "vm-a"}')
    node.private("empty", "\n")
    node.private("not-a-database", "this is no SQLite file\n" * 100)
    node.private("leader.env", f"{LEADER_VARIABLE}=1\n")
    node.private("nova.conf", "[service_user]\nauth_type = password\n")  # no service token
    node.private("clouds.yaml", CLOUDS_YAML)
    tmp = str(node.tmp)
    publisher = Publisher(node, **{k: v.replace("{tmp}", tmp) for k, v in params.items()})
    for action in ("validate-all", "start"):
        result = publisher(action)
        assert (result.code, result.exit_reason) == (code, reason.replace("{tmp}", tmp)), action
    assert publisher.monitor(interval_ms=0).code == OCFExit.NOT_RUNNING  # probes still work
    assert publisher("stop").code == OCFExit.SUCCESS


def test_evacuation_with_nova_sending_its_service_token_validates(node: Node) -> None:
    """The nova.conf an evacuation with volumes needs (cinder Bug #2004555)."""
    conf = node.private("nova.conf", "[service_user]\nsend_service_user_token = True\n")
    publisher = Publisher(
        node,
        evacuate="true",
        cloud="hakit",
        clouds_yaml=str(node.private("clouds.yaml", CLOUDS_YAML)),
        nova_api="http://127.0.0.1:8774/v2.1",
        nova_config=str(conf),
    )
    result = publisher("validate-all")
    assert result.code == OCFExit.SUCCESS, result.exit_reason


def test_wrong_usage_is_2_with_a_reason() -> None:
    done = subprocess.run(
        [str(HAKIT_AGENTS / "publisher")],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"]},
    )
    assert done.returncode == OCFExit.ERR_ARGS
    assert "ocf-exit-reason:exactly one action argument is expected" in done.stderr


def test_ocf_tester_passes(node: Node) -> None:
    args = ["ocf-tester", "-n", "hakit-publisher-tester"]
    for option in (
        f"outbox={node.outbox}",
        f"subscriptions={node.subscriptions}",
        f"environment_file={node.environment_file()}",
        f"api_port={free_port()}",
        f"log_file={node.tmp / 'tester.log'}",
    ):
        args += ["-o", option]
    done = subprocess.run(
        [*args, str(HAKIT_AGENTS / "publisher")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": os.environ["PATH"], "HAKIT_RUN_DIR": str(node.tmp / "run")},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"{HAKIT_AGENTS / 'publisher'} passed all tests" in done.stdout


def test_the_installed_metadata_validates_and_names_no_secret() -> None:
    done = subprocess.run(
        ["crm_resource", "--show-metadata", "ocf:hakit:publisher"], capture_output=True, check=True
    )
    document = etree.fromstring(done.stdout)
    schema = etree.RelaxNG(etree.parse(METADATA_RNG))
    assert schema.validate(document), schema.error_log
    parameters = {p.get("name", "") for p in document.findall("parameters/parameter")}
    assert {
        "outbox",
        "subscriptions",
        "inventory",
        "api_port",
        "api_address",
        "monitor_token_file",
        "environment_file",
    } <= parameters
    assert not any("password" in name or "secret" in name or name == "token" for name in parameters)
    depths = {a.get("depth") for a in document.findall("actions/action[@name='monitor']")}
    assert depths == {None, "10", "20"}


def test_the_health_command_shows_the_table(node: Node, cib: Cib) -> None:
    """The installed entry script runs the `hakit health` verbs on its own library."""
    fenced = cib.simulate(cib.placed, "agent-table-fenced", "--node-fail", "node2")
    done = subprocess.run(
        [str(HEALTH), "--json", "--outbox", str(node.outbox)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": os.environ["PATH"], "CIB_file": str(fenced)},
    )
    assert done.returncode == 0, done.stderr
    assert [n["health"] for n in json.loads(done.stdout)["nodes"]] == [
        "OK",
        "HOST_LEFT_CLUSTER",
        "OK",
    ]
