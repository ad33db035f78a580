"""Namespaces and processes of an infra node: running code in its network namespace,
checking that an address can be bound there, starting a daemon detached inside it, and
finding the node's processes again by their marker variables.

Daemons are started as `[ip netns exec NETNS] setsid -f ...` with two marker variables in
their environment, which every child inherits (epmd, erl_child_setup, ...); stop and
status find processes by marker and by /proc/PID/ns/net, so only this infra node's
processes are ever signalled.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hakit.lab.errors import LabError
from hakit.ocf import proc

MARKER = "HAKIT_LAB_INFRA"  # = resolved state dir
SERVICE_MARKER = "HAKIT_LAB_SERVICE"  # = mariadb | rabbitmq
CLONE_NEWNET = 0x40000000
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

T = TypeVar("T")


def netns_path(netns: str) -> Path:
    return Path("/run/netns") / netns


def netns_inode(netns: str | None) -> int:
    """The inode of the named namespace (None: this process's own)."""
    if netns is None:
        return os.stat("/proc/self/ns/net").st_ino
    path = netns_path(netns)
    if not path.exists():
        raise LabError(f"network namespace {netns!r} not found (hint: the lab creates it first)")
    return path.stat().st_ino


def in_netns(netns: str | None, func: Callable[[], T]) -> T:
    """Run `func` in a short-lived thread that has joined `netns` (sockets it opens live there).

    The network namespace is per thread, so the rest of the process is not affected.
    None is the caller's own namespace: `func` runs right here.
    """
    if netns is None:
        return func()
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(netns_path(netns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns({netns}): {os.strerror(code)}")
            finally:
                os.close(fd)
            result.append(func())
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=body, name=f"netns-{netns}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def comm(pid: int) -> str:
    info = proc.stat(pid)
    return info.comm if info else "?"


def our_processes(state_dir: Path, ns_inode: int, service: str | None = None) -> list[int]:
    """Live PIDs in the namespace carrying this state dir's marker (of one service or all)."""
    tag = str(state_dir.resolve())
    net = f"net:[{ns_inode}]"
    found = []
    for pid in proc.in_namespaces(net):
        env = proc.environ(pid)
        if env.get(MARKER) == tag and (not service or env.get(SERVICE_MARKER) == service):
            found.append(pid)
    return found


def named(pids: list[int]) -> dict[str, int]:
    result: dict[str, int] = {}
    for pid in pids:
        name = comm(pid)
        key, n = name, 1
        while key in result:
            n += 1
            key = f"{name}.{n}"
        result[key] = pid
    return result


def marker_env(state_dir: Path, service: str) -> dict[str, str]:
    return {"PATH": PATH, "LANG": "C.UTF-8", MARKER: str(state_dir), SERVICE_MARKER: service}


def spawn(netns: str | None, argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
    """Start `argv` detached (new session, reparented) inside `netns` (None: right here)."""
    enter = ["ip", "netns", "exec", netns] if netns else []
    with log.open("ab") as out:
        done = subprocess.run(
            [*enter, "setsid", "-f", *argv],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            check=False,
        )
    if done.returncode != 0:
        where = f"in netns {netns!r}" if netns else "here"
        raise LabError(f"could not start {argv[0]} {where} (hint: see {log})")


def _bind_problem(address: str, port: int) -> int:
    """0 if (address, port) could be bound, else the errno."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as error:
            return error.errno or -1
    return 0


def check_bindable(netns: str | None, address: str, port: int, what: str) -> None:
    problem = in_netns(netns, lambda: _bind_problem(address, port))
    where = f"netns {netns!r}" if netns else "this network namespace"
    if problem == errno.EADDRNOTAVAIL:
        if address.startswith("127."):
            hint = f"ip -n {netns} link set lo up" if netns else "ip link set lo up"
            raise LabError(f"loopback is down in {where} (hint: {hint})")
        show = f"ip -n {netns} addr" if netns else "ip addr"
        raise LabError(f"{address} is not an address of {where} (hint: check `{show}`)")
    if problem == errno.EADDRINUSE:
        raise LabError(
            f"port {port} on {address} in {where} is busy, needed for {what} "
            "(hint: stop whatever listens there, e.g. another infra node)"
        )
    if problem:
        raise LabError(f"cannot bind {address}:{port} in {where}: {os.strerror(problem)}")
