"""Does it answer? Cheap network probes of the agents' dependencies, standard library
only: TCP, an AMQP 0-9-1 Connection.Start, a MySQL handshake, an HTTP status line; and
what a process tree holds (broker connections, listening ports, stopped processes).

The single implementation for the agents, the lab's infra node and the tests:
`amqp_answers(host, port, timeout)`, `mysql_answers(host, port, timeout)`,
`http_answers(host, port, timeout)` return a bool; `http_refusal` says why not.
"""

from __future__ import annotations

from hakit.ocf import proc
from hakit.ocf._typing import TYPE_CHECKING
from hakit.resource_agents.openstack.urls import DEFAULT_AMQP_PORT, DEFAULT_MYSQL_PORT

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hakit.resource_agents.openstack.urls import Endpoint, TransportURL

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def resolve(endpoints: Sequence[Endpoint]) -> set[tuple[bytes, int]]:
    """(packed address, port) of every endpoint (names resolved once)."""
    import socket

    found: set[tuple[bytes, int]] = set()
    for endpoint in endpoints:
        try:
            infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            continue
        for family, _, _, _, address in infos:
            packed = socket.inet_pton(family, str(address[0]))
            if len(packed) == 16 and packed[:12] == b"\0" * 10 + b"\xff\xff":
                packed = packed[12:]
            found.add((packed, endpoint.port))
    return found


def broker_connections(pids: Sequence[int], transport: TransportURL) -> list[int]:
    """PIDs of the tree holding an established connection to a transport_url host."""
    wanted = resolve(transport.hosts)
    return sorted({c[0] for c in proc.established(pids) if (c[3], c[4]) in wanted})


def tcp_answers(
    host: str, port: int, timeout: float, hello: bytes = b"", size: int = 0
) -> bytes | None:
    """Connect, send `hello` (if any), read the answer's first `size` bytes (fewer if the
    server closes first; b"" with size 0); None if connecting, sending or reading fails."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if hello:
                sock.sendall(hello)
            answer = b""
            while len(answer) < size:
                chunk = sock.recv(size - len(answer))
                if not chunk:
                    break
                answer += chunk
            return answer
    except OSError:
        return None


def amqp_answers(host: str, port: int = DEFAULT_AMQP_PORT, timeout: float = 2.0) -> bool:
    """The AMQP 0-9-1 protocol header gets a Connection.Start method frame on channel 0."""
    frame = tcp_answers(host, port, timeout, AMQP_HEADER, 11)
    return frame is not None and frame[:3] == b"\x01\x00\x00" and frame[7:11] == b"\x00\x0a\x00\x0a"


def mysql_answers(host: str, port: int = DEFAULT_MYSQL_PORT, timeout: float = 2.0) -> bool:
    """The server sends a protocol-10 handshake packet (or an error packet) on connect."""
    packet = tcp_answers(host, port, timeout, size=5)
    return packet is not None and packet[4:5] in (b"\x0a", b"\xff")


def http_refusal(host: str, port: int, timeout: float) -> str | None:
    """None when `host:port` answers HTTP (any status), else why not."""
    hello = f"GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: hakit-monitor\r\n\r\n".encode()
    answer = tcp_answers(host, port, timeout, hello, 5)
    if answer is None:
        return f"no connection to {host}:{port}"
    if answer != b"HTTP/":
        return f"{host}:{port} does not answer HTTP"
    return None


def http_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """`host:port` answers an HTTP/1.0 GET / with a status line (any status)."""
    return http_refusal(host, port, timeout) is None


def stopped_processes(pids: Sequence[int]) -> list[int]:
    """Processes of the tree stopped by a signal (SIGSTOP: state T)."""
    return [pid for pid in pids if (info := proc.stat(pid)) is not None and info.state == "T"]


def http_problem(pid: int, port: int, timeout: float) -> str | None:
    """None when the tree of `pid` listens on `port` and answers HTTP there (on the
    address it listens on; a wildcard is probed on loopback), else why not."""
    import socket

    addresses = proc.listening_addresses(pid, port)
    if not addresses:
        return f"nothing in the process tree of pid {pid} listens on TCP port {port}"
    problem = None
    for packed in addresses:
        family = socket.AF_INET6 if len(packed) == 16 else socket.AF_INET
        host = socket.inet_ntop(family, packed)
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
        problem = http_refusal(host, port, timeout)
        if problem is None:
            return None
    return problem
