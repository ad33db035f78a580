"""Console drill: two nova-novncproxies, active/active, on tokens shared in the database.

Real: nova 34 from the pinned venv — nova-api (wsgiref, the venv's api-paste.ini:
keystonemiddleware's authtoken against the session's Keystone), nova-conductor, one nova-scheduler (vs1), one
nova-compute (vnc1), placement 16.0.0 — and two nova-novncproxy instances, each run by
the installed `ocf:hakit:nova-consoleauth` agent as an instance of a 2-clone (nodes px1,
px2; its own run directory and its own `novncproxy_port` in an extra config file), on the
session's MariaDB and RabbitMQ, on 127.0.0.1 only. The tokens are nova's own: created by
nova-compute (`POST /servers/{id}/remote-consoles`, microversion 2.60) in the cell
database's `console_auth_tokens`, checked by each proxy against that table and by the
`validate_console_port` RPC to nova-compute.

Stand-ins: nova's fake.MediumFakeDriver for the hypervisor; the stdlib glance and neutron
stubs of hakit.lab.openstack_stubs; and the VNC server: the fake driver's console is
`fakevncconsole.com:6969`, so the test rewrites only the `host` column of each token row
to 127.0.0.1 (the port must stay 6969: validate_console_port compares it with the
driver's) and serves 127.0.0.1:6969 itself — it answers the proxy's
`CONNECT <internal_access_path>` with 200 and sends the RFB 3.8 version string, which the
proxy relays to the websocket client; that relayed string is the client's proof that the
proxy accepted the token and reached the console.

The expired token is a second real token whose `expires` column the test sets to the past
(nova's own token_ttl stays at its 600 s default, so the first token outlives the drill).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socketserver
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hakit.lab import openstack
from hakit.lab.drill.console import open_console, sha256, token_of
from hakit.lab.openstack_stubs import RFB_VERSION, VncStub
from hakit.ocf import OCFExit, proc
from tests.openstack.conftest import Cloud, Resource, in_parallel, wait_until
from tests.openstack.infra import http_answers, port_free
from tests.openstack.nova_cloud import NovaCloud, merged, nova_cloud, stub_settings

NOVA_API_PORT = 18974
PLACEMENT_PORT = 18978
GLANCE_PORT = 19392
NEUTRON_PORT = 19796
PROXY_PORTS = (16180, 16181)  # px1 (in novncproxy_base_url), px2
CONSOLE_PORT = 6969  # the fake driver's; validate_console_port rejects any other
COMPUTE = "vnc1"
SCHEDULER = "vs1"
PROJECT = "console-drill"  # hakit's user is its admin: the drill's servers, apart
FLAVOR = "console-1vcpu"
MICROVERSION = "2.60"
REFUSED = "invalid or has expired"


class ConsoleServer(socketserver.ThreadingTCPServer):
    """The console on 127.0.0.1:6969: answers `CONNECT path` with 200, then RFB 3.8."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", CONSOLE_PORT), ConsoleHandler)
        self.lock = threading.Lock()
        self.paths: list[str] = []  # the CONNECT path of every connection, in order

    @property
    def connections(self) -> int:
        with self.lock:
            return len(self.paths)


class ConsoleHandler(VncStub):
    def connected(self, path: str) -> None:
        server = self.server
        assert isinstance(server, ConsoleServer)
        with server.lock:
            server.paths.append(path)


def api(nova: NovaCloud, method: str, path: str, body: object = None) -> tuple[int, Any]:
    """The compute API as the admin at MICROVERSION: (status, JSON or None)."""
    connection = http.client.HTTPConnection("127.0.0.1", nova.api_port, timeout=60)
    headers = {
        "X-Auth-Token": nova.api.cloud.token(),
        "Accept": "application/json",
        "OpenStack-API-Version": f"compute {MICROVERSION}",
    }
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, f"/v2.1{path}", body=data, headers=headers)
        response = connection.getresponse()
        text = response.read()
    finally:
        connection.close()
    return response.status, json.loads(text) if text else None


@dataclass
class Proxy:
    name: str
    port: int
    resource: Resource

    def output(self) -> str:
        return Path(self.resource.env["OCF_RESKEY_log_file"]).read_text(errors="replace")

    def count(self, text: str) -> int:
        return self.output().count(text)


