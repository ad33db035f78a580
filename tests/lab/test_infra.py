"""The lab's infra node for real: MariaDB and RabbitMQ in a scratch netns, used from another.

Two scratch namespaces joined by a veth pair (no bridge): `hakit-infra-t` (10.78.0.5) runs
the services, `hakit-cli-t` (10.78.0.6) is the client. Needs root and the Debian packages
(installed by ensure_packages() if missing). Timings are printed (`pytest -s`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hakit.lab import infra
from hakit.lab.errors import LabError
from hakit.lab.infra import infra_status, start_infra, stop_infra

INFRA_NS, CLIENT_NS = "hakit-infra-t", "hakit-cli-t"
INFRA_IP, CLIENT_IP = "10.78.0.5", "10.78.0.6"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, daemons)")

# AMQP 0-9-1 PLAIN login, run by the system python inside the client namespace: prints the
# (class, method) answering Connection.Start-Ok: (10, 30) Tune = logged in.
AMQP_LOGIN = r"""
import os, socket, struct, sys
def frame(sock):
    head = b""
    while len(head) < 7:
        chunk = sock.recv(7 - len(head))
        if not chunk:
            return None
        head += chunk
    kind, channel, size = struct.unpack(">BHI", head)
    body = b""
    while len(body) < size + 1:
        body += sock.recv(size + 1 - len(body))
    return kind, body[:-1]
sock = socket.create_connection((sys.argv[1], 5672), timeout=5)
sock.sendall(b"AMQP\x00\x00\x09\x01")
kind, payload = frame(sock)
assert kind == 1 and payload[:4] == b"\x00\x0a\x00\x0a", (kind, payload[:4])
user, password = os.environ["AMQP_USER"].encode(), os.environ["AMQP_PASSWORD"].encode()
response = b"\0" + user + b"\0" + password
args = (b"\0\0\0\0" + b"\x05PLAIN" + struct.pack(">I", len(response)) + response
        + b"\x05en_US")
method = b"\x00\x0a\x00\x0b" + args
sock.sendall(struct.pack(">BHI", 1, 0, len(method)) + method + b"\xce")
try:
    answer = frame(sock)
except ConnectionResetError:
    answer = None
print("closed" if answer is None else struct.unpack(">HH", answer[1][:4]))
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def netns_pids(netns: str) -> list[int]:
    out = subprocess.run(
        ["ip", "netns", "pids", netns], capture_output=True, text=True, check=False
    )
    return [int(p) for p in out.stdout.split()]


def delete_netns() -> None:
    for netns in (INFRA_NS, CLIENT_NS):
        if Path("/run/netns", netns).exists():
            for pid in netns_pids(netns):  # only if a test failed half-way
                os.kill(pid, 9)
            ip("netns", "delete", netns)


@pytest.fixture(scope="module")
def scratch_netns() -> Iterator[None]:
    infra.ensure_packages()
    delete_netns()
    try:
        ip("netns", "add", INFRA_NS)
        ip("netns", "add", CLIENT_NS)
        ip("link", "add", "hkt-infra0", "type", "veth", "peer", "name", "hkt-cli0")
        for link, netns, address in (
            ("hkt-infra0", INFRA_NS, INFRA_IP),
            ("hkt-cli0", CLIENT_NS, CLIENT_IP),
        ):
            ip("link", "set", link, "netns", netns)
            ip("-n", netns, "link", "set", link, "name", "eth0")
            ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", netns, "link", "set", "eth0", "up")
            ip("-n", netns, "link", "set", "lo", "up")
        yield
    finally:
        delete_netns()


