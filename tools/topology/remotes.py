"""The topology's `remotes` section (Pacemaker Remote nodes, e.g. computes): what it
becomes in the CIB (`expand`: a connection resource per remote, resource-discovery and
placement constraints, fencing levels; render adds a `<node type="remote">` each), its
checks, and the section recovered from an imported CIB.

Placement follows `resources:`: the resources it lists run only on remotes, every other
top-level resource only on cluster nodes (Pacemaker's built-in node attribute `#kind`
is `cluster` or `remote`). With `discovery: scoped` (the default) those constraints also
say `resource-discovery=never`, so that no resource is probed where it may not run:
start-up probes on many remotes otherwise dominate a transition.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections import Counter
from typing import Literal

from lxml import etree

from hakit.tools.topology import model
from hakit.tools.topology.conventions import clone_id, effective
from hakit.tools.topology.load import Loaded, Path_
from hakit.tools.topology.problems import suggest
from hakit.tools.topology.rule_sets import is_score
from hakit.tools.topology.values import milliseconds

AGENT = "ocf:pacemaker:remote"
#: The connection resource's operations (the agent's own timeouts; a monitor every 20 s
#: notices a lost connection within about half a minute).
OPS = (
    model.Op(name="monitor", interval="20s", timeout="30s"),
    model.Op(name="start", interval="0s", timeout="60s"),
    model.Op(name="stop", interval="0s", timeout="60s"),
)
CLUSTER_ONLY, REMOTES_ONLY = "-cluster-only", "-remotes-only"
#: The rules of the two constraints: keep off remotes, keep off cluster nodes.
RULES = {CLUSTER_ONLY: "#kind ne cluster", REMOTES_ONLY: "#kind eq cluster"}
#: Above this many remotes, unscoped discovery and no stickiness are warned about.
MANY = 16
STICKINESS = "resource-stickiness"
#: A host name (RFC 1123): dot-separated labels of letters, digits and inner hyphens.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")


def connection(remote: model.Remote, section: model.Remotes) -> model.Resource:
    """The ocf:pacemaker:remote resource that connects the cluster to `remote`."""
    port = section.port if remote.port is None else remote.port
    interval = remote.reconnect_interval or section.reconnect_interval
    params: dict[str, model.Scalar] = {
        "server": remote.address,
        "port": port,
        "reconnect_interval": interval,
    }
    return model.Resource(name=remote.name, agent=AGENT, params=params, ops=list(OPS))


def is_connection(resource: model.Resource) -> bool:
    return resource.agent == AGENT


def tops(topology: model.Topology) -> dict[str, str]:
    """Each name `resources:` may list → the top-level resource it stands for (a cloned
    primitive or group → its clone); in the CIB's order, connections and devices aside."""
    inside = {m for g in topology.groups for m in g.members}
    inside |= {b.resource for b in topology.bundles if b.resource}
    found: dict[str, str] = {}
    for resource in topology.resources:
        full = effective(resource, topology)
        if resource.name in inside or is_connection(full):
            continue
        top = clone_id(resource.name, full.clone) if full.clone else resource.name
        found |= {resource.name: top, top: top}
    for group in topology.groups:
        top = clone_id(group.name, group.clone) if group.clone else group.name
        found |= {group.name: top, top: top}
    found |= {bundle.name: bundle.name for bundle in topology.bundles}
    return found


def locations(topology: model.Topology) -> list[model.Location]:
    """The placement (and, scoped, discovery) constraint of every top-level resource."""
    section = topology.remotes
    if not section.nodes:
        return []
    named = tops(topology)
    listed = {named[name] for name in section.resources if name in named}
    never: Literal["never"] | None = "never" if section.discovery == "scoped" else None
    found = []
    for top in dict.fromkeys(named.values()):
        suffix = REMOTES_ONLY if top in listed else CLUSTER_ONLY
        found.append(
            model.Location(
                resource=top,
                rule=RULES[suffix],
                score="-INFINITY",
                resource_discovery=never,
                id=top + suffix,
            )
        )
    return found


def levels(section: model.Remotes) -> list[model.FenceLevel]:
    return [
        model.FenceLevel(index=1, devices=list(r.fence), target=r.name)
        for r in section.nodes
        if r.fence
    ]


def expand(topology: model.Topology) -> model.Topology:
    """The topology with its remotes as plain objects: connection resources first (after
    the fence devices), the constraints and levels after the topology's own; the section
    itself emptied (so expanding twice changes nothing; render takes the nodes first)."""
    section = topology.remotes
    if not section.nodes:
        return topology
    c, fencing = topology.constraints, topology.fencing
    return dataclasses.replace(
        topology,
        resources=[*(connection(r, section) for r in section.nodes), *topology.resources],
        constraints=dataclasses.replace(c, locations=[*c.locations, *locations(topology)]),
        fencing=dataclasses.replace(fencing, levels=[*fencing.levels, *levels(section)]),
        remotes=model.Remotes(),
    )


