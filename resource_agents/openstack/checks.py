"""The monitor's checks beyond the process: depth 10 (HTTP, broker connections, token
database or heartbeat) and depth 20 (the queues' consumers through the RabbitMQ
management API), collected as `Findings`."""

from __future__ import annotations

from hakit.ocf import Context, OCFExit, proc
from hakit.ocf._typing import TYPE_CHECKING
from hakit.resource_agents.openstack import sockets
from hakit.resource_agents.openstack.config import option
from hakit.resource_agents.openstack.database import (
    DatabaseError,
    heartbeat_query,
    heartbeat_rows,
    query,
)
from hakit.resource_agents.openstack.dependency_health import (
    Health,
    dependency_verdict,
    peer_values,
)
from hakit.resource_agents.openstack.parameters import (
    MANAGEMENT_PASSWORD,
    MANAGEMENT_URL,
    MANAGEMENT_USER,
    RECONNECT_GRACE,
)
from hakit.resource_agents.openstack.probes import (
    amqp_answers,
    broker_connections,
    http_problem_later,
    stopped_processes,
)
from hakit.resource_agents.openstack.urls import host_port

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hakit.resource_agents.openstack.facts import Facts

#: Services that save their row at start but heartbeat only later, by design: cinder-scheduler
#: first waits up to scheduler_driver_init_wait_time for the volume backends' capabilities
#: (cinder/service.py: init_host_with_rpc runs before the report timer starts).
LATE_FIRST_HEARTBEAT = {"cinder-scheduler": ("DEFAULT", "scheduler_driver_init_wait_time", "60")}


class Findings:
    """What a depth-10/20 monitor found: local failures and dependency verdicts."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.degraded: list[str] = []

    def add(self, code: int, reason: str) -> None:
        (self.failures if code == OCFExit.ERR_GENERIC else self.degraded).append(reason)


def check_dependency(
    ctx: Context, facts: Facts, health: Health, findings: Findings, name: str, ok: bool, detail: str
) -> None:
    down_for = health.set(name, ok)
    if ok:
        return
    grace = reconnect_grace(ctx)
    peers = peer_values(ctx, name) if down_for >= grace else None
    code, reason = dependency_verdict(name, down_for, grace, peers)
    findings.add(code, f"{reason}: {detail}")


def check_service(ctx: Context, facts: Facts, pid: int, health: Health, findings: Findings) -> None:
    """Depth 10: HTTP, broker connections, token database or heartbeat."""
    pids = proc.tree(pid)
    timeout = min(3.0, max(ctx.remaining(2), 0.5))
    http = None
    if facts.http_port is not None:  # the server answers while the other checks run
        http = http_problem_later(pid, facts.http_port, timeout, pids)
    others = Findings()
    broker_down = check_broker(ctx, facts, pids, health, others, timeout)
    check_database(ctx, facts, pid, pids, health, others, timeout, recovering=broker_down)
    problem = http() if http is not None else None
    if problem:
        findings.add(OCFExit.ERR_GENERIC, problem)
    findings.failures += others.failures
    findings.degraded += others.degraded


def check_broker(
    ctx: Context,
    facts: Facts,
    pids: Sequence[int],
    health: Health,
    findings: Findings,
    timeout: float,
) -> bool:
    """The tree's connections to the broker; True when there are none."""
    if not (facts.uses_broker and facts.transport is not None):
        return False
    hosts = facts.transport.hosts
    connected = broker_connections(pids, facts.transport)
    detail = f"no connection from pids {list(pids)} to {', '.join(map(repr, hosts))}"
    if not connected:
        refusing = [repr(e) for e in hosts if not amqp_answers(e.host, e.port, timeout)]
        answer = f"not answering: {', '.join(refusing)}" if refusing else "the broker answers"
        detail += f" ({answer})"
    check_dependency(ctx, facts, health, findings, "broker", bool(connected), detail)
    return not connected


def check_database(
    ctx: Context,
    facts: Facts,
    pid: int,
    pids: Sequence[int],
    health: Health,
    findings: Findings,
    timeout: float,
    *,
    recovering: bool,
) -> None:
    """Console proxies: the token table answers. Others: the heartbeat is fresh (a stale
    one right after a broker or database outage, or before a late first heartbeat is
    due, is degraded; otherwise hung)."""
    if facts.database is None:
        return
    sql: str
    args: tuple[object, ...] = ()
    if facts.kind == "console":
        sql = "SELECT 1 FROM console_auth_tokens LIMIT 1"
    elif facts.heartbeat and facts.service_binary:
        sql, args = heartbeat_query(facts.database, facts.service_binary, facts.rows, "1970-01-01")
    else:
        return
    try:
        rows = query(facts.database, sql, args, timeout)
    except DatabaseError as error:
        if error.unreachable:
            check_dependency(ctx, facts, health, findings, "db", False, str(error))
        else:
            findings.add(OCFExit.ERR_GENERIC, str(error))
        return
    check_dependency(ctx, facts, health, findings, "db", True, "")
    if facts.kind == "console":
        return
    recovering = recovering or health.recovered_within("db", reconnect_grace(ctx))
    stale = stale_heartbeats(facts, heartbeat_rows(rows), pids)
    starting = still_starting(facts, pid) if stale else None
    for reason in stale:
        if recovering:
            findings.add(OCFExit.DEGRADED, reason + " after a dependency outage")
        elif starting:
            findings.add(OCFExit.DEGRADED, f"{reason} while starting: {starting}")
        else:
            findings.add(OCFExit.ERR_GENERIC, "hung: " + reason)


