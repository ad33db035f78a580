"""Every check on a topology, each problem located: YAML and types (`load`), names and
references, agent metadata (the check crm_verify misses), Pacemaker's RelaxNG schema
and crm_verify on the rendered CIB."""

from __future__ import annotations

import re
from pathlib import Path

from hakit.tools.topology import correlation, model, ordering, qos, remotes, rules, values
from hakit.tools.topology.agents import check_agents
from hakit.tools.topology.conventions import clone_id, effective
from hakit.tools.topology.ids import check_given_ids
from hakit.tools.topology.load import Loaded, load
from hakit.tools.topology.problems import suggest
from hakit.tools.topology.render import VALIDATE_WITH
from hakit.tools.topology.rule_sets import check_rule, check_rule_sets, is_score
from hakit.tools.topology.structure import (
    check_fencing_levels,
    check_levels,
    check_shapes,
    check_wrapped,
)
from hakit.tools.topology.values import milliseconds
from hakit.tools.topology.verify import check_pacemaker


def validate(path: Path, *, agents: bool = True, pacemaker: bool = True) -> Loaded:
    """Load and check `path`; `loaded.problems` lists everything wrong."""
    return check(load(path), agents=agents, pacemaker=pacemaker)


def check(loaded: Loaded, *, agents: bool = True, pacemaker: bool = True) -> Loaded:
    """Every check a loaded file can have, in one pass; `loaded.skipped` names those that
    could not run."""
    topology = loaded.topology
    if topology is None:
        return loaded
    check_names(loaded, topology)
    values.check(loaded, topology)
    correlation.check(loaded, topology)
    remotes.check(loaded, topology)
    qos.check(loaded, topology)
    if agents:
        check_agents(loaded, topology)
    else:
        loaded.skipped.append("agents and their parameters: --no-agents")
    if not pacemaker:
        return loaded
    if loaded.problems:
        loaded.skipped.append(
            f"Pacemaker's {VALIDATE_WITH}.rng and crm_verify: they check the CIB rendered "
            "from a topology without the problems above"
        )
    else:
        check_pacemaker(loaded, topology)
    return loaded


def check_names(loaded: Loaded, topology: model.Topology) -> None:
    """Duplicate ids and references to things that do not exist."""
    declared = _check_declarations(loaded, topology)
    _check_groups(loaded, topology)
    _check_bundles(loaded, topology)
    placeable = declared - {d.name for d in topology.fencing.devices}
    placeable |= {r.name for r in topology.remotes.nodes}  # their connection resources
    _check_tags(loaded, topology, placeable)
    _check_constraints(loaded, topology, placeable)
    _check_set_constraints(loaded, topology.constraints, placeable)
    _check_defaults(loaded, topology.defaults)
    _check_acls(loaded, topology.acls)
    check_fencing_levels(loaded, topology)
    check_levels(loaded, topology.fencing.levels)
    _check_alerts(loaded, topology)
    check_given_ids(loaded, topology)
    check_shapes(loaded, topology)
    check_wrapped(loaded, topology)
    ordering.check_orders(loaded, topology)
    check_rule_sets(loaded, topology)


def _check_bundles(loaded: Loaded, topology: model.Topology) -> None:
    resources = {r.name: effective(r, topology) for r in topology.resources}
    grouped = {m for g in topology.groups for m in g.members}
    inside: dict[str, str] = {}
    for i, bundle in enumerate(topology.bundles):
        for j, port in enumerate(bundle.ports):
            if (port.port is None) == (port.range is None):
                loaded.problem(("bundles", i, "ports", j), "give port or range (one of them)")
        name = bundle.resource
        path = ("bundles", i, "resource")
        if name is None:
            continue
        if name not in resources:
            loaded.problem(path, f"no resource named {name!r}", suggest(name, list(resources)))
        elif name in grouped or resources[name].clone:
            loaded.problem(
                path,
                f"{name!r} is in a group or a clone",
                "a bundle's resource must be a plain primitive",
            )
        elif name in inside:
            loaded.problem(path, f"{name!r} is already in bundle {inside[name]!r}")
        inside[name] = bundle.name


