"""What the health model reads: one crm_mon snapshot, fencing evidence and membership times.

Cluster commands go through `hakit.ocf.cluster`. The parts of a crm_mon result that
`ClusterStatus` does not keep yet (a node's expected_up, shutdown and health, node
attributes, which primitives are clone instances) are read here from the same XML.

Fencing evidence comes from two places: the fencer's history (`stonith_admin --history`)
and the fencing alerts the alert agent stored. Pacemaker 2.1 names neither the device a
fencing action used, only the node that ran it ("executioner"), so the devices are
those the fencer has registered for the target (`stonith_admin --list`).
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
import time
from dataclasses import dataclass, field, replace
from xml.etree import ElementTree

from hakit.ocf import cluster
from hakit.ocf.status import ClusterStatus, FenceEvent
from hakit.resource_agents.health.constants import LEADER_VARIABLE
from hakit.resource_agents.health.outbox import EVENTS, Outbox, Record

FENCING_ACTIONS = ("off", "reboot")
#: Seconds Pacemaker may take to show a lost member offline and fenced (membership
#: changes come first, from corosync and the node alerts); after that its view wins.
LOSS_HANDLING = 10.0
ALERT_SOURCE = "fencing alert"


@dataclass(frozen=True)
class NodeDetail:
    """A node's fields crm_mon reports beyond `NodeStatus`."""

    expected_up: bool
    shutdown: bool
    health: str  # green, yellow, red (node health strategy)


@dataclass
class Snapshot:
    """One crm_mon result: `ClusterStatus` plus node details, attributes and clones."""

    status: ClusterStatus
    details: dict[str, NodeDetail]
    attributes: dict[str, dict[str, str]]  # node → {name: value}
    clone_instances: set[str]  # ids of primitives that run as a clone's (or bundle's) instances

    @classmethod
    def from_xml(cls, root: ElementTree.Element) -> Snapshot:
        details = {
            node.get("name", ""): NodeDetail(
                expected_up=node.get("expected_up", "true") == "true",
                shutdown=node.get("shutdown") == "true",
                health=node.get("health", "green"),
            )
            for node in root.findall("nodes/node")
        }
        attributes = {
            node.get("name", ""): {a.get("name", ""): a.get("value", "") for a in node}
            for node in root.findall("node_attributes/node")
        }
        clones = {
            resource.get("id", "")
            for kind in ("clone", "bundle")
            for parent in root.iter(kind)
            for resource in parent.iter("resource")
        }
        return cls(ClusterStatus(root), details, attributes, clones)

    @classmethod
    def from_text(cls, text: str) -> Snapshot:
        """Parse `crm_mon --output-as=xml` output."""
        return cls.from_xml(ElementTree.fromstring(text))  # noqa: S314 — local Pacemaker output


def read_snapshot(*, timeout: float = cluster.DEFAULT_TIMEOUT) -> Snapshot:
    """The cluster now (honours CIB_file, as crm_mon does)."""
    return Snapshot.from_xml(cluster.status_xml(timeout=timeout))


@dataclass(frozen=True)
class FenceRecord:
    """One fencing action against a node, from the fencer's history or a fencing alert."""

    target: str
    action: str  # reboot, off, on
    state: str  # success, failed, pending
    completed: float | None  # UNIX time
    executioner: str  # the node that ran the fence device ("" when none did)
    origin: str  # the node that asked
    source: str  # "fencer history" or "fencing alert"
    reference: str = ""  # the fencer's operation id (alerts only)
    devices: tuple[str, ...] = ()  # devices the fencer has registered for the target

    @property
    def powers_off(self) -> bool:
        """A completed off/reboot: the target was powered off (reboot: at least once)."""
        return self.state == "success" and self.action in FENCING_ACTIONS

    @classmethod
    def from_history(cls, event: FenceEvent) -> FenceRecord:
        state = "success" if event.status in ("success", "done") else event.status or "pending"
        return cls(
            event.target,
            event.action,
            state,
            event.completed_epoch,
            event.delegate,
            event.origin,
            "fencer history",
        )

    @classmethod
    def from_alert(cls, fields: dict[str, str], occurred: float) -> FenceRecord | None:
        """From a fencing alert's fields; its desc reads "Operation reboot of node2 by
        node1 for pacemaker-controld.1234@node1: OK (ref=…)"."""
        desc = fields.get("desc", "")
        if not desc.startswith("Operation "):
            return None
        action, _, rest = desc.removeprefix("Operation ").partition(" of ")
        target, _, rest = rest.partition(" by ")
        executioner, _, rest = rest.partition(" for ")
        requester, _, rest = rest.partition(": ")
        reference = rest.rpartition("(ref=")[2].rstrip(")") if "(ref=" in rest else ""
        succeeded = fields.get("rc", "") == "0"
        return cls(
            target=fields.get("node") or target,
            action=action,
            state="success" if succeeded else "failed",
            completed=occurred,
            executioner="" if executioner.startswith("<") else executioner,
            origin=requester.rpartition("@")[2],
            source=ALERT_SOURCE,
            reference=reference,
        )


