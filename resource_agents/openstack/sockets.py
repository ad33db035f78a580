"""The TCP sockets a process tree holds: its established connections and listening
addresses, asked of the kernel through NETLINK_SOCK_DIAG, which filters by TCP state.

/proc/PID/net/tcp (hakit.ocf.proc) formats the whole table of the namespace, TIME_WAIT
included, and walks the established hash again for every page read: 15-30 ms per
monitor on a host with a large hash. It remains the fallback when the tree lives in
another network namespace than the agent, or when netlink is refused. Sockets are
matched to the tree by inode, as hakit.ocf.proc does, with the same results.
"""

from __future__ import annotations

import os

from hakit.ocf import proc
from hakit.ocf._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_ESTABLISHED, TCP_LISTEN = 1, 10
#: struct inet_diag_msg: family, state, timer, retrans, id (sport, dport, src[16],
#: dst[16], if, cookie[2]), expires, rqueue, wqueue, uid, inode
DIAG_MSG_SIZE = 72
#: (local address, local port, remote address, remote port, inode); addresses packed as
#: socket.inet_pton gives them, an IPv4-mapped IPv6 address in its 4-byte form
Row = tuple[bytes, int, bytes, int, int]


def packed(raw: bytes) -> bytes:
    """An IPv4-mapped IPv6 address in its 4-byte form; others as they are."""
    if raw[:12] == b"\0" * 10 + b"\xff\xff":
        return raw[12:]
    return raw


def diag_rows(state: int) -> list[Row] | None:
    """The TCP sockets of this network namespace in `state` (IPv4 and IPv6); None when
    the kernel refuses the request."""
    import socket
    import struct

    rows: list[Row] = []
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
    except (OSError, AttributeError):
        return None
    with sock:
        sock.settimeout(2.0)
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), 1):
            request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 1 << state)
            request += bytes(48)  # struct inet_diag_sockid: any
            header = struct.pack(
                "=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
            )
            try:
                sock.sendall(header + request)
                done = False
                while not done:
                    data = sock.recv(65536)
                    if not data:
                        return None
                    offset = 0
                    while offset + 16 <= len(data):
                        length, kind = struct.unpack_from("=IH", data, offset)
                        if kind == NLMSG_DONE:
                            done = True
                            break
                        if kind == NLMSG_ERROR or length < 16:
                            return None
                        body = offset + 16
                        if kind == SOCK_DIAG_BY_FAMILY and length >= 16 + DIAG_MSG_SIZE:
                            size = 4 if data[body] == socket.AF_INET else 16
                            sport, dport = struct.unpack_from("!HH", data, body + 4)
                            (inode,) = struct.unpack_from("=I", data, body + 68)
                            rows.append(
                                (
                                    packed(data[body + 8 : body + 8 + size]),
                                    sport,
                                    packed(data[body + 24 : body + 24 + size]),
                                    dport,
                                    inode,
                                )
                            )
                        offset += (length + 3) & ~3
            except OSError:
                return None
    return rows


def _same_namespace(pids: Iterable[int]) -> bool:
    """The first of `pids` still alive is in this process's network namespace (a worker
    may exit between the tree's listing and this look)."""
    here = os.stat("/proc/self/ns/net").st_ino
    for pid in pids:
        try:
            return os.stat(f"/proc/{pid}/ns/net").st_ino == here
        except OSError:
            continue
    return False


def established(pids: Sequence[int]) -> list[tuple[int, bytes, int, bytes, int]]:
    """What hakit.ocf.proc.established returns: (pid, local address, local port, remote
    address, remote port) of every established TCP connection one of `pids` holds."""
    owner: dict[int, int] = {}
    for pid in pids:
        for inode in proc.socket_inodes(pid):
            owner.setdefault(inode, pid)
    if not owner:
        return []
    rows = diag_rows(TCP_ESTABLISHED) if _same_namespace(owner.values()) else None
    if rows is None:
        return proc.established(pids)
    return [
        (owner[inode], local, lport, remote, rport)
        for local, lport, remote, rport, inode in rows
        if inode in owner
    ]


def listening_addresses(pids: Sequence[int], port: int) -> list[bytes]:
    """What hakit.ocf.proc.listening_addresses returns for the tree `pids` (its root
    first): the packed local addresses of the TCP sockets listening on `port` that a
    process of the tree holds."""
    if not pids:
        return []
    rows = diag_rows(TCP_LISTEN) if _same_namespace(pids) else None
    if rows is None:
        return proc.listening_addresses(pids[0], port)
    listening = {inode: local for local, lport, _, _, inode in rows if lport == port}
    if not listening:
        return []
    held: set[int] = set()
    for member in pids:
        held |= proc.socket_inodes(member) & listening.keys()
    return sorted({listening[inode] for inode in held})
