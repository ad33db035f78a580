"""The topology model: every object an operator can describe, as typed dataclasses.

Field types drive the loader (type checks, unknown keys, "did you mean"), and field
docstrings (the `doc` metadata) drive error hints and reference docs. Names are
the operator's; CIB ids are derived from them the way pcs derives them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hakit.tools.topology import model_correlation, model_qos, model_remotes
from hakit.tools.topology.model_doc import doc

#: the classes of the `remotes:`, `correlation:` and `qos:` sections, each in a module of
#: its own (this one would be over 500 lines); named here, where the loader resolves types
Remote = model_remotes.Remote
Remotes = model_remotes.Remotes
CorrelationRule = model_correlation.CorrelationRule
MassEvent = model_correlation.MassEvent
Correlation = model_correlation.Correlation
QoS = model_qos.QoS
QoSTier = model_qos.QoSTier
ComputeQoS = model_qos.ComputeQoS
DiskQoS = model_qos.DiskQoS
NetworkQoS = model_qos.NetworkQoS
Enforcement = model_qos.Enforcement

#: Scalar values accepted in name/value maps (params, meta, properties, attributes).
Scalar = str | int | float | bool
Role = Literal["Promoted", "Unpromoted", "Started", "Stopped"]
Action = Literal["start", "stop", "promote", "demote"]
Kind = Literal["Mandatory", "Optional", "Serialize"]


@dataclass
class Op:
    """One operation of a resource (monitor, start, stop, promote, ...)."""

    name: str = field(metadata=doc("operation: monitor, start, stop, promote, demote, ..."))
    interval: str = field(default="0s", metadata=doc("e.g. 10s; 0s for start/stop"))
    timeout: str | None = field(default=None, metadata=doc("e.g. 20s"))
    check_level: int | None = field(default=None, metadata=doc("OCF_CHECK_LEVEL: 0, 10, 20"))
    role: Role | None = field(default=None, metadata=doc("run only in this role"))
    on_fail: str | None = field(default=None, metadata=doc("ignore, block, stop, restart, fence"))
    start_delay: str | None = field(default=None, metadata=doc("wait this long before it"))
    enabled: bool | None = field(default=None, metadata=doc("false: never run it"))
    record_pending: bool | None = field(default=None, metadata=doc("record it as pending"))
    interval_origin: str | None = field(default=None, metadata=doc("when recurring runs start"))
    description: str | None = field(default=None, metadata=doc("free text"))
    meta: dict[str, Scalar] = field(default_factory=dict, metadata=doc("op meta attributes"))


@dataclass
class NvSet:
    """A further name/value set, used where its rule matches (the highest score first)."""

    id: str = field(metadata=doc("the set's id"))
    values: dict[str, Scalar] = field(metadata=doc("names and values"))
    rule: str | None = field(default=None, metadata=doc("pcs rule syntax, e.g. `#uname eq node1`"))
    score: str | None = field(default=None, metadata=doc("precedence: integer or INFINITY"))


@dataclass
class CloneSpec:
    """Makes a resource (or group) a clone; `promotable` for promoted/unpromoted roles."""

    promotable: bool = field(default=False, metadata=doc("promoted/unpromoted roles"))
    max: int | None = field(default=None, metadata=doc("clone-max: instances in total"))
    node_max: int | None = field(default=None, metadata=doc("clone-node-max: per node"))
    promoted_max: int | None = field(default=None, metadata=doc("promoted-max"))
    meta: dict[str, Scalar] = field(default_factory=dict, metadata=doc("clone meta attributes"))
    id: str | None = field(default=None, metadata=doc("the clone's id; default NAME-clone"))
    description: str | None = field(default=None, metadata=doc("free text"))


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
    description: str | None = field(default=None, metadata=doc("free text"))
    instance_sets: list[NvSet] = field(
        default_factory=list, metadata=doc("more instance attribute sets, with rules")
    )
    meta_sets: list[NvSet] = field(
        default_factory=list, metadata=doc("more meta attribute sets, with rules")
    )


@dataclass
class Group:
    """Resources that start in order on one node."""

    name: str = field(metadata=doc("the group id"))
    members: list[str] = field(metadata=doc("resource names, in start order"))
    meta: dict[str, Scalar] = field(default_factory=dict, metadata=doc("meta attributes"))
    clone: CloneSpec | None = field(default=None, metadata=doc("run the group as a clone"))
    description: str | None = field(default=None, metadata=doc("free text"))


@dataclass
class FenceDevice:
    """A stonith device."""

    name: str = field(metadata=doc("the device id"))
    agent: str = field(metadata=doc("fence agent, e.g. fence_ipmilan"))
    params: dict[str, Scalar] = field(default_factory=dict, metadata=doc("agent parameters"))
    meta: dict[str, Scalar] = field(default_factory=dict, metadata=doc("meta attributes"))
    ops: list[Op] = field(default_factory=list, metadata=doc("operations"))
    description: str | None = field(default=None, metadata=doc("free text"))


@dataclass
class FenceLevel:
    """Devices tried together at one level for a target (lower index first)."""

    index: int = field(metadata=doc("1, 2, ... (tried in order)"))
    devices: list[str] = field(metadata=doc("device names, all must succeed"))
    target: str | None = field(default=None, metadata=doc("a node name"))
    target_pattern: str | None = field(default=None, metadata=doc("a regular expression"))
    target_attribute: str | None = field(default=None, metadata=doc("name=value"))
    id: str | None = field(default=None, metadata=doc("default as pcs: fl-TARGET-INDEX"))


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
    """Prefer (positive score) or avoid (negative) a node, or the nodes a rule matches."""

    resource: str | None = field(
        default=None, metadata=doc("resource, group, clone, bundle or tag name")
    )
    resource_pattern: str | None = field(
        default=None, metadata=doc("instead of resource: a regular expression over resource ids")
    )
    node: str | None = field(default=None, metadata=doc("node name (or give a rule)"))
    rule: str | None = field(
        default=None, metadata=doc("pcs rule syntax, e.g. `defined pingd and #uname ne n3`")
    )
    score: str = field(default="INFINITY", metadata=doc("integer, INFINITY or -INFINITY"))
    score_attribute: str | None = field(
        default=None, metadata=doc("with a rule: the node attribute that gives the score")
    )
    role: Role | None = field(default=None, metadata=doc("only for this role"))
    resource_discovery: Literal["always", "never", "exclusive"] | None = field(
        default=None, metadata=doc("probe the resource on the node: always, never, exclusive")
    )
    id: str | None = field(default=None, metadata=doc("the constraint id; default as pcs"))


@dataclass
class Colocation:
    """Place `resource` where `with` runs (or away from it, with a negative score)."""

    resource: str = field(metadata=doc("the dependent resource"))
    with_: str = field(metadata=doc("the resource it follows (YAML key: with)"))
    score: str = field(default="INFINITY", metadata=doc("integer, INFINITY or -INFINITY"))
    role: Role | None = field(default=None, metadata=doc("the dependent's role"))
    with_role: Role | None = field(default=None, metadata=doc("the followed resource's role"))
    node_attribute: str | None = field(
        default=None, metadata=doc("colocate on nodes with the same value of it; default #uname")
    )
    id: str | None = field(default=None, metadata=doc("the constraint id; default as pcs"))


@dataclass
class Order:
    """Start `first` before `then` (and stop in reverse, if symmetrical)."""

    first: str = field(metadata=doc("resource started first"))
    then: str = field(metadata=doc("resource started after it"))
    kind: Kind | None = field(
        default=None, metadata=doc("Mandatory (the default), Optional or Serialize")
    )
    first_action: Action | None = field(default=None, metadata=doc("default start"))
    then_action: Action | None = field(default=None, metadata=doc("default: first's action"))
    symmetrical: bool | None = field(default=None, metadata=doc("stop in reverse order"))
    require_all: bool | None = field(
        default=None, metadata=doc("false: `then` may start once any instance of a clone has")
    )
    id: str | None = field(default=None, metadata=doc("the constraint id; default as pcs"))


@dataclass
class ResourceSet:
    """Resources a set constraint treats together."""

    resources: list[str] = field(metadata=doc("resource, group, clone, bundle or tag names"))
    sequential: bool | None = field(default=None, metadata=doc("false: members independent"))
    require_all: bool | None = field(default=None, metadata=doc("false: any one member is enough"))
    role: Role | None = field(default=None, metadata=doc("the members' role"))
    action: Action | None = field(default=None, metadata=doc("the members' action (orders)"))
    id: str | None = field(default=None, metadata=doc("the set's id; default as pcs"))
    ordering: Literal["group", "listed"] | None = field(
        default=None, metadata=doc("order sets: group or listed")
    )
    kind: Kind | None = field(default=None, metadata=doc("order sets: this set's kind"))
    score: str | None = field(default=None, metadata=doc("colocation sets: this set's score"))


@dataclass
class ColocationSet:
    """A colocation of resource sets (each set follows the one before it)."""

    sets: list[ResourceSet] = field(metadata=doc("two or more sets, or one sequential set"))
    score: str = field(default="INFINITY", metadata=doc("integer, INFINITY or -INFINITY"))
    id: str | None = field(default=None, metadata=doc("the constraint id; default as pcs"))


@dataclass
class OrderSet:
    """An order of resource sets (each set starts after the one before it)."""

    sets: list[ResourceSet] = field(metadata=doc("the sets, in start order"))
    kind: Kind | None = field(
        default=None, metadata=doc("Mandatory (the default), Optional or Serialize")
    )
    symmetrical: bool | None = field(default=None, metadata=doc("stop in reverse order"))
    id: str | None = field(default=None, metadata=doc("the constraint id; default as pcs"))


@dataclass
class Ticket:
    """Run resources only while the cluster holds a ticket (multi-site, booth)."""

    ticket: str = field(metadata=doc("the ticket name"))
    resource: str | None = field(default=None, metadata=doc("one resource (or give sets)"))
    role: Role | None = field(default=None, metadata=doc("the resource's role"))
    sets: list[ResourceSet] = field(default_factory=list, metadata=doc("instead of resource"))
    loss_policy: Literal["stop", "demote", "fence", "freeze"] | None = field(
        default=None, metadata=doc("what happens when the ticket is revoked; default stop")
    )
    id: str | None = field(default=None, metadata=doc("the constraint id; default as pcs"))


@dataclass
class Constraints:
    """Where resources run, with what, and in which order."""

    locations: list[Location] = field(default_factory=list, metadata=doc("location constraints"))
    colocations: list[Colocation] = field(default_factory=list, metadata=doc("colocations"))
    orders: list[Order] = field(default_factory=list, metadata=doc("order constraints"))
    colocation_sets: list[ColocationSet] = field(
        default_factory=list, metadata=doc("colocations of resource sets")
    )
    order_sets: list[OrderSet] = field(default_factory=list, metadata=doc("orders of sets"))
    tickets: list[Ticket] = field(default_factory=list, metadata=doc("ticket constraints"))


@dataclass
class DefaultSet:
    """Defaults that apply only where a rule matches; the highest score wins."""

    name: str = field(metadata=doc("the meta_attributes id"))
    meta: dict[str, Scalar] = field(metadata=doc("the defaults"))
    rule: str | None = field(
        default=None, metadata=doc("pcs rule syntax, e.g. `resource ocf:hakit:` or `op monitor`")
    )
    score: str | None = field(
        default=None, metadata=doc("precedence among sets: integer or INFINITY")
    )


@dataclass
class Defaults:
    """Meta attributes every resource / operation gets unless it sets its own."""

    resources: dict[str, Scalar] = field(default_factory=dict, metadata=doc("rsc_defaults"))
    operations: dict[str, Scalar] = field(default_factory=dict, metadata=doc("op_defaults"))
    resource_sets: list[DefaultSet] = field(
        default_factory=list, metadata=doc("rsc_defaults with rules and scores")
    )
    operation_sets: list[DefaultSet] = field(
        default_factory=list, metadata=doc("op_defaults with rules and scores")
    )


@dataclass
class PortMap:
    """A port the bundle's containers publish."""

    port: int | None = field(default=None, metadata=doc("the port (host and container)"))
    internal_port: int | None = field(default=None, metadata=doc("the container's port"))
    range: str | None = field(default=None, metadata=doc("FIRST-LAST instead of port"))


