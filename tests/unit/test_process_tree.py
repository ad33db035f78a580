"""The process tree's sockets as the monitors read them, with a real listening process and
PIDs that are gone: PIDs wrap (pid_max is 32768 here), so a short-lived worker can sort
before its parent and exit between the tree's listing and the look at its sockets."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from hakit.ocf import proc
from hakit.resource_agents.openstack import sockets
from hakit.resource_agents.openstack.probes import http_problem

SERVER = """
import http.server, socket, sys
server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
client = socket.create_connection(server.server_address)
peer, _ = server.socket.accept()
print(server.server_address[1], client.getsockname()[1], flush=True)
server.serve_forever()
"""


@pytest.fixture
def server() -> Iterator[tuple[int, int, int]]:
    """(pid, listening port, local port of its connection to itself)."""
    process = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port, client_port = map(int, process.stdout.readline().split())
    yield process.pid, port, client_port
    process.kill()
    process.wait()


def gone_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_the_tree_lists_its_root_first(server: tuple[int, int, int]) -> None:
    pid, _, _ = server
    assert proc.tree(pid)[0] == pid
    assert proc.tree(gone_pid()) == []


def test_a_gone_pid_before_the_root_hides_no_listener(server: tuple[int, int, int]) -> None:
    pid, port, _ = server
    assert sockets.listening_addresses([gone_pid(), pid], port) == [b"\x7f\0\0\1"]
    assert proc.listening_addresses(pid, port) == [b"\x7f\0\0\1"]
    assert sockets.listening_addresses([gone_pid()], port) == []


def test_a_gone_pid_before_the_root_hides_no_connection(server: tuple[int, int, int]) -> None:
    pid, port, client_port = server
    for established in (sockets.established, proc.established):
        ports = {(local, remote) for _, _, local, _, remote in established([gone_pid(), pid])}
        assert (client_port, port) in ports, established


def test_the_http_check_with_a_gone_pid_first(server: tuple[int, int, int]) -> None:
    pid, port, _ = server
    assert http_problem(pid, port, 2.0, [gone_pid(), pid]) is None
    assert "nothing in the process tree" in str(http_problem(pid, port, 2.0, [gone_pid()]))