@dataclass
class Drill:
    nova: NovaCloud
    cloud: Cloud
    server: str
    console: ConsoleServer
    proxies: tuple[Proxy, Proxy]

    def token_sql(self, token: str, statement: str) -> str:
        """`statement` in the cell database (nova), on the token's row of
        console_auth_tokens (found by its sha256: hex, nothing to quote)."""
        return self.cloud.mariadb.sql(f"USE nova; {statement} WHERE token_hash='{sha256(token)}';")

    def new_token(self) -> tuple[str, str]:
        """A console for the server through nova-api: (URL, token); the token row's host
        then rewritten to 127.0.0.1 (only that column)."""
        status, answer = api(
            self.nova,
            "POST",
            f"/servers/{self.server}/remote-consoles",
            {"remote_console": {"protocol": "vnc", "type": "novnc"}},
        )
        assert status == 200, (status, answer)
        url = answer["remote_console"]["url"]
        token = token_of(url)
        self.token_sql(token, "UPDATE console_auth_tokens SET host='127.0.0.1'")
        row = self.token_sql(token, "SELECT host, port FROM console_auth_tokens")
        assert row.split() == ["127.0.0.1", str(CONSOLE_PORT)], row
        return url, token

    def accepted(self, proxy: Proxy, token: str) -> float:
        """The proxy takes the token and reaches the console; the seconds it took."""
        before, logged = self.console.connections, proxy.count("connecting to: 127.0.0.1:6969")
        began = time.monotonic()
        message = open_console("127.0.0.1", proxy.port, token)
        took = time.monotonic() - began
        assert message == RFB_VERSION, (proxy.name, message, proxy.output()[-2000:])
        assert self.console.connections == before + 1
        wait_until(
            lambda: proxy.count("connecting to: 127.0.0.1:6969") > logged,
            5,
            f"{proxy.name} logs 'connecting to'",
        )
        return took

    def refused(self, proxy: Proxy, token: str) -> None:
        """The proxy closes the websocket without reaching the console, and says why."""
        before, logged = self.console.connections, proxy.count(REFUSED)
        message = open_console("127.0.0.1", proxy.port, token)
        assert message is None, (proxy.name, message)
        wait_until(lambda: proxy.count(REFUSED) > logged, 5, f"{proxy.name} logs {REFUSED!r}")
        assert self.console.connections == before


@pytest.fixture(scope="module")
def drill(cloud: Cloud, module_tmp: Path) -> Iterator[Drill]:
    """The cloud, one ACTIVE server on vnc1, the console stand-in, px1 and px2 started."""
    for port in (*PROXY_PORTS, CONSOLE_PORT):
        if not port_free(port):
            pytest.fail(f"127.0.0.1:{port} is busy")
    began = time.monotonic()
    root = module_tmp / "console"
    settings = merged(
        stub_settings(GLANCE_PORT, NEUTRON_PORT),
        {
            "vnc": {"novncproxy_base_url": f"http://127.0.0.1:{PROXY_PORTS[0]}/vnc_auto.html"},
        },
    )
    with nova_cloud(
        cloud,
        root,
        api_port=NOVA_API_PORT,
        placement_port=PLACEMENT_PORT,
        placement_database="placement_console",
        settings=settings,
        cloud_name=cloud.keystone.project_cloud(PROJECT),
        api_timeout=60,
    ) as nova:
        nova.start_stubs(GLANCE_PORT, NEUTRON_PORT)
        nova.start_compute(COMPUTE)
        nova.start_scheduler(SCHEDULER)
        wait_until(
            lambda: nova.computes_up([COMPUTE])
            and nova.services_up("nova-scheduler", [SCHEDULER])
            and http_answers(GLANCE_PORT)
            and http_answers(NEUTRON_PORT),
            120,
            "vnc1, vs1 and the stubs up",
        )
        discovered = nova.discover_hosts()
        up = time.monotonic() - began
        nova.create_flavor(FLAVOR)
        server = nova.boot("console-drill", FLAVOR)

        def active() -> bool:
            answer = nova.request("GET", f"/servers/{server}")["server"]
            assert answer["status"] != "ERROR", answer.get("fault")
            return bool(answer["status"] == "ACTIVE")

        booted = wait_until(active, 60, "the server ACTIVE")
        proxies: list[Proxy] = []
        for index, port in enumerate(PROXY_PORTS):
            name = f"px{index + 1}"
            tmp = root / name
            tmp.mkdir()
            extra = openstack.write_config(tmp / "proxy.conf", {"vnc": {"novncproxy_port": port}})
            resource = Resource(
                "nova-consoleauth",
                tmp,
                f"console:{index}",
                binary=cloud.bin("nova-novncproxy"),
                config=f"{cloud.nova_conf} {nova.config} {extra}",
                CRM_meta_clone_max="2",
                CRM_meta_clone=str(index),
                CRM_meta_on_node=name,
            )
            proxies.append(Proxy(name, port, resource))
        console = ConsoleServer()
        threading.Thread(target=console.serve_forever, daemon=True).start()
        try:
            started = time.monotonic()

            def start(proxy: Proxy) -> None:
                result = proxy.resource("start")
                assert result.code == OCFExit.SUCCESS, (
                    proxy.name,
                    result.stderr,
                    proxy.output()[-2000:],
                )

            in_parallel(*(lambda p=proxy: start(p) for proxy in proxies))
            print(
                f"\nconsole cloud up in {up:.1f}s (discover_hosts {discovered:.1f}s); server "
                f"ACTIVE in {booted:.1f}s; px1, px2 started by the agent in "
                f"{time.monotonic() - started:.1f}s"
            )
            yield Drill(nova, cloud, server, console, (proxies[0], proxies[1]))
        finally:
            for proxy in proxies:
                result = proxy.resource("stop")
                assert result.code == OCFExit.SUCCESS, (proxy.name, result.stderr)
            console.shutdown()
            console.server_close()