@dataclass
class StorageMap:
    """A host directory mounted into the bundle's containers."""

    target_dir: str = field(metadata=doc("path inside the container"))
    source_dir: str | None = field(default=None, metadata=doc("host path"))
    source_dir_root: str | None = field(default=None, metadata=doc("per-replica host paths"))
    options: str | None = field(default=None, metadata=doc("mount options, e.g. rw"))


@dataclass
class Bundle:
    """Containers Pacemaker runs as replicas, optionally with a resource inside each."""

    name: str = field(metadata=doc("the bundle id"))
    image: str = field(metadata=doc("container image"))
    runtime: Literal["podman", "docker", "rkt"] = field(
        default="podman", metadata=doc("container runtime")
    )
    replicas: int | None = field(default=None, metadata=doc("containers in total"))
    replicas_per_host: int | None = field(default=None, metadata=doc("per node"))
    promoted_max: int | None = field(default=None, metadata=doc("promoted replicas"))
    run_command: str | None = field(default=None, metadata=doc("command inside the container"))
    options: str | None = field(default=None, metadata=doc("extra runtime options"))
    network: dict[str, Scalar] = field(
        default_factory=dict, metadata=doc("ip-range-start, control-port, host-interface, ...")
    )
    ports: list[PortMap] = field(default_factory=list, metadata=doc("port mappings"))
    storage: list[StorageMap] = field(default_factory=list, metadata=doc("storage mappings"))
    resource: str | None = field(default=None, metadata=doc("a primitive to run inside"))
    meta: dict[str, Scalar] = field(default_factory=dict, metadata=doc("meta attributes"))


