"""Dependency health (broker, database, consumers): this instance's record in a small
state file, published as transient node attributes hakit-<resource>-<dependency> only
when a state changes (and every HEALTH_REPUBLISH_SECONDS), and the cluster-wide verdict
on a lost dependency from the other instances' attributes."""

from __future__ import annotations

import os
import time

from hakit.ocf import Context, OCFExit
from hakit.ocf._typing import TYPE_CHECKING
from hakit.resource_agents import service
from hakit.resource_agents.openstack.parameters import PUBLISH

if TYPE_CHECKING:
    from typing import Any

HEALTH_REPUBLISH_SECONDS = 300
#: The dependencies published as node attributes (the health file keeps more).
PUBLISHED = ("broker", "db")


def health_path(ctx: Context) -> str:
    return f"{service.run_dir(ctx)}/{ctx.state_name}.health"


class Health:
    """Per dependency: state (ok|down), since when, when publishing was last tried,
    whether the node attribute holds the state, and whether "ok" ended an outage."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.entries: dict[str, list[Any]] = {}
        self.changed = False
        try:
            with open(health_path(ctx), encoding="ascii") as handle:
                for line in handle:
                    name, state, since, tried, published, after = line.split()
                    self.entries[name] = [
                        state,
                        float(since),
                        float(tried),
                        published == "1",
                        after == "1",
                    ]
        except (OSError, ValueError):
            self.entries = {}

    def set(self, name: str, ok: bool) -> float:
        """Record the state; return how long it has been in it (seconds)."""
        state = "ok" if ok else "down"
        now = time.time()
        entry = self.entries.get(name)
        if entry is None or entry[0] != state:
            entry = [state, now, 0.0, bool(entry and entry[3]), entry is not None]
            self.entries[name] = entry
            self.changed = True
        return now - float(entry[1])

    def recovered_within(self, name: str, seconds: float) -> bool:
        entry = self.entries.get(name)
        return bool(
            entry and entry[0] == "ok" and entry[4] and time.time() - float(entry[1]) < seconds
        )

    def publish(self) -> None:
        """Publish new states at once and old ones every HEALTH_REPUBLISH_SECONDS (a failed
        attempt, e.g. outside a cluster, is retried as rarely); save the file if changed."""
        now = time.time()
        if self.ctx.params.get(PUBLISH) is not False:
            for name, entry in self.entries.items():
                if name not in PUBLISHED or (
                    entry[2] and now - entry[2] < HEALTH_REPUBLISH_SECONDS
                ):
                    continue
                entry[2] = now
                entry[3] = set_attribute(self.ctx, attribute_name(self.ctx, name), entry[0])
                self.changed = True
        if self.changed:
            self.save()

    def save(self) -> None:
        os.makedirs(service.run_dir(self.ctx), mode=0o755, exist_ok=True)
        path = health_path(self.ctx)
        with open(path + ".new", "w", encoding="ascii") as handle:
            for name, (state, since, tried, published, after) in sorted(self.entries.items()):
                handle.write(f"{name} {state} {since:.3f} {tried:.3f} {published:d} {after:d}\n")
        os.replace(path + ".new", path)


def attribute_name(ctx: Context, dependency: str) -> str:
    return f"hakit-{ctx.state_name}-{dependency}"


def cluster_timeout(ctx: Context) -> float:
    return max(min(5.0, ctx.remaining(2)), 0.5)


def set_attribute(ctx: Context, name: str, value: str) -> bool:
    """attrd_updater -U; False (logged at debug) outside a cluster or on failure."""
    from hakit.ocf import cluster

    try:
        cluster.set_transient_attribute(name, value, timeout=cluster_timeout(ctx))
    except cluster.ClusterCommandError as error:
        ctx.log.debug(f"not published ({error})")
        return False
    return True


def peer_values(ctx: Context, dependency: str) -> dict[str, str] | None:
    """Other nodes' published values; None outside a cluster."""
    from hakit.ocf import cluster

    try:
        values = cluster.transient_attribute_values(
            attribute_name(ctx, dependency), timeout=cluster_timeout(ctx)
        )
    except cluster.ClusterCommandError as error:
        ctx.log.debug(f"no cluster view of {dependency} ({error})")
        return None
    me = ctx.node or os.uname().nodename
    return {node: value for node, value in values.items() if node != me}


def quorate(ctx: Context) -> bool:
    """False only when the cluster answers that this partition has no quorum."""
    from hakit.ocf import cluster

    try:
        return cluster.is_quorate(timeout=cluster_timeout(ctx))
    except cluster.ClusterCommandError:
        return True


def dependency_verdict(
    dependency: str, down_for: float, grace: float, peers: dict[str, str] | None
) -> tuple[int, str]:
    """What a lost dependency means for this instance: (OCF code, reason).

    Down for less than `grace`: degraded (services reconnect by themselves). Then: failed
    if no other instance reports (single instance, or no cluster: recovery is the only
    remedy) or another instance still reaches it (only this node is cut off); degraded
    when every other instance reports it down too (a restart storm cannot help).
    """
    if down_for < grace:
        return OCFExit.DEGRADED, (
            f"{dependency} lost {down_for:.0f}s ago; waiting up to {grace:.0f}s for reconnection"
        )
    if not peers:
        return OCFExit.ERR_GENERIC, f"{dependency} lost for {down_for:.0f}s"
    reaching = sorted(node for node, value in peers.items() if value == "ok")
    if reaching:
        return OCFExit.ERR_GENERIC, (
            f"{dependency} lost for {down_for:.0f}s here only (reached from {', '.join(reaching)})"
        )
    return OCFExit.DEGRADED, (
        f"{dependency} down for every instance (here and on {', '.join(sorted(peers))}): "
        "not asking for recovery"
    )