@pytest.fixture
def state_dir(scratch_netns: None) -> Iterator[Path]:
    # Not under pytest's tmp_path: its parent is 0700, and mysql/rabbitmq must get through.
    path = Path(tempfile.mkdtemp(prefix="hakit-infra-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path / "infra"
    finally:
        try:
            stop_infra(path / "infra", INFRA_NS, timeout=30)
        finally:
            shutil.rmtree(path)


def in_client(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", CLIENT_NS, *argv],
        env={"PATH": os.environ["PATH"], **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def mariadb_query(user: str, password: str, sql: str) -> subprocess.CompletedProcess[str]:
    return in_client(
        "mariadb",
        "--no-defaults",
        "-h",
        INFRA_IP,
        "-u",
        user,
        "--batch",
        "--skip-column-names",
        "-e",
        sql,
        "hakit",
        env={"MYSQL_PWD": password},
    )


def amqp_login(user: str, password: str) -> str:
    done = in_client(
        "/usr/bin/python3",
        "-I",
        "-c",
        AMQP_LOGIN,
        INFRA_IP,
        env={"AMQP_USER": user, "AMQP_PASSWORD": password},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_infra_lifecycle(state_dir: Path) -> None:
    started = time.monotonic()
    info = start_infra(state_dir, INFRA_NS, INFRA_IP)
    first_start = time.monotonic() - started
    print(f"\nfirst start (incl. mariadb-install-db): {first_start:.2f} s")

    db_url, amqp_url = urlsplit(info.mysql_url), urlsplit(info.transport_url)
    assert (info.address, info.mysql_port, info.amqp_port) == (INFRA_IP, 3306, 5672)
    assert (db_url.scheme, db_url.hostname, db_url.path) == ("mysql+pymysql", INFRA_IP, "/hakit")
    assert (amqp_url.scheme, amqp_url.hostname, amqp_url.port) == ("rabbit", INFRA_IP, 5672)
    assert db_url.username and db_url.password and amqp_url.username and amqp_url.password
    assert db_url.password not in repr(info) and amqp_url.password not in repr(info)
    assert {"mariadbd", "beam.smp", "epmd"} <= info.pids.keys()
    assert {info.pids["mariadbd"], info.pids["beam.smp"]} <= set(netns_pids(INFRA_NS))
    assert (state_dir / "credentials.json").stat().st_mode & 0o777 == 0o600

    # MariaDB from the client namespace, with the generated credentials (password via env)
    done = mariadb_query(db_url.username, db_url.password, "select 1, current_user()")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "hakit@%"]
    denied = mariadb_query(db_url.username, "wrong", "select 1")
    assert denied.returncode != 0 and "Access denied" in denied.stderr

    # RabbitMQ: AMQP handshake and PLAIN login from the client namespace
    assert amqp_login(amqp_url.username, amqp_url.password) == "(10, 30)"  # Connection.Tune
    assert amqp_login(amqp_url.username, "wrong") != "(10, 30)"
    assert amqp_login("guest", "guest") != "(10, 30)"  # no default user

    # Listeners: services on the address, epmd and distribution on the netns's loopback
    ss = subprocess.run(
        ["ip", "netns", "exec", INFRA_NS, "ss", "-Hltn"], capture_output=True, text=True, check=True
    ).stdout
    listening = {line.split()[3] for line in ss.splitlines()}
    assert {f"{INFRA_IP}:3306", f"{INFRA_IP}:5672", "127.0.0.1:4369", "127.0.0.1:25672"} <= (
        listening
    )
    assert not any(addr.startswith(("0.0.0.0:", "*:", "[::]:")) for addr in listening)

    # No password on any command line
    for pid in netns_pids(INFRA_NS):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        assert db_url.password not in cmdline and amqp_url.password not in cmdline

    status = infra_status(state_dir, INFRA_NS)
    assert status["running"] and status["mariadb"]["answering"] and status["rabbitmq"]["answering"]

    # Idempotent: same processes, quickly
    started = time.monotonic()
    again = start_infra(state_dir, INFRA_NS, INFRA_IP)
    assert time.monotonic() - started < 2
    assert again.pids == info.pids and again.mysql_url == info.mysql_url

    started = time.monotonic()
    stop_infra(state_dir, INFRA_NS)
    print(f"stop: {time.monotonic() - started:.2f} s")
    assert netns_pids(INFRA_NS) == []
    status = infra_status(state_dir, INFRA_NS)
    assert not status["mariadb"]["running"] and not status["rabbitmq"]["running"]
    stop_infra(state_dir, INFRA_NS)  # idempotent

    # Restart on the existing data: same credentials still work
    started = time.monotonic()
    restarted = start_infra(state_dir, INFRA_NS, INFRA_IP)
    print(f"restart: {time.monotonic() - started:.2f} s")
    assert restarted.mysql_url == info.mysql_url and restarted.pids != info.pids
    assert mariadb_query(db_url.username, db_url.password, "select 1").returncode == 0
    assert amqp_login(amqp_url.username, amqp_url.password) == "(10, 30)"

    # RabbitMQ killed: the next start restarts only RabbitMQ
    os.kill(restarted.pids["beam.smp"], 9)
    deadline = time.monotonic() + 10
    while infra_status(state_dir, INFRA_NS)["rabbitmq"]["running"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    started = time.monotonic()
    healed = start_infra(state_dir, INFRA_NS, INFRA_IP)
    print(f"restart of RabbitMQ alone: {time.monotonic() - started:.2f} s")
    assert healed.pids["mariadbd"] == restarted.pids["mariadbd"]
    assert healed.pids["beam.smp"] != restarted.pids["beam.smp"]
    assert amqp_login(amqp_url.username, amqp_url.password) == "(10, 30)"

    stop_infra(state_dir, INFRA_NS)
    assert netns_pids(INFRA_NS) == []


def test_user_errors(state_dir: Path) -> None:
    with pytest.raises(LabError, match="network namespace 'hakit-nope' not found"):
        start_infra(state_dir, "hakit-nope", INFRA_IP)
    with pytest.raises(LabError, match="10.78.0.99 is not an address of netns"):
        start_infra(state_dir, INFRA_NS, "10.78.0.99")
    busy = infra.in_netns(INFRA_NS, lambda: socket.create_server((INFRA_IP, 3306)))
    try:
        with pytest.raises(LabError, match="port 3306 on 10.78.0.5 .* is busy"):
            start_infra(state_dir, INFRA_NS, INFRA_IP)
    finally:
        busy.close()
    assert netns_pids(INFRA_NS) == []  # nothing was started by the failed attempts
    assert not json.loads((state_dir / "credentials.json").read_text()).keys() - {
        "mysql",
        "rabbitmq",
        "cookie",
    }