@dataclass
class Tag:
    """A name for several resources, usable in constraints."""

    name: str = field(metadata=doc("the tag id"))
    resources: list[str] = field(metadata=doc("resource, group, clone or bundle names"))


@dataclass
class AclPermission:
    """Read, write or deny a part of the CIB (by XPath or by an object's id)."""

    kind: Literal["read", "write", "deny"] = field(metadata=doc("read, write or deny"))
    xpath: str | None = field(default=None, metadata=doc("e.g. /cib/status"))
    reference: str | None = field(default=None, metadata=doc("an id in the CIB"))


@dataclass
class AclRole:
    """A named set of permissions."""

    name: str = field(metadata=doc("the role id"))
    permissions: list[AclPermission] = field(default_factory=list, metadata=doc("in order"))
    description: str | None = field(default=None, metadata=doc("free text"))


@dataclass
class AclTarget:
    """A user or a group and the roles it has."""

    name: str = field(metadata=doc("the system user or group name"))
    roles: list[str] = field(default_factory=list, metadata=doc("role names"))


@dataclass
class Acls:
    """Who may read or change what (needs the property enable-acl: true)."""

    roles: list[AclRole] = field(default_factory=list, metadata=doc("roles"))
    users: list[AclTarget] = field(default_factory=list, metadata=doc("users and their roles"))
    groups: list[AclTarget] = field(default_factory=list, metadata=doc("groups and their roles"))


