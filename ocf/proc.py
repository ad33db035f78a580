"""Processes as the kernel sees them: identity, trees, signals and listening sockets.

Everything is read from /proc with exact matching (PIDs and ports as numbers, not
text), so PID 1234 never matches 12345 and PID 567 never matches port 5672.
A process is identified by (pid, start time), which survives PID reuse.
"""

from __future__ import annotations

import os
import time

from ._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

SIGKILL, SIGTERM = 9, 15  # the signal module costs ~8 ms of start-up
_LISTEN = "0A"
_ESTABLISHED = "01"


class ProcStat:
    """The fields of /proc/PID/stat that hakit uses."""

    __slots__ = ("comm", "pid", "ppid", "session", "start_time", "state")

    def __init__(self, pid: int, text: str) -> None:
        head, _, tail = text.rpartition(")")
        fields = tail.split()
        self.pid = pid
        self.comm = head.partition("(")[2]
        self.state = fields[0]
        self.ppid = int(fields[1])
        self.session = int(fields[3])
        self.start_time = int(fields[19])

    @property
    def alive(self) -> bool:
        """Running or sleeping or stopped — not a zombie or dead."""
        return self.state not in ("Z", "X", "x")


def stat(pid: int) -> ProcStat | None:
    """The process's stat, or None if it does not exist (os.read: a whole-table scan
    costs half of what open() does)."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
        return ProcStat(pid, data.decode("utf-8", "replace"))
    except (OSError, ValueError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    info = stat(pid)
    return info.start_time if info else None


def age(pid: int) -> float | None:
    """Seconds since the process started (by the boot clock), or None if it is gone."""
    info = stat(pid)
    if info is None:
        return None
    try:
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, uptime - info.start_time / os.sysconf("SC_CLK_TCK"))


def is_alive(pid: int, started: int | None = None) -> bool:
    """True if `pid` exists, is not a zombie, and (if given) started at `started`."""
    info = stat(pid)
    return bool(info and info.alive and (started is None or info.start_time == started))


def all_processes() -> list[ProcStat]:
    result = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = stat(int(entry))
            if info is not None:
                result.append(info)
    return result


def tree(pid: int, *, session: bool = True) -> list[int]:
    """`pid` (first, when alive) and all its live descendants, in PID order; with
    `session`, also processes of its session (a daemon that double-forks leaves the
    parent chain but keeps the session). PIDs wrap: a child may have a lower one."""
    processes = all_processes()
    children: dict[int, list[int]] = {}
    for info in processes:
        children.setdefault(info.ppid, []).append(info.pid)
    found = {pid}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    if session:
        found |= {info.pid for info in processes if info.session == pid}
    alive = {info.pid for info in processes if info.alive}
    return sorted(found & alive, key=lambda member: (member != pid, member))


def signal_all(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def terminate_tree(pid: int, deadline: float, *, kill_margin: float) -> list[int]:
    """TERM the tree of `pid`, KILL what is left `kill_margin` seconds before `deadline`
    (a monotonic time), then wait for the tree to vanish. Returns PIDs still alive."""
    return terminate(tree(pid), deadline, kill_margin=kill_margin, refresh=lambda: tree(pid))


def terminate(
    pids: Iterable[int],
    deadline: float,
    *,
    kill_margin: float,
    refresh: Callable[[], Iterable[int]] | None = None,
) -> list[int]:
    """TERM `pids`, KILL the survivors (plus what `refresh` finds then) `kill_margin`
    seconds before `deadline`, wait for them to vanish. Returns PIDs still alive."""
    pids = list(pids)
    signal_all(pids, SIGTERM)
    kill_at = deadline - kill_margin
    while pids and time.monotonic() < kill_at:
        time.sleep(0.05)
        pids = [p for p in pids if is_alive(p)]
    if pids:
        pids = sorted(set(pids) | set(refresh() if refresh else ()))
        signal_all(pids, SIGKILL)
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if is_alive(p)]
        if pids:
            time.sleep(0.02)
    return pids


def orphans(pid: int, started: int) -> list[int]:
    """Live processes left in the session of a dead session leader `pid` (started at
    `started`): workers that outlived their master. If the PID was reused since, only
    processes older than the new owner count."""
    reused = stat(pid)
    newer_than = reused.start_time if reused is not None and reused.start_time != started else None
    return sorted(
        info.pid
        for info in all_processes()
        if info.session == pid
        and info.alive
        and info.pid != pid
        and info.start_time >= started
        and (newer_than is None or info.start_time < newer_than)
    )


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets `pid` holds open."""
    inodes: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def tcp_sockets(pid: int, *, state: str | None = None) -> list[tuple[int, str, int, int]]:
    """(local port, remote address, remote port, inode) of TCP sockets in `pid`'s network
    namespace, optionally only those in `state` (hex, e.g. "0A" listen, "01" established)."""
    return [
        (lport, remote, rport, inode) for _, lport, remote, rport, inode in _tcp_rows(pid, state)
    ]