@dataclass
class ClusterView:
    """Everything the model classifies, taken at one moment."""

    snapshot: Snapshot
    fences: list[FenceRecord] | None  # None: no fencing evidence could be read
    joined: dict[str, float] = field(default_factory=dict)  # node → last "member" alert
    now: float = field(default_factory=time.time)
    #: node → last "lost" alert; None: unknown (then no node is taken for joining)
    left: dict[str, float] | None = None
    #: when the snapshot was asked for (None: unknown); what came later it may not show
    taken: float | None = None


def fencing_history(*, timeout: float = cluster.DEFAULT_TIMEOUT) -> list[FenceRecord] | None:
    """The fencer's history for every node; None when the fencer cannot be asked."""
    try:
        return [FenceRecord.from_history(e) for e in cluster.fencing_history(timeout=timeout)]
    except cluster.ClusterCommandError:
        return None


def alert_evidence(outbox: Outbox) -> tuple[list[FenceRecord], dict[str, float]]:
    """Fencing results and the last time each node joined, from stored node/fencing alerts."""
    fences, joined, _ = alert_membership(outbox)
    return fences, joined


def alert_membership(
    outbox: Outbox,
) -> tuple[list[FenceRecord], dict[str, float], dict[str, float]]:
    """`alert_evidence`, and the last time each node was lost from the membership."""
    fences: list[FenceRecord] = []
    joined: dict[str, float] = {}
    left: dict[str, float] = {}
    for event in outbox.read(EVENTS, 0, limit=-1, kinds=("node", "fencing")):
        fields = json.loads(event.body)
        if event.kind == "node" and fields.get("desc") in ("member", "lost"):
            seen = joined if fields["desc"] == "member" else left
            seen[event.node] = max(seen.get(event.node, 0.0), event.occurred)
        elif event.kind == "fencing":
            record = FenceRecord.from_alert(fields, event.occurred)
            if record is not None:
                fences.append(record)
    return fences, joined, left


def evidence_only(events: list[Record]) -> bool:
    """Whether `events` are all membership changes and fencing results: evidence the model
    can classify from with the last look (a fresh one confirms it)."""
    return bool(events) and all(
        event.kind == "fencing"
        or (event.kind == "node" and json.loads(event.body).get("desc") in ("member", "lost"))
        for event in events
    )


def with_alert_evidence(view: ClusterView, outbox: Outbox) -> ClusterView:
    """`view`'s snapshot and fencer history, with the stored membership changes and
    fencing results read again, at the present moment (no cluster command is run; fence
    devices only as already known)."""
    alerted, joined, left = alert_membership(outbox)
    history = [f for f in view.fences or [] if f.source != ALERT_SOURCE]
    fences = None if view.fences is None and not alerted else [*history, *alerted]
    fresh = replace(view, fences=fences, joined=joined, left=left, now=time.time())
    return with_devices(fresh, ask=False)


def live_view(
    outbox: Outbox | None = None, *, timeout: float = cluster.DEFAULT_TIMEOUT
) -> ClusterView:
    """The cluster as this node sees it now, with the fencing evidence available here:
    the fencer's history and, given the outbox, the node and fencing alerts."""
    history: list[list[FenceRecord] | None] = []
    taken = time.time()
    context = contextvars.copy_context()  # the fencer through the same runner (cluster.using)
    asking = threading.Thread(
        target=lambda: history.append(context.run(fencing_history, timeout=timeout))
    )
    asking.start()  # the fencer and the CIB answer in parallel: this is the event's latency
    try:
        snapshot = read_snapshot(timeout=timeout)
    finally:
        asking.join()
    fences = history[0] if history else None
    joined: dict[str, float] = {}
    left: dict[str, float] = {}
    alerted: list[FenceRecord] = []
    if outbox is not None:
        alerted, joined, left = alert_membership(outbox)
    if _newly_offline_unfenced(snapshot, [*(fences or []), *alerted], joined):
        fences = fencing_history(timeout=timeout)  # it may have answered before the fence ended
    if alerted or fences is not None:
        fences = [*(fences or []), *alerted]
    return ClusterView(snapshot, fences, joined, left=left, taken=taken)