# --- checks ----------------------------------------------------------------------------


def check(loaded: Loaded, topology: model.Topology) -> None:
    """The section's values, its names against the rest of the topology, the resources
    it lists and the devices that fence its nodes; warnings at scale for unscoped
    discovery and for resources that do not stay where they run."""
    section = topology.remotes
    where: Path_ = ("remotes",)
    _port(loaded, section.port, (*where, "port"))
    _duration(loaded, section.reconnect_interval, (*where, "reconnect_interval"))
    if not section.authkey.startswith("/"):
        loaded.problem(
            (*where, "authkey"),
            f"{section.authkey!r} is not an absolute path",
            "where the key is on every node, e.g. /etc/pacemaker/authkey",
        )
    _check_nodes(loaded, topology)
    _check_resources(loaded, topology)
    count = len(section.nodes)
    if section.discovery == "unscoped" and count > MANY:
        loaded.warn(
            (*where, "discovery"),
            f"unscoped with {count} remotes: every resource is probed on every node; "
            "start-up probes are a bottleneck at scale",
            "Pacemaker recommends limiting resource discovery: `discovery: scoped`",
        )
    if count > MANY and not _sticky(topology.defaults):
        loaded.warn(
            (*where, "nodes"),
            f"{count} remotes and no resource-stickiness default: when one is lost, the "
            "scheduler may move the other remotes' connections (and fence devices) to "
            "rebalance, in the transition that handles the loss",
            "set `defaults: {resources: {resource-stickiness: 1}}`",
        )


def _sticky(defaults: model.Defaults) -> bool:
    """Whether resources default to staying where they run (a positive stickiness)."""
    sets = [defaults.resources, *(s.meta for s in defaults.resource_sets if s.rule is None)]
    values = [str(meta[STICKINESS]).upper().lstrip("+") for meta in sets if STICKINESS in meta]
    return any(is_score(v) and v != "-INFINITY" and (v == "INFINITY" or int(v) > 0) for v in values)


def _check_nodes(loaded: Loaded, topology: model.Topology) -> None:
    section = topology.remotes
    if not section.nodes:
        return
    members = {node.name for node in topology.nodes}
    used = _used_names(topology)
    devices = [d.name for d in topology.fencing.devices]
    levels_of = {
        level.target: i
        for i, level in enumerate(topology.fencing.levels)
        if level.index == 1 and level.target
    }
    seen: dict[str, int] = {}
    addresses: dict[tuple[str, int], int] = {}
    for i, remote in enumerate(section.nodes):
        path: Path_ = ("remotes", "nodes", i)
        if remote.name in seen:
            loaded.problem(
                (*path, "name"),
                f"a second remote named {remote.name!r}",
                f"remotes.nodes[{seen[remote.name]}] has it; list each remote once",
            )
        elif remote.name in members:
            loaded.problem(
                (*path, "name"),
                f"{remote.name!r} is also a cluster node",
                "a node is a Corosync member (nodes:) or a remote (remotes.nodes:), not both",
            )
        elif remote.name in used:
            loaded.problem(
                (*path, "name"),
                f"the name {remote.name!r} is already used by {used[remote.name]}",
                "the remote's connection resource takes its name: rename one of them",
            )
        seen.setdefault(remote.name, i)
        if not _address(remote.address):
            loaded.problem(
                (*path, "address"),
                f"{remote.address!r} is not an IP address or a host name",
                "e.g. 192.168.122.21, fd00::21 or compute1.example.org",
            )
        if remote.port is not None:
            _port(loaded, remote.port, (*path, "port"))
        if remote.reconnect_interval is not None:
            _duration(loaded, remote.reconnect_interval, (*path, "reconnect_interval"))
        key = (remote.address, section.port if remote.port is None else remote.port)
        if key in addresses:
            loaded.problem(
                (*path, "address"),
                f"remotes.nodes[{addresses[key]}] has the same address and port",
                "each remote is one pacemaker-remoted: its own address (or port)",
            )
        addresses.setdefault(key, i)
        for j, device in enumerate(remote.fence):
            if device not in devices:
                loaded.problem(
                    (*path, "fence", j),
                    f"no fencing device {device!r}",
                    suggest(device, devices) or "add it under fencing.devices",
                )
        if remote.fence and remote.name in levels_of:
            loaded.problem(
                (*path, "fence"),
                f"fencing.levels[{levels_of[remote.name]}] is level 1 for {remote.name!r} too",
                "give the devices in one place: `fence:` here, or that level",
            )