@pytest.fixture(scope="module")
def first(drill: Drill) -> tuple[str, str]:
    """The one token of tests 1, 2 and 4: (URL, token)."""
    return drill.new_token()


def test_one_token_validates_through_both_proxies(
    drill: Drill, first: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, token = first
    assert urllib.parse.urlsplit(url).port == PROXY_PORTS[0], url  # novncproxy_base_url
    status, answer = api(drill.nova, "GET", f"/os-console-auth-tokens/{token}")
    assert status == 200, (status, answer)
    assert answer["console"]["instance_uuid"] == drill.server
    assert (answer["console"]["host"], answer["console"]["port"]) == ("127.0.0.1", CONSOLE_PORT)
    took = [drill.accepted(proxy, token) for proxy in drill.proxies]
    assert drill.console.connections == 2
    # the proxies open the console at the token's internal_access_path, as nova-compute set it
    path = drill.token_sql(token, "SELECT internal_access_path FROM console_auth_tokens").strip()
    assert drill.console.paths == [path, path], (drill.console.paths, path)
    with capsys.disabled():
        print(
            f"\none token through px1 in {took[0] * 1000:.0f} ms, px2 in "
            f"{took[1] * 1000:.0f} ms (console reached from both)"
        )


def test_killed_proxy_recovered_by_the_agent_token_still_valid(
    drill: Drill, first: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, token = first
    px1, px2 = drill.proxies
    resource = px1.resource
    assert resource.monitor(10).code == OCFExit.SUCCESS
    pid = resource.pid
    # the connections' forked handlers have exited: only the listener is left to kill
    wait_until(lambda: proc.tree(pid) == [pid], 10, "px1's handlers gone")
    began = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not proc.is_alive(pid), 10, "px1 gone")
    result = resource.monitor(10)
    assert result.code == OCFExit.NOT_RUNNING, (result.code, result.stderr)
    detected = time.monotonic() - began
    during = drill.accepted(px2, token)  # the other instance serves meanwhile
    stopped = time.monotonic()
    assert resource("stop").code == OCFExit.SUCCESS
    stop_s = time.monotonic() - stopped
    started = time.monotonic()
    result = resource("start")
    assert result.code == OCFExit.SUCCESS, (result.stderr, px1.output()[-2000:])
    start_s = time.monotonic() - started
    recovered = time.monotonic() - began
    assert resource.pid != pid and resource.monitor(10).code == OCFExit.SUCCESS
    took = [drill.accepted(proxy, token) for proxy in drill.proxies]
    with capsys.disabled():
        print(
            f"\npx1 SIGKILLed: monitor 7 after {detected:.1f}s, token through px2 meanwhile "
            f"in {during * 1000:.0f} ms; stop {stop_s:.1f}s + start {start_s:.1f}s; "
            f"recovered {recovered:.1f}s after the kill; same token then through px1 in "
            f"{took[0] * 1000:.0f} ms, px2 in {took[1] * 1000:.0f} ms"
        )


def test_bogus_and_expired_tokens_refused_by_both(
    drill: Drill, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = str(uuid.uuid4())
    _, expiring = drill.new_token()
    drill.accepted(drill.proxies[1], expiring)  # valid until...
    drill.token_sql(expiring, "UPDATE console_auth_tokens SET expires=UNIX_TIMESTAMP()-1")
    for token in (bogus, expiring):
        status, _ = api(drill.nova, "GET", f"/os-console-auth-tokens/{token}")
        assert status == 404, (token, status)
        for proxy in drill.proxies:
            drill.refused(proxy, token)
    with capsys.disabled():
        print("\nbogus and expired tokens: 404 from nova-api, refused by px1 and px2")


def test_tokens_are_stored_hashed(drill: Drill, first: tuple[str, str]) -> None:
    _, token = first
    row = drill.token_sql(token, "SELECT * FROM console_auth_tokens").rstrip("\n").split("\t")
    columns = drill.cloud.mariadb.sql("SHOW COLUMNS FROM nova.console_auth_tokens;")
    named = dict(zip([line.split("\t")[0] for line in columns.splitlines()], row, strict=True))
    assert named["token_hash"] == sha256(token)
    assert named["instance_uuid"] == drill.server
    assert not [name for name, value in named.items() if token in value], named
    everything = drill.cloud.mariadb.sql("SELECT * FROM nova.console_auth_tokens;")
    assert everything and token not in everything
    print(f"\ntoken row: {named}")
