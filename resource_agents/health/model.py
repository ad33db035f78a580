"""Per-node health, classified from one `ClusterView`: a pure function, no I/O.

The classes say what is safe to do about a node:

- OK: online, its services run.
- DEGRADED: online but impaired (standby, maintenance, a dependency unreachable, a
  service moved away after failing here, no quorum), or joining: a membership member
  again (its last node alert) that Pacemaker does not show online yet. Watch.
- SERVICE_DOWN_HOST_UP: online, and a service instance on it failed or stopped after a
  failure. Restart or disable the service; never evacuate.
- HOST_LEFT_CLUSTER: offline after a clean shutdown, not fenced; it may still run
  instances. No evacuation.
- HOST_UNREACHABLE_UNFENCED: lost and not (yet) fenced, or out of sight of a partition
  without quorum. An alarm, nothing destructive.
- HOST_DOWN_FENCED: offline, and a fence (off/reboot) succeeded since it last joined.
  Safe to evacuate (force-down nova-compute).

A fence counts only when it succeeded after the node last joined (from node alerts,
when known): an old fence never vouches for a later outage.

Membership changes and fencing results reach the publisher before Pacemaker's view shows
them (`Publisher.cycle` classifies from them at once): a node lost from the membership
moments ago that Pacemaker still shows online is HOST_UNREACHABLE_UNFENCED (unless it is
shutting down), and one fenced since its loss is HOST_DOWN_FENCED even while Pacemaker
still marks it unclean.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from enum import StrEnum

from hakit.ocf.status import Failure
from hakit.resource_agents.health.sources import (
    LOSS_HANDLING,
    ClusterView,
    FenceRecord,
    NodeDetail,
    Snapshot,
)

_UP = NodeDetail(expected_up=True, shutdown=False, health="green")
# Fencer history times have one-second resolution; alerts have microseconds.
FENCE_CLOCK_SLACK = 1.0


class Health(StrEnum):
    """Node health classes, mildest first."""

    OK = "OK"
    DEGRADED = "DEGRADED"
    SERVICE_DOWN_HOST_UP = "SERVICE_DOWN_HOST_UP"
    HOST_LEFT_CLUSTER = "HOST_LEFT_CLUSTER"
    HOST_UNREACHABLE_UNFENCED = "HOST_UNREACHABLE_UNFENCED"
    HOST_DOWN_FENCED = "HOST_DOWN_FENCED"

    @property
    def safe_action(self) -> str:
        return SAFE_ACTIONS[self]

    @property
    def host_down(self) -> bool:
        """The host is out of the cluster (whatever the reason)."""
        return self in (
            Health.HOST_LEFT_CLUSTER,
            Health.HOST_UNREACHABLE_UNFENCED,
            Health.HOST_DOWN_FENCED,
        )

    @property
    def host_lost(self) -> bool:
        """The host is gone by a fault (fenced, or unreachable), not by a clean leave."""
        return self in (Health.HOST_UNREACHABLE_UNFENCED, Health.HOST_DOWN_FENCED)


SAFE_ACTIONS = {
    Health.OK: "none",
    Health.DEGRADED: "watch; no recovery action",
    Health.SERVICE_DOWN_HOST_UP: "restart or disable the service; never evacuate",
    Health.HOST_LEFT_CLUSTER: "none destructive: the host may still run instances",
    Health.HOST_UNREACHABLE_UNFENCED: "alarm only; nothing destructive until fenced",
    Health.HOST_DOWN_FENCED: "safe to evacuate (force-down nova-compute)",
}


@dataclass
class NodeHealth:
    """One node's class and the facts behind it."""

    node: str
    health: Health
    reasons: list[str] = field(default_factory=list)
    services_down: list[str] = field(default_factory=list)  # resource ids
    fence: FenceRecord | None = None  # the fence that confirms HOST_DOWN_FENCED
    #: a Pacemaker Remote node whose connection never failed: out of the cluster, it was
    #: stopped or is not started yet (a compute being added), not lost
    idle_remote: bool = False


