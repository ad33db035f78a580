"""Timing profiles of the lab (and of hakit clusters): `default` is Pacemaker's and
Corosync's own defaults, `fast` is hakit's. The reasoning is in docs/lab.md."""

from __future__ import annotations

from dataclasses import dataclass


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
        token = f"\ttoken: {self.token_ms}\n" if self.token_ms else ""
        if self.token_coefficient_ms is not None:
            token += f"\ttoken_coefficient: {self.token_coefficient_ms}\n"
        members = "".join(
            f"\tnode {{\n\t\tname: {name}\n\t\tnodeid: {i}\n\t\tring0_addr: {address}\n\t}}\n"
            for i, (name, address) in enumerate(nodes, 1)
        )
        return (
            f"# written by hakit lab (profile {self.name})\n"
            "totem {\n\tversion: 2\n\tcluster_name: hakit-lab\n\ttransport: knet\n"
            f"\tcrypto_cipher: aes256\n\tcrypto_hash: sha256\n\tkeyfile: {keyfile}\n{token}}}\n"
            f"nodelist {{\n{members}}}\n"
            "quorum {\n\tprovider: corosync_votequorum\n}\n"
            "logging {\n\tfileline: off\n\tto_stderr: no\n\tto_logfile: yes\n"
            "\tlogfile: /var/log/corosync/corosync.log\n\tto_syslog: no\n"
            "\ttimestamp: hires\n\tdebug: off\n}\n"
        )


PROFILES = {
    "default": Profile("default", None, None, "20s", "15min", "10s"),
    "fast": Profile("fast", 1000, 0, "3s", "1min", "5s"),
}
