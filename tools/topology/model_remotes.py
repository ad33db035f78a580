"""The model of the topology's `remotes:` section: Pacemaker Remote nodes. A part of
`model`, which imports it (`model.Remotes`), so that loading, the JSON Schema and the
reference see one model; apart only to keep each module within the house's 500 lines.
What the section becomes in the CIB, its checks and its import: `remotes`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from hakit.tools.topology.model_doc import doc

if TYPE_CHECKING:
    from hakit.tools.topology.model import Scalar


@dataclass
class Remote:
    """A node that runs pacemaker-remoted (a compute, say) instead of Corosync: the
    cluster reaches it through an ocf:pacemaker:remote resource of its name."""

    name: str = field(metadata=doc("the node name; also the connection resource's id"))
    address: str = field(metadata=doc("its IP address or host name (the `server` parameter)"))
    port: int | None = field(default=None, metadata=doc("default: the section's port"))
    reconnect_interval: str | None = field(
        default=None, metadata=doc("default: the section's reconnect_interval")
    )
    fence: list[str] = field(
        default_factory=list, metadata=doc("fence devices for it: its fencing level 1")
    )
    attributes: dict[str, Scalar] = field(default_factory=dict, metadata=doc("node attributes"))
    utilization: dict[str, int] = field(default_factory=dict, metadata=doc("capacities"))


@dataclass
class Remotes:
    """Pacemaker Remote nodes (computes beyond Corosync's ~32 members). Each is rendered
    as an ocf:pacemaker:remote resource of its name (server, port, reconnect_interval;
    monitor every 20s), a `<node type="remote">` with its attributes and utilization,
    and, with `fence:`, a fencing level 1 for it. The `resources:` run only on remotes
    (constraint `TOP-remotes-only`: -INFINITY where `#kind eq cluster`), every other
    top-level resource only on cluster nodes (`TOP-cluster-only`: -INFINITY where
    `#kind ne cluster`; TOP is the clone for a cloned resource); with discovery scoped,
    both also say resource-discovery=never, so nothing is probed where it cannot run."""

    port: int = field(default=3121, metadata=doc("pacemaker-remoted's TCP port"))
    reconnect_interval: str = field(
        default="60s", metadata=doc("retry a lost connection this often (0s: at once)")
    )
    authkey: str = field(
        default="/etc/pacemaker/authkey",
        metadata=doc("the shared key's path on every node (for playbooks; not in the CIB)"),
    )
    discovery: Literal["scoped", "unscoped"] = field(
        default="scoped",
        metadata=doc("scoped: no probes where a resource may not run; unscoped: probes everywhere"),
    )
    resources: list[str] = field(
        default_factory=list,
        metadata=doc("resources (primitives, groups, clones, bundles) that run only on remotes"),
    )
    nodes: list[Remote] = field(default_factory=list, metadata=doc("the remote nodes"))