@dataclass
class HealthReport:
    """Every node's health at one moment."""

    taken: float
    dc: str | None
    quorate: bool
    nodes: list[NodeHealth]

    def node(self, name: str) -> NodeHealth | None:
        return next((n for n in self.nodes if n.node == name), None)


#: The agent of a Pacemaker Remote node's connection: the resource is named as the node.
REMOTE_CONNECTION = "ocf:pacemaker:remote"


def classify(view: ClusterView) -> HealthReport:
    """Classify every node the cluster knows (Pacemaker Remote nodes as well)."""
    status = view.snapshot.status
    nodes = [
        (_lost_still_online(view, node.name) or _online(view, node.name))
        if node.online
        else _offline(view, node.name)
        for node in status.nodes
    ]
    connections = remote_connections(view.snapshot)
    for health in nodes if connections else ():
        if health.node in connections:
            failures = _connection_failures(view.snapshot, health.node)
            health.reasons += failures
            health.idle_remote = health.health is not Health.HOST_DOWN_FENCED and not failures
    return HealthReport(view.now, status.dc, status.quorate, nodes)


def remote_connections(snapshot: Snapshot) -> set[str]:
    """The Pacemaker Remote nodes' connection resources (each named as its node)."""
    return {r.id for r in snapshot.status.resources if r.agent == REMOTE_CONNECTION}


def _connection_failures(snapshot: Snapshot, remote: str) -> list[str]:
    """A remote node's connection failures, wherever the connection ran: facts about the
    remote node, not about the cluster node that held the connection."""
    return [
        f"its connection failed on {f.node} ({describe_failure(f)})"
        for f in snapshot.status.failures
        if resource_of(f) == remote
    ]


def _lost_still_online(view: ClusterView, name: str) -> NodeHealth | None:
    """A node Pacemaker shows online, but lost from the membership after the snapshot was
    taken, or moments ago (`_unhandled_loss`): unreachable until fenced (Pacemaker will
    show it offline, unclean), or joining if it is a member again since."""
    left = (view.left or {}).get(name)
    detail = view.snapshot.details.get(name, _UP)
    if left is None or detail.shutdown or not detail.expected_up:
        return None
    if view.taken is not None and left > view.taken:  # the snapshot predates the loss
        joined = view.joined.get(name, float("-inf"))
        if joined > left:
            again = f"a cluster member again since {rfc3339(joined)}, after a loss"
            return NodeHealth(name, Health.DEGRADED, [again, "not yet seen online since"])
    elif _unhandled_loss(view, name) is None:
        return None
    lost = f"lost from the membership at {rfc3339(left)}; Pacemaker still shows it online"
    fence = fence_since_loss(view, name)
    if fence is not None:
        return NodeHealth(name, Health.HOST_DOWN_FENCED, [describe_fence(fence), lost], fence=fence)
    return NodeHealth(name, Health.HOST_UNREACHABLE_UNFENCED, [lost, _fencing_so_far(view, name)])


def _unhandled_loss(view: ClusterView, name: str) -> float | None:
    """When `name` was lost from the membership, if that was since it last joined, moments
    ago (`LOSS_HANDLING`), and it was expected up (not a clean shutdown)."""
    left = (view.left or {}).get(name)
    if left is None or left <= view.joined.get(name, float("-inf")):
        return None
    if view.now - left > LOSS_HANDLING or not view.snapshot.details.get(name, _UP).expected_up:
        return None
    return left


def fence_since_loss(view: ClusterView, name: str) -> FenceRecord | None:
    """A successful off/reboot of `name` since it was last lost (None when the loss is
    unknown): it is powered off, whatever Pacemaker shows yet. A remote node's loss is its
    connection's last failure (Corosync never sees it)."""
    left = (view.left or {}).get(name)
    if left is None and name in remote_connections(view.snapshot):
        failed = [f.changed for f in view.snapshot.status.failures if resource_of(f) == name]
        left = max((when for when in failed if when is not None), default=None)
    fence = confirmed_fence(view, name)
    if left is None or fence is None or _completed(fence) + FENCE_CLOCK_SLACK < left:
        return None
    return fence


