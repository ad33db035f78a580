"""The infra node as a whole: MariaDB and RabbitMQ started, checked and stopped together
(the lab's `start_infra`, `stop_infra`, `infra_status`), or one service at a time (the
OpenStack tests' servers on loopback).

The lab creates the namespace (`ip netns add`, an address on the lab bridge, lo up); this
starts Debian's `mariadbd` and RabbitMQ in it. RabbitMQ is `rabbit@localhost`; epmd and
Erlang distribution listen on the namespace's own 127.0.0.1, AMQP on ADDRESS:5672.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hakit.lab.errors import LabError
from hakit.lab.infra import mariadb, probes, rabbitmq
from hakit.lab.infra.netns import comm, in_netns, named, netns_inode, netns_path, our_processes
from hakit.lab.infra.packages import require_packages, require_root
from hakit.lab.infra.settings import Settings, credentials, read_json, tail, write_private

SERVICES = ("mariadb", "rabbitmq")
MAIN_PROCESS = {"mariadb": mariadb.MAIN_PROCESS, "rabbitmq": rabbitmq.MAIN_PROCESS}


@dataclass
class InfraInfo:
    """How to reach the infra node's services (URLs carry the password: kept out of repr)."""

    address: str
    mysql_port: int
    amqp_port: int
    mysql_url: str = field(repr=False)
    transport_url: str = field(repr=False)
    pids: dict[str, int]


def _info(settings: Settings, creds: dict[str, str], pids: dict[str, int]) -> InfraInfo:
    address = settings.address
    return InfraInfo(
        address=address,
        mysql_port=settings.mysql_port,
        amqp_port=settings.amqp_port,
        mysql_url=f"mysql+pymysql://{settings.db_user}:{creds['mysql']}@{address}/{settings.database}",
        transport_url=f"rabbit://{settings.rabbit_user}:{creds['rabbitmq']}@{address}:{settings.amqp_port}/",
        pids=pids,
    )


def answers(settings: Settings, service: str) -> bool:
    """Whether the service answers its protocol's greeting (seen from its namespace)."""
    if service == "mariadb":
        port, probe = settings.mysql_port, probes.mysql_answers
    else:
        port, probe = settings.amqp_port, probes.amqp_answers
    return in_netns(settings.netns, lambda: probe(settings.address, port))


def _main_running(settings: Settings, ns_inode: int, service: str) -> bool:
    pids = our_processes(settings.state_dir, ns_inode, service)
    return MAIN_PROCESS[service] in {comm(p) for p in pids}


def _log_of(settings: Settings, service: str) -> Path:
    if service == "mariadb":
        return settings.mariadb / "mariadbd.err"
    return settings.rabbitmq / "log" / f"{settings.nodename}.log"


def _wait_answering(settings: Settings, service: str, deadline: float, ns_inode: int) -> bool:
    """Poll until `service` answers; give up at `deadline` or once its main process is gone."""
    last_check = time.monotonic()
    while True:
        if answers(settings, service):
            return True
        now = time.monotonic()
        if now >= deadline:
            return False
        if now - last_check > 1.0:
            last_check = now
            if not _main_running(settings, ns_inode, service):
                return False
        time.sleep(0.1)


def _await_start(settings: Settings, service: str, deadline: float, timeout: float) -> None:
    ns_inode = netns_inode(settings.netns)
    log = _log_of(settings, service)
    if _wait_answering(settings, service, deadline, ns_inode):
        management = settings.management_port if service == "rabbitmq" else None
        while management and not in_netns(
            settings.netns, lambda: probes.http_answers("127.0.0.1", management)
        ):
            if time.monotonic() >= deadline:
                raise LabError(f"RabbitMQ management did not answer (hint: see {log})")
            time.sleep(0.1)
        return
    if _main_running(settings, ns_inode, service):
        raise LabError(
            f"{service} in {settings.where} did not answer within {timeout:.0f} s "
            f"(hint: see {log})"
        )
    raise LabError(f"{service} exited at start: {tail(log)} (hint: see {log})")


def start_services(
    settings: Settings,
    services: tuple[str, ...],
    creds: dict[str, str],
    timeout: float,
    deadline: float | None = None,
) -> None:
    """Check, then start `services` (not running ones) and wait until they answer, within
    `timeout` seconds (or by `deadline`, a monotonic time); MariaDB gets its user."""
    deadline = time.monotonic() + timeout if deadline is None else deadline
    for service in services:  # every check before anything starts
        prepare = mariadb.prepare_mariadb if service == "mariadb" else rabbitmq.prepare_rabbitmq
        prepare(settings)
    for service in services:
        if service == "mariadb":
            mariadb.start_mariadb(settings)
        else:
            rabbitmq.start_rabbitmq(settings, creds)
    for service in reversed(services):
        _await_start(settings, service, deadline, timeout)
        if service == "mariadb":
            mariadb.setup_mariadb_user(settings, creds["mysql"])