def _check_resources(loaded: Loaded, topology: model.Topology) -> None:
    section = topology.remotes
    if not section.resources:
        return
    named = tops(topology)
    if section.resources and not section.nodes:
        loaded.problem(
            ("remotes", "resources"),
            "no remote nodes to run these on",
            "add remotes.nodes, or drop remotes.resources",
        )
    wrapped = {m: g.name for g in topology.groups for m in g.members}
    wrapped |= {b.resource: b.name for b in topology.bundles if b.resource}
    devices = {d.name for d in topology.fencing.devices}
    listed: dict[str, int] = {}
    for j, name in enumerate(section.resources):
        path: Path_ = ("remotes", "resources", j)
        if name in wrapped:
            loaded.problem(
                path,
                f"{name!r} is inside {wrapped[name]!r}",
                f"list {wrapped[name]!r}: it is placed as a whole",
            )
        elif name in devices or name in {r.name for r in section.nodes}:
            loaded.problem(
                path,
                f"{name!r} is a fence device or a remote's connection",
                "list the resources that run on remotes (computes)",
            )
        elif name not in named:
            loaded.problem(path, f"no resource {name!r}", suggest(name, sorted(named)))
        elif named[name] in listed:
            loaded.problem(
                path,
                f"{name!r} is listed already (remotes.resources[{listed[named[name]]}])",
                "list it once",
            )
        else:
            listed[named[name]] = j


def _used_names(topology: model.Topology) -> dict[str, str]:
    """Names that become CIB ids elsewhere in the topology, and what has them."""
    used: dict[str, str] = {}
    for i, device in enumerate(topology.fencing.devices):
        used[device.name] = f"fencing.devices[{i}]"
    for i, resource in enumerate(topology.resources):
        used[resource.name] = f"resources[{i}]"
        full = effective(resource, topology)
        if full.clone:
            used[clone_id(resource.name, full.clone)] = f"resources[{i}].clone"
    named: list[tuple[str, list[str]]] = [
        ("groups", [g.name for g in topology.groups]),
        ("bundles", [b.name for b in topology.bundles]),
        ("tags", [t.name for t in topology.tags]),
    ]
    for key, names in named:
        for i, name in enumerate(names):
            used[name] = f"{key}[{i}]"
    for i, group in enumerate(topology.groups):
        if group.clone:
            used[clone_id(group.name, group.clone)] = f"groups[{i}].clone"
    return used


def _address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return bool(_HOST.fullmatch(text)) and not re.fullmatch(r"[0-9.]+", text)
    return True


def _port(loaded: Loaded, port: int, path: Path_) -> None:
    if not 1 <= port <= 65535:
        loaded.problem(path, f"{port} is not a port", "a TCP port: 1 to 65535 (default 3121)")


def _duration(loaded: Loaded, text: str, path: Path_) -> None:
    if milliseconds(text) is None:
        loaded.problem(path, f"{text!r} is not a duration", "e.g. 60s, 5min or 0s (at once)")


# --- where rendered objects come from -------------------------------------------------


def locate(element: etree._Element, topology: model.Topology) -> Path_ | None:
    """The YAML place of a rendered object the section made (render puts them after
    the topology's own of their kind), None for any other."""
    section = topology.remotes
    names = [r.name for r in section.nodes]
    tag, ident = element.tag, str(element.get("id"))
    if tag == "primitive" and ident in names and ident not in {r.name for r in topology.resources}:
        return ("remotes", "nodes", names.index(ident))
    if tag == "node" and element.get("type") == "remote" and element.get("uname") in names:
        return ("remotes", "nodes", names.index(str(element.get("uname"))))
    if tag == "fencing-level" and _made(element, len(topology.fencing.levels)):
        remote = names.index(str(element.get("target")))
        return ("remotes", "nodes", remote, "fence")
    if tag == "rsc_location" and _made(element, len(topology.constraints.locations)):
        top = ident.removesuffix(REMOTES_ONLY)
        named = tops(topology)
        listed = [j for j, name in enumerate(section.resources) if named.get(name) == top]
        return ("remotes", "resources", *listed[:1]) if listed else ("remotes", "discovery")
    return None


def _made(element: etree._Element, given: int) -> bool:
    """Whether the element comes after the `given` ones of its kind the topology has."""
    parent = element.getparent()
    siblings = [] if parent is None else [e for e in parent if e.tag == element.tag]
    return siblings.index(element) >= given if element in siblings else False


# --- import ----------------------------------------------------------------------------