def _tcp_rows(pid: int, state: str | None) -> list[tuple[str, int, str, int, int]]:
    """(local address, local port, remote address, remote port, inode), addresses in hex."""
    rows = []
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if state is not None and fields[3] != state:
                        continue
                    local, _, local_port = fields[1].rpartition(":")
                    remote, _, remote_port = fields[2].rpartition(":")
                    rows.append(
                        (local, int(local_port, 16), remote, int(remote_port, 16), int(fields[9]))
                    )
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return rows


def _live_tcp_rows(pids: Iterable[int]) -> list[tuple[str, int, str, int, int]]:
    """`_tcp_rows` of established connections, read through the first of `pids` still
    alive (a worker that exits meanwhile takes its /proc/PID/net with it)."""
    for pid in dict.fromkeys(pids):
        rows = _tcp_rows(pid, _ESTABLISHED)
        if rows or os.path.exists(f"/proc/{pid}/net/tcp"):
            return rows
    return []


def listening_on(pid: int, port: int) -> bool:
    """True if `pid` or a process of its tree holds a TCP socket listening on `port`."""
    listeners = {inode for lport, _, _, inode in tcp_sockets(pid, state=_LISTEN) if lport == port}
    if not listeners:
        return False
    if listeners & socket_inodes(pid):
        return True
    return any(listeners & socket_inodes(other) for other in tree(pid) if other != pid)


def listening_addresses(pid: int, port: int) -> list[bytes]:
    """Packed local addresses of the TCP sockets listening on `port` that `pid` or a
    process of its tree holds (b"\\0" * 4 is 0.0.0.0)."""
    rows = {inode: local for local, lport, _, _, inode in _tcp_rows(pid, _LISTEN) if lport == port}
    if not rows:
        return []
    held: set[int] = set()
    for member in tree(pid):
        held |= socket_inodes(member) & rows.keys()
    return sorted({packed_address(rows[inode]) for inode in held})


def packed_address(hex_address: str) -> bytes:
    """The address of a /proc/net/tcp{,6} row as packed bytes (what socket.inet_pton
    returns): the kernel prints each 32-bit word in host (little-endian) order. An
    IPv4-mapped IPv6 address becomes its 4-byte IPv4 form."""
    raw = bytes.fromhex(hex_address)
    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(packed) == 16 and packed[:12] == b"\0" * 10 + b"\xff\xff":
        return packed[12:]
    return packed


def established(pids: Iterable[int]) -> list[tuple[int, bytes, int, bytes, int]]:
    """(pid, local address, local port, remote address, remote port) of every established
    TCP connection held by one of `pids` (matched by socket inode, in the first live pid's
    namespace); addresses packed as socket.inet_pton gives them."""
    owner: dict[int, int] = {}
    for pid in pids:
        for inode in socket_inodes(pid):
            owner.setdefault(inode, pid)
    if not owner:
        return []
    result = []
    for local, local_port, remote, remote_port, inode in _live_tcp_rows(owner.values()):
        holder = owner.get(inode)
        if holder is not None:
            result.append(
                (holder, packed_address(local), local_port, packed_address(remote), remote_port)
            )
    return result


# --- namespaces: whole machines on one host (the lab's nodes, the test node) ---------------


def namespace(pid: int | str, kind: str = "net") -> str | None:
    """The process's namespace of `kind` ("net", "mnt", ...) as `net:[4026531993]`, or None
    if it is gone or unreadable. "self" is this process."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def in_namespaces(net: str, mnt: str | None = None) -> list[int]:
    """Live PIDs in network namespace `net` (and mount namespace `mnt`, if given), as
    `namespace` names them. Hold the namespaces open while you look: a freed namespace's
    inode number can be given to a new one."""
    return sorted(
        info.pid
        for info in all_processes()
        if info.alive
        and namespace(info.pid, "net") == net
        and (mnt is None or namespace(info.pid, "mnt") == mnt)
    )


def kill_namespaces(
    net: str, mnt: str | None = None, *, exclude: Iterable[int] = (), timeout: float = 10
) -> list[int]:
    """SIGKILL every process of the namespaces (but `exclude`) until none is left; return
    the PIDs still alive after `timeout` seconds."""
    spared = set(exclude)
    deadline = time.monotonic() + timeout
    while True:
        pids = [pid for pid in in_namespaces(net, mnt) if pid not in spared]
        if not pids or time.monotonic() > deadline:
            return pids
        signal_all(pids, SIGKILL)
        time.sleep(0.05)


def environ(pid: int) -> dict[str, str]:
    """The process's initial environment ({} if it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            raw = handle.read()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}