def start_infra(state_dir: Path, netns: str, address: str, *, timeout: float = 60) -> InfraInfo:
    """Start MariaDB and RabbitMQ inside `netns`, listening on `address`; idempotent.

    Services already running from this state dir and answering are kept; the others (all,
    if the address or namespace changed) are cleaned up and started. Returns once both
    answer. The first start also initialises the MariaDB data directory.
    """
    require_root()
    require_packages()
    deadline = time.monotonic() + timeout
    settings = Settings(state_dir.resolve(), address, netns)
    ns_inode = netns_inode(netns)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    record = read_json(settings.record)
    creds, new_creds = credentials(settings)
    moved = record and (record.get("address") != address or record.get("netns_inode") != ns_inode)
    if moved or new_creds:  # running services would not match: stop them all
        stop_infra(settings.state_dir, str(record.get("netns", netns)), timeout=timeout)
    wanted: list[str] = []
    for service in ("rabbitmq", "mariadb"):  # the slow one first
        if _main_running(settings, ns_inode, service):
            grace = min(deadline, time.monotonic() + 5)
            if _wait_answering(settings, service, grace, ns_inode):
                continue
        stop_services(settings, (service,), timeout)  # leftovers, if any
        wanted.append(service)
    start_services(settings, tuple(wanted), creds, timeout, deadline)
    pids = record.get("pids") or {}
    if wanted or not pids:
        pids = named(our_processes(settings.state_dir, ns_inode))
        text = json.dumps(
            {"netns": netns, "address": address, "netns_inode": ns_inode, "pids": pids}, indent=1
        )
        write_private(settings.record, text + "\n", 0o644)
    return _info(settings, creds, {str(k): int(v) for k, v in pids.items()})


def stop_services(
    settings: Settings, services: tuple[str, ...], timeout: float, ns_inode: int | None = None
) -> None:
    """SIGTERM the main processes (an orderly shutdown for both), wait, SIGKILL the rest."""
    deadline = time.monotonic() + timeout
    inode = netns_inode(settings.netns) if ns_inode is None else ns_inode

    def ours() -> list[int]:
        return [pid for s in services for pid in our_processes(settings.state_dir, inode, s)]

    mains = {MAIN_PROCESS[s] for s in services}
    for pid in ours():
        if comm(pid) in mains:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    while time.monotonic() < deadline and any(comm(p) in mains for p in ours()):
        time.sleep(0.1)
    leftovers = ours()
    for _ in range(50):
        if not leftovers:
            return
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
        leftovers = ours()
    raise LabError(f"processes {leftovers} survived SIGKILL (hint: check `ps -o pid,stat`)")


def stop_infra(state_dir: Path, netns: str, *, timeout: float = 60) -> None:
    """Stop both services (SIGTERM, then SIGKILL for leftovers); idempotent.

    Only processes in `netns` (or, if it is gone, in the namespace recorded at start)
    carrying this state dir's marker are signalled.
    """
    require_root()
    settings = Settings(state_dir.resolve(), "", netns)
    record = read_json(settings.record)
    try:
        ns_inode = netns_inode(netns)
    except LabError:
        if "netns_inode" not in record:
            return
        ns_inode = int(record["netns_inode"])
    stop_services(settings, SERVICES, timeout, ns_inode)
    if record.get("pids"):
        record["pids"] = {}
        write_private(settings.record, json.dumps(record, indent=1) + "\n", 0o644)


def infra_status(state_dir: Path, netns: str) -> dict[str, Any]:
    """{"netns", "netns_exists", "address", "running", "mariadb"/"rabbitmq": {"running",
    "answering", "pids"}}; "running" is true when both services answer."""
    require_root()
    state_dir = state_dir.resolve()
    record = read_json(Settings(state_dir, "").record)
    address = str(record.get("address", ""))
    settings = Settings(state_dir, address, netns)
    status: dict[str, Any] = {"netns": netns, "address": address}
    try:
        ns_inode: int | None = netns_inode(netns)
    except LabError:  # processes may outlive the netns's name: look in the recorded one
        ns_inode = record.get("netns_inode")
    status["netns_exists"] = netns_path(netns).exists()
    for service in SERVICES:
        pids = our_processes(state_dir, ns_inode, service) if ns_inode else []
        running = MAIN_PROCESS[service] in {comm(p) for p in pids}
        answering = running and status["netns_exists"] and answers(settings, service)
        status[service] = {"running": running, "answering": answering, "pids": named(pids)}
    status["running"] = all(status[s]["answering"] for s in SERVICES)
    return status
