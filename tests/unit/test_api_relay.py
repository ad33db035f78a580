"""The lab remotes' relay (hakit.lab.api_relay) on loopback: the remotes' nova-compute
reaches Keystone, placement and the stand-ins through it, whichever controller answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from hakit.lab import api_relay

#: loopback addresses: the relay listens on 127.0.0.1, the "controllers" elsewhere in 127/8
ANSWERING, SILENT = "127.0.0.2", "127.0.0.3"


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{self.connection.getsockname()[0]} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def upstream() -> Iterator[int]:
    """An HTTP server on ANSWERING at a port the relay will listen on too."""
    port = free_port()
    server = ThreadingHTTPServer((ANSWERING, port), Hello)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()


def get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        chunks = []
        while data := conn.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def test_a_connection_reaches_the_first_controller_that_answers(upstream: int) -> None:
    relay = subprocess.Popen(
        [sys.executable, "-I", api_relay.__file__, "--to", f"{SILENT},{ANSWERING}", str(upstream)]
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                answer = get(upstream, "/first")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"127.0.0.2 /first")
        for index in range(20):  # kept: the one that answered is tried first
            assert get(upstream, f"/{index}").endswith(f"127.0.0.2 /{index}".encode())
        assert relay.poll() is None
    finally:
        relay.terminate()
        relay.wait(10)


def test_with_no_controller_answering_the_client_sees_the_connection_close() -> None:
    port = free_port()
    relay = subprocess.Popen(
        [sys.executable, "-I", api_relay.__file__, "--to", SILENT, str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert get(port, "/") == b""
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert relay.poll() is None  # and it goes on serving
    finally:
        relay.terminate()
        _, errors = relay.communicate(timeout=10)
    assert "Traceback" not in errors
