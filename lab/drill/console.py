"""The console drill (`hakit drill run console-tokens`) on the lab's mini cloud (`hakit lab
cloud up`): nova-novncproxy runs as a clone of `ocf:hakit:nova-consoleauth` on every node,
and every proxy checks tokens in the one cell database.

One server is booted; nova gives a noVNC URL for it (its token is nova's own, created by
nova-compute). The URL's proxy is the one on the server's node (127.0.0.1:6080 there).
Checked as a client outside the cluster, by a websocket upgrade as noVNC makes it:

- token-valid-everywhere: the token opens the console through every node's proxy;
- proxy-recovered: the URL's proxy SIGKILLed, Pacemaker restarts it;
- valid-after-recovery: the token still opens the console through every proxy;
- bogus-refused-everywhere: a made-up token is refused by every proxy;
- expired-refused-everywhere: a second token, its `expires` set to the past in the
  database (instead of waiting out nova's 600 s token_ttl), is refused by every proxy;
- tokens-stored-hashed: the database holds sha256(token), never the token.

The console behind the proxy is the lab's VNC stand-in (hakit.lab.openstack_stubs):
nova's fake driver has none. It answers with the RFB version string, which the proxy
relays only once it accepted the token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hakit.lab import cloud, cloud_access, openstack, openstack_stubs
from hakit.lab.drill.environment import DrillError, LabEnvironment
from hakit.lab.drill.runner import Judge, wait_for

if TYPE_CHECKING:
    from hakit.lab.lab import Lab

PROXY_PORT = 6080
PROXIES = "nova-novncproxy-clone"
PROXY_PROGRAM = "/bin/nova-novncproxy"
#: Run inside a node with the OpenStack venv's python; the server URL comes on stdin.
#: argv: database, statement, parameters...; prints the rows as JSON lists of strings.
SQL = """\
import json, sys, urllib.parse, pymysql
url = urllib.parse.urlsplit(sys.stdin.readline().strip())
conn = pymysql.connect(host=url.hostname, port=url.port or 3306, database=sys.argv[1],
    user=urllib.parse.unquote(url.username or ''),
    password=urllib.parse.unquote(url.password or ''), autocommit=True)
with conn.cursor() as cur:
    cur.execute(sys.argv[2], sys.argv[3:])
    print(json.dumps([[str(v) for v in row] for row in cur.fetchall()]))
conn.close()
"""


@dataclass
class ConsoleResult:
    server: str = ""
    issuing_node: str = ""
    checks: dict[str, str] = field(default_factory=dict)  # check → passed | failed
    recovery_s: float | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "issuing_node": self.issuing_node,
            "checks": self.checks,
            "recovery_s": self.recovery_s,
            "violations": self.violations,
            "passed": self.passed,
        }


def open_console(address: str, port: int, token: str, timeout: float = 20) -> bytes | None:
    """A websocket upgrade as noVNC makes it (`/?token=`): the first message the proxy
    relays from the console, or None when it refuses (no 101, or a close frame)."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /?token={urllib.parse.quote(token)} HTTP/1.1\r\n"
        f"Host: {address}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: binary\r\n\r\n"
    )
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                return None
            head += chunk
        if head.split(b" ", 2)[1] != b"101":
            return None
        header = _recv_exactly(sock, 2)
        if header is None or header[0] & 0x0F == 8:  # closed, or a close frame
            return None
        length = header[1] & 0x7F
        if length >= 126:
            length = int.from_bytes(_recv_exactly(sock, 2 if length == 126 else 8) or b"", "big")
        return _recv_exactly(sock, length)


