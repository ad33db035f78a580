"""The topology model: every object an operator can describe, as typed dataclasses.

Field types drive the loader (type checks, unknown keys, "did you mean"), and field
docstrings (the `doc` metadata) drive error hints and reference docs. Names are
the operator's; CIB ids are derived from them the way pcs derives them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: Scalar values accepted in name/value maps (params, meta, properties, attributes).
Scalar = str | int | float | bool


def doc(text: str) -> dict[str, str]:
    """Field metadata: the sentence shown in hints and generated docs."""
    return {"doc": text}


@dataclass
class Op:
    """One operation of a resource (monitor, start, stop, promote, ...)."""

    name: str = field(metadata=doc("operation: monitor, start, stop, promote, demote, ..."))
    interval: str = field(default="0s", metadata=doc("e.g. 10s; 0s for start/stop"))
    timeout: str | None = field(default=None, metadata=doc("e.g. 20s"))
    check_level: int | None = field(default=None, metadata=doc("OCF_CHECK_LEVEL: 0, 10, 20"))
    role: Literal["Promoted", "Unpromoted", "Started", "Stopped"] | None = field(
        default=None, metadata=doc("run only in this role")
    )
    on_fail: str | None = field(default=None, metadata=doc("ignore, block, stop, restart, fence"))


@dataclass
class CloneSpec:
    """Makes a resource (or group) a clone; `promotable` for promoted/unpromoted roles."""

    promotable: bool = field(default=False, metadata=doc("promoted/unpromoted roles"))
    max: int | None = field(default=None, metadata=doc("clone-max: instances in total"))
    node_max: int | None = field(default=None, metadata=doc("clone-node-max: per node"))
    promoted_max: int | None = field(default=None, metadata=doc("promoted-max"))
    meta: dict[str, Scalar] = field(default_factory=dict, metadata=doc("clone meta attributes"))


@dataclass
class Template:
    """Reusable defaults: a resource with `template: NAME` starts from these."""

    agent: str | None = field(default=None, metadata=doc("e.g. ocf:hakit:service"))
    params: dict[str, Scalar] = field(default_factory=dict, metadata=doc("instance attributes"))
    meta: dict[str, Scalar] = field(default_factory=dict, metadata=doc("meta attributes"))
    ops: list[Op] = field(default_factory=list, metadata=doc("operations"))
    clone: CloneSpec | None = field(default=None, metadata=doc("make every user a clone"))


@dataclass
class Resource:
    """A primitive: an agent with parameters, operations and meta attributes."""

    name: str = field(metadata=doc("the resource id"))
    agent: str | None = field(default=None, metadata=doc("class:provider:type or class:type"))
    template: str | None = field(default=None, metadata=doc("name of a template to start from"))
    params: dict[str, Scalar] = field(default_factory=dict, metadata=doc("instance attributes"))
    meta: dict[str, Scalar] = field(default_factory=dict, metadata=doc("meta attributes"))
    ops: list[Op] = field(default_factory=list, metadata=doc("operations"))
    utilization: dict[str, int] = field(default_factory=dict, metadata=doc("e.g. cpu: 2"))
    clone: CloneSpec | None = field(default=None, metadata=doc("run it as a clone"))


@dataclass
class Group:
    """Resources that start in order on one node."""

    name: str = field(metadata=doc("the group id"))
    members: list[str] = field(metadata=doc("resource names, in start order"))
    meta: dict[str, Scalar] = field(default_factory=dict, metadata=doc("meta attributes"))
    clone: CloneSpec | None = field(default=None, metadata=doc("run the group as a clone"))


@dataclass
class FenceDevice:
    """A stonith device."""

    name: str = field(metadata=doc("the device id"))
    agent: str = field(metadata=doc("fence agent, e.g. fence_ipmilan"))
    params: dict[str, Scalar] = field(default_factory=dict, metadata=doc("agent parameters"))
    meta: dict[str, Scalar] = field(default_factory=dict, metadata=doc("meta attributes"))
    ops: list[Op] = field(default_factory=list, metadata=doc("operations"))


@dataclass
class FenceLevel:
    """Devices tried together at one level for a target (lower index first)."""

    index: int = field(metadata=doc("1, 2, ... (tried in order)"))
    devices: list[str] = field(metadata=doc("device names, all must succeed"))
    target: str | None = field(default=None, metadata=doc("a node name"))
    target_pattern: str | None = field(default=None, metadata=doc("a regular expression"))
    target_attribute: str | None = field(default=None, metadata=doc("name=value"))


@dataclass
class Fencing:
    """Fencing devices and the fencing topology (levels)."""

    devices: list[FenceDevice] = field(default_factory=list, metadata=doc("stonith devices"))
    levels: list[FenceLevel] = field(default_factory=list, metadata=doc("fencing topology"))


@dataclass
class Node:
    """A cluster node and its permanent attributes."""

    name: str = field(metadata=doc("the node name as the cluster knows it"))
    attributes: dict[str, Scalar] = field(default_factory=dict, metadata=doc("node attributes"))
    utilization: dict[str, int] = field(default_factory=dict, metadata=doc("capacities"))


@dataclass
class Location:
    """Prefer (positive score) or avoid (negative) a node for a resource."""

    resource: str = field(metadata=doc("resource, group or clone name"))
    node: str = field(metadata=doc("node name"))
    score: str = field(default="INFINITY", metadata=doc("integer, INFINITY or -INFINITY"))
    role: Literal["Promoted", "Unpromoted", "Started"] | None = field(
        default=None, metadata=doc("")
    )


@dataclass
class Colocation:
    """Place `resource` where `with` runs (or away from it, with a negative score)."""

    resource: str = field(metadata=doc("the dependent resource"))
    with_: str = field(metadata=doc("the resource it follows (YAML key: with)"))
    score: str = field(default="INFINITY", metadata=doc("integer, INFINITY or -INFINITY"))
    role: Literal["Promoted", "Unpromoted", "Started"] | None = field(
        default=None, metadata=doc("")
    )
    with_role: Literal["Promoted", "Unpromoted", "Started"] | None = field(
        default=None, metadata=doc("")
    )


@dataclass
class Order:
    """Start `first` before `then` (and stop in reverse, if symmetrical)."""

    first: str = field(metadata=doc("resource started first"))
    then: str = field(metadata=doc("resource started after it"))
    kind: Literal["Mandatory", "Optional", "Serialize"] = field(
        default="Mandatory", metadata=doc("Mandatory, Optional or Serialize")
    )
    first_action: Literal["start", "stop", "promote", "demote"] | None = field(
        default=None, metadata=doc("")
    )
    then_action: Literal["start", "stop", "promote", "demote"] | None = field(
        default=None, metadata=doc("")
    )
    symmetrical: bool | None = field(default=None, metadata=doc("stop in reverse order"))


@dataclass
class Constraints:
    """Where resources run, with what, and in which order."""

    locations: list[Location] = field(default_factory=list, metadata=doc("location constraints"))
    colocations: list[Colocation] = field(default_factory=list, metadata=doc("colocations"))
    orders: list[Order] = field(default_factory=list, metadata=doc("order constraints"))


@dataclass
class Defaults:
    """Meta attributes every resource / operation gets unless it sets its own."""

    resources: dict[str, Scalar] = field(default_factory=dict, metadata=doc("rsc_defaults"))
    operations: dict[str, Scalar] = field(default_factory=dict, metadata=doc("op_defaults"))


@dataclass
class Recipient:
    """Where an alert agent sends one copy (an address, a file, a URL: the agent decides)."""

    value: str = field(metadata=doc("passed to the agent as CRM_alert_recipient"))
    params: dict[str, Scalar] = field(default_factory=dict, metadata=doc("instance attributes"))
    meta: dict[str, Scalar] = field(default_factory=dict, metadata=doc("e.g. timestamp-format"))


@dataclass
class Alert:
    """An alert agent Pacemaker runs on node, fencing, resource and attribute events."""

    name: str = field(metadata=doc("the alert id"))
    path: str = field(metadata=doc("the agent's absolute path"))
    params: dict[str, Scalar] = field(default_factory=dict, metadata=doc("instance attributes"))
    meta: dict[str, Scalar] = field(default_factory=dict, metadata=doc("e.g. timeout"))
    select: list[Literal["nodes", "fencing", "resources", "attributes"]] = field(
        default_factory=list, metadata=doc("events to send; empty = all")
    )
    recipients: list[Recipient] = field(default_factory=list, metadata=doc("recipients"))


@dataclass
class Cluster:
    """The cluster's name and its properties (crm_config)."""

    name: str = field(metadata=doc("cluster-name"))
    properties: dict[str, Scalar] = field(default_factory=dict, metadata=doc("crm_config"))


@dataclass
class Topology:
    """A whole cluster configuration."""

    cluster: Cluster = field(metadata=doc("name and properties"))
    nodes: list[Node] = field(default_factory=list, metadata=doc("cluster nodes"))
    fencing: Fencing = field(default_factory=Fencing, metadata=doc("devices and levels"))
    templates: dict[str, Template] = field(default_factory=dict, metadata=doc("reusable defaults"))
    resources: list[Resource] = field(default_factory=list, metadata=doc("primitives"))
    groups: list[Group] = field(default_factory=list, metadata=doc("resource groups"))
    constraints: Constraints = field(default_factory=Constraints, metadata=doc("placement"))
    defaults: Defaults = field(default_factory=Defaults, metadata=doc("resource/op defaults"))
    alerts: list[Alert] = field(default_factory=list, metadata=doc("alert agents"))