def _offline(view: ClusterView, name: str) -> NodeHealth:
    node = view.snapshot.status.node(name)
    assert node is not None  # noqa: S101 — called for the snapshot's own nodes
    if not view.snapshot.status.quorate:
        reason = "out of sight of this partition, which has no quorum"
        return NodeHealth(name, Health.HOST_UNREACHABLE_UNFENCED, [reason])
    joined = view.joined.get(name)
    rejoined = joined is not None and view.left is not None and joined > view.left.get(name, 0.0)
    joining = NodeHealth(
        name,
        Health.DEGRADED,
        [f"a cluster member again since {rfc3339(joined or 0.0)}, not yet online in Pacemaker"],
    )
    if rejoined and view.taken is not None and (joined or 0.0) > view.taken:
        return joining  # the snapshot predates the join: it cannot say unclean since
    fence = fence_since_loss(view, name)  # fenced: Pacemaker marks it clean next
    if node.unclean and fence is None:
        reasons = ["lost without a clean shutdown (unclean)", _fencing_so_far(view, name)]
        return NodeHealth(name, Health.HOST_UNREACHABLE_UNFENCED, reasons)
    if rejoined:
        return joining
    fence = fence or confirmed_fence(view, name)
    if fence is not None:
        return NodeHealth(name, Health.HOST_DOWN_FENCED, [describe_fence(fence)], fence=fence)
    why = "fencing evidence unavailable" if view.fences is None else "not fenced"
    return NodeHealth(name, Health.HOST_LEFT_CLUSTER, [f"left the cluster cleanly ({why})"])


def confirmed_fence(view: ClusterView, name: str) -> FenceRecord | None:
    """The latest successful off/reboot of `name` since it last joined, if any."""
    joined = view.joined.get(name, float("-inf"))
    fences = [
        f
        for f in view.fences or []
        if f.target == name
        and f.powers_off
        and f.completed is not None
        and f.completed + FENCE_CLOCK_SLACK >= joined
    ]
    return max(fences, key=_completed) if fences else None


def _completed(fence: FenceRecord) -> float:
    return fence.completed or 0.0


def _fencing_so_far(view: ClusterView, name: str) -> str:
    if view.fences is None:
        return "fencing evidence unavailable"
    attempts = [f for f in view.fences if f.target == name and f.action in ("off", "reboot")]
    if not attempts:
        return "no fencing result yet"
    last = max(attempts, key=lambda f: f.completed or float("inf"))
    if last.state == "pending" or last.completed is None:
        return f"{last.action} pending (asked by {last.origin or '?'})"
    if last.completed + FENCE_CLOCK_SLACK < view.joined.get(name, float("-inf")):
        return "no fencing result since it last joined"
    return f"last {last.action} {last.state} at {rfc3339(last.completed)}"


def describe_fence(fence: FenceRecord) -> str:
    when = rfc3339(fence.completed) if fence.completed is not None else "?"
    devices = f", devices {', '.join(fence.devices)}" if fence.devices else ""
    return (
        f"fenced: {fence.action} by {fence.executioner or '?'} at {when}{devices} "
        f"({fence.source})"
    )


def _online(view: ClusterView, name: str) -> NodeHealth:
    snapshot = view.snapshot
    node = snapshot.status.node(name)
    assert node is not None  # noqa: S101 — called for the snapshot's own nodes
    detail = snapshot.details.get(name, _UP)
    down, degraded, notes = _services(snapshot, name)
    flags = [
        (not snapshot.status.quorate, "this partition has no quorum"),
        (node.unclean, "unclean: the cluster is fencing it"),
        (node.standby, "standby: runs no resources"),
        (node.maintenance, "maintenance: resources not monitored"),
        (node.pending, "joining (pending)"),
        (detail.shutdown, "shutting down"),
        (detail.health not in ("green", ""), f"node health {detail.health}"),
    ]
    degraded += [text for on, text in flags if on]
    degraded += _dependencies_down(snapshot.attributes.get(name, {}))
    health = Health.SERVICE_DOWN_HOST_UP if down else Health.DEGRADED if degraded else Health.OK
    reasons = [text for _, text in down] + degraded + notes
    return NodeHealth(name, health, reasons, services_down=[rsc for rsc, _ in down])


