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
from hakit.resource_agents.openstack import sockets
from hakit.resource_agents.openstack.urls import DEFAULT_AMQP_PORT, DEFAULT_MYSQL_PORT

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hakit.resource_agents.openstack.urls import Endpoint, TransportURL

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def resolve(endpoints: Sequence[Endpoint]) -> set[tuple[bytes, int]]:
    """(packed address, port) of every endpoint (names resolved once; an address is
    taken as it is, without getaddrinfo)."""
    import socket

    found: set[tuple[bytes, int]] = set()
    for endpoint in endpoints:
        packed = None
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                packed = socket.inet_pton(family, endpoint.host)
                break
            except OSError:
                continue
        if packed is not None:
            found.add((sockets.packed(packed), endpoint.port))
            continue
        try:
            infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            continue
        for family, _, _, _, address in infos:
            found.add((sockets.packed(socket.inet_pton(family, str(address[0]))), endpoint.port))
    return found


def broker_connections(pids: Sequence[int], transport: TransportURL) -> list[int]:
    """PIDs of the tree holding an established connection to a transport_url host."""
    wanted = resolve(transport.hosts)
    return sorted({c[0] for c in sockets.established(pids) if (c[3], c[4]) in wanted})


class Exchange:
    """A request sent at once over TCP, its answer read when asked for: the server's
    latency overlaps whatever the caller does in between."""

    def __init__(self, host: str, port: int, timeout: float, hello: bytes = b"") -> None:
        import socket

        self.sock: socket.socket | None = None
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
            if hello:
                self.sock.sendall(hello)
        except OSError:
            self.close()

    def answer(self, size: int) -> bytes | None:
        """The answer's first `size` bytes (fewer if the server closes first); None if
        connecting, sending or reading failed. Closes the connection."""
        if self.sock is None:
            return None
        answer = b""
        try:
            while len(answer) < size:
                chunk = self.sock.recv(size - len(answer))
                if not chunk:
                    break
                answer += chunk
        except OSError:
            return None
        finally:
            self.close()
        return answer

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def tcp_answers(
    host: str, port: int, timeout: float, hello: bytes = b"", size: int = 0
) -> bytes | None:
    """Connect, send `hello` (if any), read the answer's first `size` bytes (fewer if the
    server closes first; b"" with size 0); None if connecting, sending or reading fails."""
    return Exchange(host, port, timeout, hello).answer(size)


def amqp_answers(host: str, port: int = DEFAULT_AMQP_PORT, timeout: float = 2.0) -> bool:
    """The AMQP 0-9-1 protocol header gets a Connection.Start method frame on channel 0."""
    frame = tcp_answers(host, port, timeout, AMQP_HEADER, 11)
    return frame is not None and frame[:3] == b"\x01\x00\x00" and frame[7:11] == b"\x00\x0a\x00\x0a"


def mysql_answers(host: str, port: int = DEFAULT_MYSQL_PORT, timeout: float = 2.0) -> bool:
    """The server sends a protocol-10 handshake packet (or an error packet) on connect."""
    packet = tcp_answers(host, port, timeout, size=5)
    return packet is not None and packet[4:5] in (b"\x0a", b"\xff")


def http_request(host: str, port: int, timeout: float, method: str = "HEAD") -> Exchange:
    """An HTTP/1.0 request for /, sent now. HEAD by default: servers answer it sooner than
    a GET (console proxies by ~6 ms), with the same handling of the request."""
    hello = f"{method} / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: hakit-monitor\r\n\r\n"
    return Exchange(host, port, timeout, hello.encode())


def http_verdict(host: str, port: int, request: Exchange) -> str | None:
    """None when the request got a status line (any status), else why not."""
    answer = request.answer(5)
    if answer is None:
        return f"no connection to {host}:{port}"
    if answer != b"HTTP/":
        return f"{host}:{port} does not answer HTTP"
    return None


def http_refusal(host: str, port: int, timeout: float, method: str = "HEAD") -> str | None:
    """None when `host:port` answers an HTTP/1.0 request for / with a status line (any
    status), else why not."""
    return http_verdict(host, port, http_request(host, port, timeout, method))


def http_answers(host: str, port: int, timeout: float = 1.0, method: str = "HEAD") -> bool:
    """`host:port` answers an HTTP/1.0 request for / with a status line (any status)."""
    return http_refusal(host, port, timeout, method) is None


def stopped_processes(pids: Sequence[int]) -> list[int]:
    """Processes of the tree stopped by a signal (SIGSTOP: state T)."""
    return [pid for pid in pids if (info := proc.stat(pid)) is not None and info.state == "T"]


def http_problem(
    pid: int, port: int, timeout: float, pids: Sequence[int] | None = None
) -> str | None:
    """None when the tree of `pid` (`pids` when the caller has it) listens on `port` and
    answers HTTP there (on the address it listens on; a wildcard is probed on loopback),
    else why not."""
    return http_problem_later(pid, port, timeout, pids)()


def http_problem_later(
    pid: int, port: int, timeout: float, pids: Sequence[int] | None = None
) -> Callable[[], str | None]:
    """`http_problem` in two halves: the request to the first address the tree listens
    on is sent now; calling the result reads its answer (then tries the other addresses)."""
    import socket

    addresses = sockets.listening_addresses(proc.tree(pid) if pids is None else pids, port)
    if not addresses:
        nothing = f"nothing in the process tree of pid {pid} listens on TCP port {port}"
        return lambda: nothing
    hosts = []
    for packed in addresses:
        host = socket.inet_ntop(socket.AF_INET6 if len(packed) == 16 else socket.AF_INET, packed)
        hosts.append({"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host))  # noqa: S104
    first = http_request(hosts[0], port, timeout)

    def verdict() -> str | None:
        problem = http_verdict(hosts[0], port, first)
        for host in hosts[1:]:
            if problem is None:
                break
            problem = http_refusal(host, port, timeout)
        return problem

    return verdict
