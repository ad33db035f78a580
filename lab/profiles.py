"""Timing profiles of the lab (and of hakit clusters): `default` is Pacemaker's and
Corosync's own defaults, `fast` is hakit's. The reasoning is in docs/lab.md."""

from __future__ import annotations

from dataclasses import dataclass

from hakit.tools.topology import corosync


@dataclass(frozen=True)
class Profile:
    """Timings that decide how fast a cluster notices and recovers."""

    name: str
    token_ms: int | None  # corosync totem.token; None = corosync's default (3000)
    token_coefficient_ms: int | None  # per node beyond two; None = corosync's default (650)
    dc_deadtime: str
    cluster_recheck_interval: str
    monitor_interval: str

    def cluster_properties(self) -> dict[str, str]:
        return {
            "dc-deadtime": self.dc_deadtime,
            "cluster-recheck-interval": self.cluster_recheck_interval,
        }

    def corosync_conf(self, nodes: list[tuple[str, str]], keyfile: str) -> str:
        timings = corosync.Timing(self.token_ms, self.token_coefficient_ms)
        return corosync.conf(
            "hakit-lab",
            [(name, [address]) for name, address in nodes],
            timings,
            keyfile=keyfile,
            header=f"written by hakit lab (profile {self.name})",
        )


PROFILES = {
    "default": Profile("default", None, None, "20s", "15min", "10s"),
    "fast": Profile("fast", 1000, 0, "3s", "1min", "5s"),
}