@dataclass
class Recipient:
    """Where an alert agent sends one copy (an address, a file, a URL: the agent decides)."""

    value: str = field(metadata=doc("passed to the agent as CRM_alert_recipient"))
    params: dict[str, Scalar] = field(default_factory=dict, metadata=doc("instance attributes"))
    meta: dict[str, Scalar] = field(default_factory=dict, metadata=doc("e.g. timestamp-format"))
    id: str | None = field(default=None, metadata=doc("default as pcs: ALERT-recipient[-N]"))
    description: str | None = field(default=None, metadata=doc("free text"))


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
    description: str | None = field(default=None, metadata=doc("free text"))


@dataclass
class Corosync:
    """What corosync.conf takes from the topology (`hakit topology corosync-conf`): knet, one
    link per address a node is given, the nodes in this file's order."""

    profile: Literal["default", "fast"] = field(
        default="default",
        metadata=doc("token timing: default (Corosync's own, 3 s) or fast (hakit's, 1 s)"),
    )
    token: int | None = field(default=None, metadata=doc("totem.token in ms; beats the profile"))
    token_coefficient: int | None = field(
        default=None, metadata=doc("totem.token_coefficient in ms; beats the profile")
    )


@dataclass
class Cluster:
    """The cluster's name, its properties (crm_config) and its Corosync settings."""

    name: str = field(metadata=doc("cluster-name"))
    properties: dict[str, Scalar] = field(default_factory=dict, metadata=doc("crm_config"))
    property_sets: list[NvSet] = field(
        default_factory=list, metadata=doc("more cluster property sets, with rules")
    )
    corosync: Corosync = field(
        default_factory=Corosync, metadata=doc("corosync.conf settings (not in the CIB)")
    )


@dataclass
class Topology:
    """A whole cluster configuration."""

    cluster: Cluster = field(metadata=doc("name and properties"))
    nodes: list[Node] = field(default_factory=list, metadata=doc("cluster nodes"))
    remotes: Remotes = field(
        default_factory=Remotes, metadata=doc("Pacemaker Remote nodes (computes)")
    )
    fencing: Fencing = field(default_factory=Fencing, metadata=doc("devices and levels"))
    templates: dict[str, Template] = field(default_factory=dict, metadata=doc("reusable defaults"))
    resources: list[Resource] = field(default_factory=list, metadata=doc("primitives"))
    groups: list[Group] = field(default_factory=list, metadata=doc("resource groups"))
    bundles: list[Bundle] = field(default_factory=list, metadata=doc("container bundles"))
    tags: list[Tag] = field(default_factory=list, metadata=doc("named lists of resources"))
    constraints: Constraints = field(default_factory=Constraints, metadata=doc("placement"))
    defaults: Defaults = field(default_factory=Defaults, metadata=doc("resource/op defaults"))
    alerts: list[Alert] = field(default_factory=list, metadata=doc("alert agents"))
    acls: Acls = field(default_factory=Acls, metadata=doc("access control"))
    correlation: Correlation = field(
        default_factory=Correlation, metadata=doc("VNF error-report correlation rules")
    )
    qos: QoS = field(default_factory=QoS, metadata=doc("service levels across services"))