def _recv_exactly(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def token_of(url: str) -> str:
    """The token in a noVNC URL (`...?path=%3Ftoken%3D<token>`, or `?token=`)."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    if "token" in query:
        return query["token"][0]
    inner = urllib.parse.parse_qs(urllib.parse.urlsplit(query["path"][0]).query)
    return inner["token"][0]


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def run(env: LabEnvironment, out: Path) -> ConsoleResult:
    """The drill; result.json in `out`. The server is deleted after."""
    lab = env.lab
    placed = cloud.running(lab, compute=True)
    if not placed.get("nova-api-clone") or not placed.get("vnc-stub-clone"):
        raise DrillError("console-tokens needs the lab's mini cloud (`hakit lab cloud up`)")
    result, judge = ConsoleResult(), Judge()
    cloud.ensure_flavor(lab)
    api = cloud_access.compute_api(lab, "node1", timeout=60)
    result.server = lab.as_client(lambda: cloud.boot(api, "console-drill"))
    try:
        host, _ = wait_for(lambda: _active(lab, result.server), 180, "the server ACTIVE")
        result.issuing_node = host
        token = _new_token(lab, result.server)
        _check(judge, result, "token-valid-everywhere", _opens(env, token, everywhere=True))
        result.recovery_s = _kill_and_recover(env, host, judge)
        result.checks["proxy-recovered"] = judge.status("proxy-recovered")
        _check(judge, result, "valid-after-recovery", _opens(env, token, everywhere=True))
        _check(
            judge,
            result,
            "bogus-refused-everywhere",
            _opens(env, str(uuid.uuid4()), everywhere=False),
        )
        expired = _new_token(lab, result.server)
        _sql(
            lab,
            "nova",
            "UPDATE console_auth_tokens SET expires = UNIX_TIMESTAMP() - 1 "
            "WHERE token_hash = %s",
            sha256(expired),
        )
        _check(judge, result, "expired-refused-everywhere", _opens(env, expired, everywhere=False))
        _check(
            judge,
            result,
            "tokens-stored-hashed",
            _stored_hashed(lab, result.server, [token, expired]),
        )
    finally:
        result.violations = judge.violations
        out.mkdir(parents=True, exist_ok=True)
        (out / "result.json").write_text(json.dumps(result.as_dict(), indent=2))
        if result.server:
            lab.as_client(lambda: api.request("DELETE", f"/servers/{result.server}"))
        say(result)
    return result


def _check(judge: Judge, result: ConsoleResult, name: str, problem: str) -> None:
    if problem:
        judge.fail(name, time.time(), result.issuing_node, problem)
    result.checks[name] = judge.status(name)


def _active(lab: Lab, server: str) -> tuple[str, str] | None:
    host, status = cloud.placed(lab, [server])[server]
    if status == "ERROR":
        raise DrillError(f"server {server} went to ERROR")
    return (host, status) if status == "ACTIVE" else None


def _new_token(lab: Lab, server: str) -> str:
    api = cloud_access.compute_api(lab, "node1", timeout=60)
    body = {"remote_console": {"protocol": "vnc", "type": "novnc"}}
    answer: Any = lab.as_client(
        lambda: api.request("POST", f"/servers/{server}/remote-consoles", body)
    )
    return token_of(answer["remote_console"]["url"])


def _opens(env: LabEnvironment, token: str, *, everywhere: bool) -> str:
    """'' when the token opens the console through every proxy (`everywhere`) or through
    none; else what went wrong."""

    def attempt(node: str) -> bytes | None:
        try:
            return open_console(env.address(node), PROXY_PORT, token)
        except OSError:
            return None

    relayed = env.in_client(lambda: {node: attempt(node) for node in env.nodes})
    if everywhere:
        refused = [n for n, data in relayed.items() if data != openstack_stubs.RFB_VERSION]
        return f"refused by the proxy on {', '.join(refused)}" if refused else ""
    accepted = [n for n, data in relayed.items() if data is not None]
    return f"accepted by the proxy on {', '.join(accepted)}" if accepted else ""


def _kill_and_recover(env: LabEnvironment, node: str, judge: Judge) -> float | None:
    """SIGKILL `node`'s proxy tree; seconds until Pacemaker has it answering again."""
    before = _fail_count(env, node)
    pids = env.processes(node, PROXY_PROGRAM)
    if not pids:
        judge.fail("proxy-recovered", time.time(), node, "no nova-novncproxy runs there")
        return None
    killed = time.monotonic()
    for pid in pids:
        env.verb("kill", node=node, pid=str(pid), signal="KILL")

    def recovered() -> bool:
        status = env.status()
        return (
            status is not None
            and node in status.running_on(PROXIES)
            and _fail_count(env, node) > before
            and _answers(env, node)
        )

    try:
        wait_for(recovered, 120, f"the proxy on {node} restarted by Pacemaker")
    except DrillError as error:
        judge.fail("proxy-recovered", time.time(), node, str(error))
        return None
    return round(time.monotonic() - killed, 2)


def _fail_count(env: LabEnvironment, node: str) -> int:
    status = env.status()
    counts = status.fail_counts if status else {}
    return sum(c for (r, n), c in counts.items() if n == node and r.startswith("nova-novncproxy"))


def _answers(env: LabEnvironment, node: str) -> bool:
    def connect() -> bool:
        try:
            socket.create_connection((env.address(node), PROXY_PORT), timeout=1).close()
        except OSError:
            return False
        return True

    return bool(env.in_client(connect))


def _stored_hashed(lab: Lab, server: str, tokens: list[str]) -> str:
    rows = _sql(lab, "nova", "SELECT * FROM console_auth_tokens WHERE instance_uuid = %s", server)
    values = {value for row in rows for value in row}
    plain = [t for t in tokens if any(t in value for value in values)]
    missing = [t for t in tokens if sha256(t) not in values]
    if plain:
        return f"{len(plain)} token(s) stored in plain text"
    return f"{len(missing)} token(s) without their sha256 row" if missing else ""


def _sql(lab: Lab, database: str, statement: str, *params: str) -> list[list[str]]:
    """A statement on the lab's MariaDB, run inside node1 (the infra node's clients)."""
    venv = openstack.venv_path()
    argv = [str(venv / "bin" / "python"), "-c", SQL, database, statement, *params]
    done = lab.run("node1", argv, stdin=lab.infra_up().mysql_url + "\n", timeout=60)
    rows: list[list[str]] = json.loads(done.stdout)
    return rows


def say(result: ConsoleResult) -> None:
    checks = ", ".join(f"{name} {state}" for name, state in result.checks.items())
    print(
        f"   {'PASS' if result.passed else 'FAIL'}: server {result.server} on "
        f"{result.issuing_node}; proxy back in {result.recovery_s}s; {checks}",
        flush=True,
    )
    for violation in result.violations:
        print(
            f"   invariant {violation['invariant']} failed on {violation['node']}: "
            f"{violation['detail']}",
            flush=True,
        )