def first_heartbeat_due(facts: Facts) -> float:
    """Seconds after its start by which the service must have sent its first heartbeat
    (0: at once)."""
    late = LATE_FIRST_HEARTBEAT.get(facts.service_binary or "")
    if late is None:
        return 0.0
    seconds = 0.0
    for section, name, default in (late, ("DEFAULT", "report_interval", "10")):
        try:
            seconds += float(option(facts.config, section, name, default))
        except ValueError:
            seconds += float(default)
    return seconds


def still_starting(facts: Facts, pid: int) -> str | None:
    """Why a stale heartbeat is not yet a hang: the service started recently and its first
    heartbeat is not due yet (LATE_FIRST_HEARTBEAT)."""
    due = first_heartbeat_due(facts)
    started = proc.age(pid) if due else None
    if started is None or started >= due + facts.service_down_time:
        return None
    return (
        f"started {started:.0f}s ago; {facts.service_binary} sends its first heartbeat "
        f"up to {due:.0f}s after its start"
    )


def reconnect_grace(ctx: Context) -> float:
    return float(ctx.params.get(RECONNECT_GRACE) or 0)


def stale_heartbeats(
    facts: Facts, seen: dict[str, tuple[float | None, bool]], pids: Sequence[int]
) -> list[str]:
    """Why each of this instance's services rows is missing or stale."""
    reasons = []
    for row in facts.rows:
        age = seen.get(row, (None, False))[0]
        if age is not None and age <= facts.service_down_time:
            continue
        what = "no services row" if age is None else f"heartbeat {age:.0f}s old"
        reason = (
            f"{facts.service_binary} {row}: {what} (service_down_time {facts.service_down_time}s)"
        )
        stopped = stopped_processes(pids)
        reasons.append(reason + (f"; pids {stopped} are stopped (SIGSTOP)" if stopped else ""))
    return reasons


def check_queues(ctx: Context, facts: Facts, pid: int, health: Health, findings: Findings) -> None:
    """Depth 20: each queue has a consumer on a connection of this process tree (matched
    by the connection's client address and port). The management API's statistics lag
    a few seconds, so consumers missing for less than max(reconnect_grace, 15 s) are
    only logged."""
    url = ctx.params.get(MANAGEMENT_URL)
    queues = facts.queue_names()
    if not url or not queues or facts.transport is None:
        return
    import base64
    import http.client
    import json
    import socket

    first = facts.transport.hosts[0]
    user = ctx.params.get(MANAGEMENT_USER) or first.user
    password = ctx.params.get(MANAGEMENT_PASSWORD) or first.password
    scheme, _, rest = url.partition("://")
    host, port = host_port(rest.rstrip("/").partition("/")[0], 443 if scheme == "https" else 80)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    vhost = facts.transport.vhost.replace("%", "%25").replace("/", "%2F")
    connection_class = (
        http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    )
    conn = connection_class(host, port, timeout=min(5.0, max(ctx.remaining(1), 0.5)))
    try:
        conn.request("GET", f"/api/consumers/{vhost}", headers={"Authorization": f"Basic {token}"})
        reply = conn.getresponse()
        body = reply.read()
        consumers = json.loads(body) if reply.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError) as error:
        findings.add(OCFExit.DEGRADED, f"management API {host}:{port} unusable: {error}")
        return
    finally:
        conn.close()
    if not isinstance(consumers, list):
        findings.add(OCFExit.DEGRADED, f"management API {host}:{port}: HTTP {reply.status}")
        return
    ours = {(c[1], c[2]) for c in sockets.established(proc.tree(pid))}
    consuming = set()
    for consumer in consumers:
        try:
            details = consumer["channel_details"]
            peer = str(details["peer_host"])
            family = socket.AF_INET6 if ":" in peer else socket.AF_INET
            packed = socket.inet_pton(family, peer)
            if packed[:12] == b"\0" * 10 + b"\xff\xff":
                packed = packed[12:]
            if (packed, int(details["peer_port"])) in ours:
                consuming.add(str(consumer["queue"]["name"]))
        except (KeyError, TypeError, ValueError, OSError):
            continue
    missing = [q for q in queues if q not in consuming]
    missing_for = health.set("consumers", not missing)
    if not missing:
        return
    reason = f"no consumer in this process tree for queues {', '.join(missing)}"
    if missing_for < max(float(ctx.params.get(RECONNECT_GRACE) or 0), 15.0):
        ctx.log.warning(f"{reason} ({missing_for:.0f}s; the management API lags)")
    else:
        findings.add(OCFExit.ERR_GENERIC, f"{reason} for {missing_for:.0f}s")