def _check_tags(loaded: Loaded, topology: model.Topology, placeable: set[str]) -> None:
    resources = placeable - {t.name for t in topology.tags}  # a tag cannot hold a tag
    for i, tag in enumerate(topology.tags):
        for j, name in enumerate(tag.resources):
            if name not in resources:
                loaded.problem(
                    ("tags", i, "resources", j),
                    f"no resource {name!r}",
                    suggest(name, sorted(placeable)),
                )


def _check_set_constraints(loaded: Loaded, c: model.Constraints, placeable: set[str]) -> None:
    owners: list[tuple[str, int, list[model.ResourceSet], bool]] = [
        *(("colocation_sets", i, x.sets, True) for i, x in enumerate(c.colocation_sets)),
        *(("order_sets", i, x.sets, True) for i, x in enumerate(c.order_sets)),
        *(("tickets", i, x.sets, False) for i, x in enumerate(c.tickets)),
    ]
    for kind, i, sets, needs_sets in owners:
        path: tuple[str | int, ...] = ("constraints", kind, i)
        for j, resource_set in enumerate(sets):
            if not resource_set.resources:
                loaded.problem((*path, "sets", j), "an empty resource set")
            for k, name in enumerate(resource_set.resources):
                if name not in placeable:
                    loaded.problem(
                        (*path, "sets", j, "resources", k),
                        f"no resource {name!r}",
                        suggest(name, sorted(placeable)),
                    )
        if needs_sets and not sets:
            loaded.problem(path, "no sets", "add `sets: [{resources: [A, B]}, ...]`")
    _check_tickets(loaded, c, placeable)
    for i, colocation_set in enumerate(c.colocation_sets):
        if not is_score(colocation_set.score):
            loaded.problem(
                ("constraints", "colocation_sets", i, "score"),
                f"{colocation_set.score!r} is not a score",
                "an integer, INFINITY or -INFINITY",
            )


def _check_tickets(loaded: Loaded, c: model.Constraints, placeable: set[str]) -> None:
    for i, ticket in enumerate(c.tickets):
        path = ("constraints", "tickets", i)
        if (ticket.resource is None) == (not ticket.sets):
            loaded.problem(path, "a ticket constraint needs resource or sets (one of them)")
        elif ticket.resource is not None and ticket.resource not in placeable:
            loaded.problem(
                (*path, "resource"),
                f"no resource {ticket.resource!r}",
                suggest(ticket.resource, sorted(placeable)),
            )
        if ticket.role and ticket.sets:
            loaded.problem((*path, "role"), "role applies to `resource`; give each set a role")


def _check_defaults(loaded: Loaded, defaults: model.Defaults) -> None:
    names: set[str] = set()
    for key, sets in (
        ("resource_sets", defaults.resource_sets),
        ("operation_sets", defaults.operation_sets),
    ):
        for i, item in enumerate(sets):
            if item.name in names or item.name in (
                "rsc_defaults-meta_attributes",
                "op_defaults-meta_attributes",
            ):
                loaded.problem(("defaults", key, i, "name"), f"the name {item.name!r} is used")
            names.add(item.name)
            if item.rule is None:
                continue
            rule = check_rule(loaded, item.rule, ("defaults", key, i, "rule"))
            if rule and key == "resource_sets" and "op" in _kinds(rule):
                loaded.problem(
                    ("defaults", key, i, "rule"),
                    "`op` tests apply to operation " "defaults only",
                    "move this set to operation_sets",
                )


def _kinds(rule: rules.Rule) -> set[str]:
    kinds: set[str] = set()
    for item in rule.items:
        kinds |= _kinds(item) if isinstance(item, rules.Rule) else {item.kind}
    return kinds


