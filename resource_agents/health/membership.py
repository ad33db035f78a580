"""Corosync membership changes as node events, the moment corosync reports them.

Pacemaker's node alerts carry the membership change's time but reach the outbox 50 to
250 ms later (the controller has the alert agent spawned while it handles the change, a
rejoining node booting beside it). A live `corosync-quorumtool -m` prints the member list
within about 10 ms of the change. `MembershipWatcher` stores each node that joined or left
as a "member" or "lost" node event (as the alert agent stores them) and
wakes the publisher, which classifies from the events and its last look before it looks
again (see `Publisher.cycle` and the model's losses Pacemaker has not handled yet). The
alert comes later and adds nothing new; both are evidence.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from hakit.ocf import cluster
from hakit.resource_agents.health.cib_watcher import die_with_parent, stop
from hakit.resource_agents.health.outbox import Outbox

MEMBERS_HEADING = "Membership information"
LOCAL_SUFFIX = " (local)"


def member_lists(lines: Iterable[str]) -> Iterator[tuple[str, set[str]]]:
    """(ring id, member names) for each status block `corosync-quorumtool -m` prints."""
    ring, members, in_table = "", set[str](), False
    for raw in lines:
        line = raw.rstrip("\n")
        if line.startswith("Ring ID:"):
            ring = line.partition(":")[2].strip()
        elif line.startswith(MEMBERS_HEADING):
            members, in_table = set(), True
        elif in_table and line.strip() and not line.strip().startswith(("-", "Nodeid")):
            name = line.removesuffix(LOCAL_SUFFIX).split()[-1]
            members.add(name)
        elif in_table and not line.strip() and members:
            in_table = False
            yield ring, members


def changes(before: set[str], after: set[str]) -> list[tuple[str, str]]:
    """(node, "member" | "lost") for each node that joined or left, sorted."""
    return sorted([(n, "member") for n in after - before] + [(n, "lost") for n in before - after])


def record(box: Outbox, ring: str, found: list[tuple[str, str]], when: float) -> int:
    """Store each (node, "member" | "lost") as a node event; how many were new."""
    stored = 0
    for node, desc in found:
        body = json.dumps({"desc": desc, "source": "corosync membership", "ring_id": ring})
        event_id = f"corosync:{ring}:{node}:{desc}"
        stored += box.append(event_id, body, kind="node", node=node, occurred=when) is not None
    return stored


class MembershipWatcher:
    """Keeps a `corosync-quorumtool -m` running; stores membership changes in the outbox at
    `outbox_path` and calls `wake` after each."""

    def __init__(self, outbox_path: str, wake: Callable[[], None], log: Callable[[str], None]):
        self.outbox_path = outbox_path
        self.wake = wake
        self.log = log
        self.process: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None

    def ensure_running(self) -> None:
        """(Re)start the watch if it is not running (corosync down earlier, or it exited)."""
        if self.process is not None and self.process.poll() is None:
            return
        try:
            self.process = subprocess.Popen(
                cluster.watch_membership_command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 — a prctl, no locks taken
            )
        except OSError as error:
            self.log(f"membership not watched (corosync-quorumtool: {error}); alerts only")
            self.process = None
            return
        self.reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self.reader.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None  # noqa: S101 — opened with stdout=PIPE
        known: set[str] | None = None  # the first list is where we start, not a change
        try:
            with Outbox(self.outbox_path) as box:
                for ring, members in member_lists(process.stdout):
                    found = changes(known, members) if known is not None else []
                    known = members
                    if found and record(box, ring, found, time.time()):
                        self.wake()
        except Exception as error:  # database locked, …: the alerts still come; restarted
            self.log(f"membership watch stopped: {error}")
            process.terminate()

    def close(self) -> None:
        stop(self.process)
        if self.reader is not None:
            self.reader.join(timeout=5)