#: Nodes seen offline and clean since they were last online, the fencer asked again once
_OFFLINE_ASKED: set[str] = set()
_OFFLINE_LOCK = threading.Lock()


def _newly_offline_unfenced(
    snapshot: Snapshot, fences: list[FenceRecord], joined: dict[str, float]
) -> bool:
    """Whether a node shows offline and clean (Pacemaker marks a fenced node so) with no
    fence since it last joined in `fences`, for the first time since it was last online:
    the fencer, asked in parallel with the CIB, may have answered before the fence ended
    (so asked again once per offline spell, however long Pacemaker took to fence)."""
    unexplained = False
    with _OFFLINE_LOCK:
        _OFFLINE_ASKED.intersection_update(node.name for node in snapshot.status.nodes)
        for node in snapshot.status.nodes:
            if node.online or node.unclean:
                _OFFLINE_ASKED.discard(node.name)
                continue
            if node.name in _OFFLINE_ASKED:
                continue
            _OFFLINE_ASKED.add(node.name)
            since = joined.get(node.name, float("-inf"))
            unexplained |= not any(
                f.target == node.name and f.powers_off and (f.completed or 0.0) + 1.0 >= since
                for f in fences
            )
    return unexplained


#: target → (when asked, its registered fence devices); they change rarely
_DEVICES: dict[str, tuple[float, tuple[str, ...]]] = {}
DEVICES_TTL = 30.0


def _ask_devices(target: str, timeout: float) -> None:
    try:
        _DEVICES[target] = (time.monotonic(), cluster.fence_devices(target, timeout=timeout))
    except cluster.ClusterCommandError:
        pass  # asked again after DEVICES_TTL


def with_devices(
    view: ClusterView, *, timeout: float = cluster.DEFAULT_TIMEOUT, ask: bool = True
) -> ClusterView:
    """`view` with the registered fence devices filled in, as far as known, for every
    powered-off target (`ask`: the fencer is asked in the background for targets not asked
    within DEVICES_TTL: during a membership change it can take a second to answer)."""
    if not view.fences:
        return view
    targets = {f.target for f in view.fences if f.powers_off}
    now = time.monotonic()
    for target in targets if ask else ():
        known = _DEVICES.get(target)
        if known is None or now - known[0] >= DEVICES_TTL:
            _DEVICES[target] = (now, known[1] if known else ())  # one question at a time
            threading.Thread(target=_ask_devices, args=(target, timeout), daemon=True).start()
    devices = {
        target: _DEVICES[target][1] for target in targets if _DEVICES.get(target, (0, ()))[1]
    }
    fences = [
        replace(f, devices=devices[f.target]) if f.target in devices else f for f in view.fences
    ]
    return replace(view, fences=fences)


@dataclass(frozen=True)
class Leadership:
    """Whether this node's publisher may deliver, and why."""

    leader: bool
    reason: str


def forced_leadership() -> Leadership | None:
    """HAKIT_HEALTH_LEADER=1 (or 0) decides, for tests and single hosts outside a cluster."""
    forced = os.environ.get(LEADER_VARIABLE, "").strip().lower()
    if forced in ("1", "yes", "true"):
        return Leadership(True, f"forced by {LEADER_VARIABLE}")
    if forced in ("0", "no", "false"):
        return Leadership(False, f"forced off by {LEADER_VARIABLE}")
    return None


def leadership(snapshot: Snapshot | None, local_node: str | None = None) -> Leadership:
    """Only the DC of a quorate partition delivers (unless `forced_leadership` says)."""
    forced = forced_leadership()
    if forced is not None:
        return forced
    if snapshot is None:
        return Leadership(False, "no cluster status")
    status = snapshot.status
    if not status.quorate:
        return Leadership(False, "this partition has no quorum")
    try:
        local = local_node or cluster.local_node_name()
    except cluster.ClusterCommandError as error:
        return Leadership(False, f"local node unknown ({error})")
    if status.dc != local:
        return Leadership(False, f"the DC is {status.dc or 'not elected'}, this is {local}")
    return Leadership(True, f"{local} is the DC of a quorate partition")