def _check_acls(loaded: Loaded, acls: model.Acls) -> None:
    roles = [r.name for r in acls.roles]
    for i, role in enumerate(acls.roles):
        if role.name in roles[:i]:
            loaded.problem(("acls", "roles", i, "name"), f"a second role {role.name!r}")
        for j, permission in enumerate(role.permissions):
            if (permission.xpath is None) == (permission.reference is None):
                loaded.problem(
                    ("acls", "roles", i, "permissions", j),
                    "a permission needs xpath or reference (one of them)",
                )
    for key, targets in (("users", acls.users), ("groups", acls.groups)):
        for i, target in enumerate(targets):
            for j, role_name in enumerate(target.roles):
                if role_name not in roles:
                    loaded.problem(
                        ("acls", key, i, "roles", j),
                        f"no role {role_name!r}",
                        suggest(role_name, roles),
                    )


def _check_alerts(loaded: Loaded, topology: model.Topology) -> None:
    names: set[str] = set()
    for i, alert in enumerate(topology.alerts):
        if alert.name in names:
            loaded.problem(("alerts", i, "name"), f"a second alert named {alert.name!r}")
        names.add(alert.name)
        if not alert.path.startswith("/"):
            loaded.problem(
                ("alerts", i, "path"),
                f"{alert.path!r} is not an absolute path",
                "Pacemaker runs the alert agent by its full path",
            )
        values = [r.value for r in alert.recipients]
        for j, value in enumerate(values):
            if value in values[:j]:
                loaded.problem(("alerts", i, "recipients", j), f"recipient {value!r} twice")


def _check_declarations(loaded: Loaded, topology: model.Topology) -> set[str]:
    seen: dict[str, tuple[str | int, ...]] = {}

    def declare(name: str, path: tuple[str | int, ...]) -> None:
        if name in seen:
            loaded.problem(
                path,
                f"the name {name!r} is already used",
                f"by {_where(seen[name])}; every resource, group, clone and "
                "device needs its own name",
            )
        else:
            seen[name] = path

    for i, device in enumerate(topology.fencing.devices):
        declare(device.name, ("fencing", "devices", i, "name"))
    for i, resource in enumerate(topology.resources):
        declare(resource.name, ("resources", i, "name"))
        full = effective(resource, topology)
        if full.clone:
            declare(clone_id(resource.name, full.clone), ("resources", i, "clone"))
        if resource.template and resource.template not in topology.templates:
            loaded.problem(
                ("resources", i, "template"),
                f"no template named {resource.template!r}",
                suggest(resource.template, list(topology.templates)),
            )
        if full.agent is None:
            loaded.problem(
                ("resources", i),
                "no agent",
                "add `agent: ocf:PROVIDER:TYPE` or a template that has one",
            )
        _check_ops(loaded, full.ops, ("resources", i, "ops"))
    for i, group in enumerate(topology.groups):
        declare(group.name, ("groups", i, "name"))
        if group.clone:
            declare(clone_id(group.name, group.clone), ("groups", i, "clone"))
    for i, bundle in enumerate(topology.bundles):
        declare(bundle.name, ("bundles", i, "name"))
    for i, tag in enumerate(topology.tags):
        declare(tag.name, ("tags", i, "name"))
    placeable = set(seen)
    c = topology.constraints
    given: dict[str, list[str | None]] = {
        "locations": [x.id for x in c.locations],
        "colocations": [x.id for x in c.colocations],
        "orders": [x.id for x in c.orders],
        "colocation_sets": [x.id for x in c.colocation_sets],
        "order_sets": [x.id for x in c.order_sets],
        "tickets": [x.id for x in c.tickets],
    }
    for kind, ids in given.items():
        for i, constraint_id in enumerate(ids):
            if constraint_id:
                declare(constraint_id, ("constraints", kind, i, "id"))
    return placeable


def _check_groups(loaded: Loaded, topology: model.Topology) -> None:
    resources = {r.name: effective(r, topology) for r in topology.resources}
    member_of: dict[str, str] = {}
    for i, group in enumerate(topology.groups):
        for j, member in enumerate(group.members):
            path = ("groups", i, "members", j)
            if member not in resources:
                loaded.problem(
                    path, f"no resource named {member!r}", suggest(member, list(resources))
                )
            elif member in member_of:
                loaded.problem(path, f"{member!r} is already in group {member_of[member]!r}")
            elif resources[member].clone:
                hint = f"move `clone:` from {member!r} to group {group.name!r}"
                loaded.problem(path, f"{member!r} is a clone; clone the group instead", hint)
            member_of[member] = group.name


