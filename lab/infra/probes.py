"""Does a service answer? A MySQL handshake, an AMQP Connection.Start, an HTTP status line.

These are the lab's own (the infra node's start and status). TODO(issue 16): switch to the
node-side probes once resource_agents/openstack/ makes them the single implementation.
"""

from __future__ import annotations

import socket


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def mysql_answers(address: str, port: int) -> bool:
    """The server sends a protocol-10 handshake packet (or an error packet) on connect."""
    try:
        with socket.create_connection((address, port), timeout=2) as sock:
            header = _recv_exactly(sock, 4)
            if len(header) < 4:
                return False
            payload = _recv_exactly(sock, 1)
            return payload in (b"\x0a", b"\xff")
    except OSError:
        return False


def amqp_answers(address: str, port: int) -> bool:
    """AMQP 0-9-1 protocol header → a Connection.Start method frame on channel 0."""
    try:
        with socket.create_connection((address, port), timeout=2) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            frame = _recv_exactly(sock, 11)
            return frame[:3] == b"\x01\x00\x00" and frame[7:11] == b"\x00\x0a\x00\x0a"
    except OSError:
        return False


def http_answers(address: str, port: int) -> bool:
    """An HTTP/1.0 GET / gets a status line."""
    try:
        with socket.create_connection((address, port), timeout=1) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return sock.recv(5) == b"HTTP/"
    except OSError:
        return False