def _services(snapshot: Snapshot, name: str) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """(down: [(resource, why)], degraded, notes) for the resources that failed on `name`."""
    status = snapshot.status
    connections = remote_connections(snapshot)  # their failures are the remote nodes'
    failed_ops = {resource_of(f): f for f in status.failures if f.node == name}
    failed_here = {r.id for r in status.resources if r.failed and name in r.nodes}
    for connection in connections:
        failed_ops.pop(connection, None)
        failed_here.discard(connection)
    down: list[tuple[str, str]] = []
    degraded: list[str] = []
    notes: list[str] = []
    for rsc in sorted(set(failed_ops) | failed_here):
        op = failed_ops.get(rsc)
        detail = f" ({describe_failure(op)})" if op else ""
        here = [r for r in status.instances(rsc) if name in r.nodes]
        elsewhere = [n for n in status.running_on(rsc) if n != name]
        if any(r.failed for r in here):
            down.append((rsc, f"{rsc} failed here{detail}"))
        elif any(r.active for r in here):
            notes.append(f"{rsc} recovered after a failure{detail}")
        elif rsc in snapshot.clone_instances or not elsewhere:
            down.append((rsc, f"{rsc} stopped here after a failure{detail}"))
        else:
            degraded.append(f"{rsc} failed here{detail}, now on {', '.join(elsewhere)}")
    return down, degraded, notes


def describe_failure(failure: Failure) -> str:
    reason = f", {failure.exit_reason}" if failure.exit_reason else ""
    return f"{failure.task}: rc={failure.exit_code}{reason}"


def resource_of(failure: Failure) -> str:
    """The resource of a failed operation: its op_key without "_<task>_<interval>"."""
    return failure.op_key.removesuffix(f"_{failure.task}_{failure.interval_ms}")


def _dependencies_down(attributes: dict[str, str]) -> list[str]:
    """hakit agents publish hakit-<resource>-<dependency> = ok|down per node."""
    found = []
    for name, value in sorted(attributes.items()):
        if name.startswith("hakit-") and value == "down":
            resource, _, dependency = name.removeprefix("hakit-").rpartition("-")
            found.append(f"{resource}: {dependency} unreachable from this node ({name}=down)")
    return found


# --- presentation ---------------------------------------------------------------------


def rfc3339(when: float) -> str:
    """A UNIX time as RFC 3339 UTC with microseconds (SOL 003's DateTime)."""
    moment = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def as_dict(report: HealthReport) -> dict[str, object]:
    """The report as JSON-ready data (`hakit health --json`)."""
    return {
        "taken": rfc3339(report.taken),
        "dc": report.dc,
        "quorate": report.quorate,
        "nodes": [
            {
                "node": n.node,
                "health": n.health.value,
                "safe_action": n.health.safe_action,
                "evacuation_safe": n.health is Health.HOST_DOWN_FENCED,
                "reasons": n.reasons,
                "services_down": n.services_down,
                "fence": None
                if n.fence is None
                else {
                    "action": n.fence.action,
                    "completed": rfc3339(n.fence.completed or 0.0),
                    "executioner": n.fence.executioner,
                    "devices": list(n.fence.devices),
                    "source": n.fence.source,
                },
            }
            for n in report.nodes
        ],
    }


def health_table(report: HealthReport) -> str:
    """The report as a table (`hakit health`)."""
    summary = (
        f"DC {report.dc or '-'}, {'quorate' if report.quorate else 'NO QUORUM'}, "
        f"{len(report.nodes)} nodes, at {rfc3339(report.taken)}"
    )
    width = max([len(n.node) for n in report.nodes] + [4])
    lines = [summary, f"{'NODE':<{width}}  {'HEALTH':<25}  REASONS"]
    for n in report.nodes:
        lines.append(f"{n.node:<{width}}  {n.health.value:<25}  {'; '.join(n.reasons) or '-'}")
    return "\n".join(lines) + "\n"