def _check_constraints(loaded: Loaded, topology: model.Topology, placeable: set[str]) -> None:
    nodes = [n.name for n in topology.nodes] + [r.name for r in topology.remotes.nodes]
    devices = {d.name for d in topology.fencing.devices}
    c = topology.constraints
    for kind, items, keys in (
        ("locations", c.locations, ("resource",)),
        ("colocations", c.colocations, ("resource", "with")),
        ("orders", c.orders, ("first", "then")),
    ):
        # a fencing device may be kept off (or on) nodes, not ordered or colocated
        known = placeable | devices if kind == "locations" else placeable
        for i, item in enumerate(items):
            for key in keys:
                name = getattr(item, key + "_" if key == "with" else key)
                if name is None and kind == "locations":
                    continue  # resource_pattern instead (checked below)
                if name not in known:
                    loaded.problem(
                        ("constraints", kind, i, key),
                        f"no resource {name!r}",
                        suggest(name, sorted(known)),
                    )
            score = getattr(item, "score", None)
            if score is not None and not is_score(score):
                loaded.problem(
                    ("constraints", kind, i, "score"),
                    f"{score!r} is not a score",
                    "an integer, INFINITY or -INFINITY",
                )
    for i, location in enumerate(c.locations):
        path: tuple[str | int, ...] = ("constraints", "locations", i)
        _check_location_subject(loaded, location, path)
        if (location.node is None) == (location.rule is None):
            loaded.problem(
                path,
                "a location needs node or rule (one of them)",
                "e.g. `node: n1` or `rule: defined pingd`",
            )
        elif location.rule is not None:
            check_rule(loaded, location.rule, (*path, "rule"))
        elif nodes and location.node not in nodes:
            loaded.problem(
                (*path, "node"), f"no node {location.node!r}", suggest(location.node or "", nodes)
            )


def _check_location_subject(
    loaded: Loaded, location: model.Location, path: tuple[str | int, ...]
) -> None:
    """resource xor resource_pattern (a valid regular expression); score_attribute
    only with a rule."""
    if (location.resource is None) == (location.resource_pattern is None):
        loaded.problem(
            path,
            "a location needs resource or resource_pattern (one of them)",
            "e.g. `resource: web` or `resource_pattern: ^web-`",
        )
    elif location.resource_pattern is not None:
        try:
            re.compile(location.resource_pattern)
        except re.error as error:
            loaded.problem((*path, "resource_pattern"), f"not a regular expression: {error}")
    if location.score_attribute is not None and location.rule is None:
        loaded.problem(
            (*path, "score_attribute"),
            "score_attribute needs a rule",
            "give `rule:`, or a plain `score:` for a node",
        )


def _check_ops(loaded: Loaded, ops: list[model.Op], path: tuple[str | int, ...]) -> None:
    """Pacemaker's rule: one op of a name per interval, whatever their roles; 10s and
    10000ms are one interval (and so are P1DT1H and 1h, as Pacemaker 2.1 reads them)."""
    if len({op.name for op in ops}) == len(ops):
        return  # one op of each name
    seen: dict[tuple[str, str, object], int] = {}
    for i, op in enumerate(ops):
        keys: set[tuple[str, str, object]] = {(op.name, "text", op.interval)}
        for legacy in (False, True):
            if ms := milliseconds(op.interval, as_pacemaker_2_1=legacy):
                keys.add((op.name, str(legacy), ms))
        clash = min((seen[key] for key in keys if key in seen), default=None)
        if clash is not None:
            other = ops[clash].interval
            same = other == op.interval or milliseconds(other) == milliseconds(op.interval)
            loaded.problem(
                (*path, i, "interval"),
                f"a second {op.name} every {op.interval}"
                + ("" if other == op.interval else f" ({other} in ops[{clash}])"),
                "Pacemaker needs a different interval for each op of one name, whatever "
                "their roles"
                + ("" if same else f" (Pacemaker 2.1 reads {op.interval} and {other} alike)"),
            )
        for key in keys:
            seen.setdefault(key, i)


def _where(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path)