def recover(topology: model.Topology, root: etree._Element) -> None:
    """An imported topology's section: connection resources as render writes them (and
    their placement constraints, fencing levels and node entries) become `remotes:`,
    when the topology then renders what `root` (the CIB) says, no less and no more;
    otherwise they stay plain resources, constraints, levels and nodes."""
    from hakit.tools.topology.render import render  # render imports this module

    found = [r for r in topology.resources if _rendered_connection(r)]
    if not found or topology.remotes.nodes:
        return
    before = _losses(root, render(topology))
    candidate = _recovered(topology, found, root)
    if candidate is None:
        return
    after = _losses(root, render(candidate))
    if after <= before:
        for f in dataclasses.fields(topology):
            setattr(topology, f.name, getattr(candidate, f.name))


def _losses(root: etree._Element, rendered: etree._Element) -> set[str]:
    """What `rendered` says otherwise than `root`, or says and `root` does not."""
    from hakit.tools.topology import roundtrip

    lost = {line.split(":", 1)[0] for line in roundtrip.losses(root, rendered)}
    return lost | (set(roundtrip.objects(rendered)) - set(roundtrip.objects(root)))


def _rendered_connection(resource: model.Resource) -> bool:
    """A connection resource as `connection` writes it (any address, port and interval)."""
    params = resource.params
    return (
        is_connection(resource)
        and set(params) == {"server", "port", "reconnect_interval"}
        and str(params["port"]).isdigit()
        and resource.ops == list(OPS)
        and not (resource.meta or resource.utilization or resource.clone)
        and not (resource.instance_sets or resource.meta_sets or resource.description)
        and resource.template is None
    )


def _recovered(
    topology: model.Topology, found: list[model.Resource], root: etree._Element
) -> model.Topology | None:
    """The topology with `found` as its remotes (None when the constraints do not say
    one discovery mode)."""
    names = {r.name for r in found}
    grouped = {m for g in topology.groups for m in g.members}
    grouped |= {b.resource for b in topology.bundles if b.resource}
    if names & grouped:
        return None
    ports = Counter(int(str(r.params["port"])) for r in found)
    intervals = Counter(str(r.params["reconnect_interval"]) for r in found)
    section = model.Remotes(
        port=ports.most_common(1)[0][0], reconnect_interval=intervals.most_common(1)[0][0]
    )
    level_of = {
        level.target: level
        for level in topology.fencing.levels
        if level.target in names and level.index == 1 and level.id in (None, f"fl-{level.target}-1")
    }
    remote_nodes = {
        n.get("uname")
        for n in root.iterfind("configuration/nodes/node")
        if n.get("type") == "remote"
    }
    node_of = {n.name: n for n in topology.nodes if n.name in names & remote_nodes}
    for resource in found:
        port, interval = (
            int(str(resource.params["port"])),
            str(resource.params["reconnect_interval"]),
        )
        level, node = level_of.get(resource.name), node_of.get(resource.name)
        section.nodes.append(
            model.Remote(
                name=resource.name,
                address=str(resource.params["server"]),
                port=None if port == section.port else port,
                reconnect_interval=None if interval == section.reconnect_interval else interval,
                fence=list(level.devices) if level else [],
                attributes=dict(node.attributes) if node else {},
                utilization=dict(node.utilization) if node else {},
            )
        )
    rest = dataclasses.replace(
        topology,
        resources=[r for r in topology.resources if r.name not in names],
        nodes=[n for n in topology.nodes if n.name not in node_of],
        fencing=dataclasses.replace(
            topology.fencing,
            levels=[
                x for x in topology.fencing.levels if all(x is not y for y in level_of.values())
            ],
        ),
    )
    return _with_placement(rest, section)


def _with_placement(topology: model.Topology, section: model.Remotes) -> model.Topology | None:
    """`section` with the resources and the discovery mode its constraints say, and the
    topology without those constraints."""
    named = tops(topology)
    inner = {top: name for name, top in reversed(named.items())}  # the clone's content
    generated, modes, listed = [], set(), []
    for location in topology.constraints.locations:
        top = location.resource or ""
        for suffix, rule in RULES.items():
            if (
                location.id == top + suffix
                and top in inner
                and location.rule == rule
                and location.score == "-INFINITY"
                and location.score_attribute is None
                and location.role is None
            ):
                generated.append(location)
                modes.add(location.resource_discovery)
                if suffix == REMOTES_ONLY:
                    listed.append(inner[top])
    if len(modes) > 1 or not modes <= {"never", None}:
        return None
    section.discovery = "unscoped" if modes == {None} else "scoped"
    section.resources = listed
    c = topology.constraints
    kept = [x for x in c.locations if all(x is not y for y in generated)]
    return dataclasses.replace(
        topology,
        constraints=dataclasses.replace(c, locations=kept),
        remotes=section,
    )
