"""Every check on a topology, each problem located: YAML and types (`load`), names and
references, agent metadata (the check crm_verify misses), Pacemaker's RelaxNG schema
and crm_verify on the rendered CIB."""

from __future__ import annotations

import os
import re
import tempfile
from functools import cache
from pathlib import Path

from lxml import etree

from hakit.ocf import cluster
from hakit.tools.topology import model, rules, values
from hakit.tools.topology.agents import check_agents
from hakit.tools.topology.conventions import clone_id, effective
from hakit.tools.topology.load import Loaded, load
from hakit.tools.topology.problems import suggest
from hakit.tools.topology.render import VALIDATE_WITH, render, to_text

RNG_DIR = Path("/usr/share/pacemaker")
SCORE_WORDS = {"INFINITY", "+INFINITY", "-INFINITY"}


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
    _check_tags(loaded, topology, placeable)
    _check_constraints(loaded, topology, placeable)
    _check_set_constraints(loaded, topology.constraints, placeable)
    _check_defaults(loaded, topology.defaults)
    _check_acls(loaded, topology.acls)
    _check_fencing_levels(loaded, topology)
    _check_alerts(loaded, topology)


def check_rule(loaded: Loaded, text: str, path: tuple[str | int, ...]) -> rules.Rule | None:
    """The parsed rule, or None after reporting where it goes wrong."""
    try:
        return rules.parse(text)
    except rules.RuleError as error:
        loaded.problem(path, f"rule: {error}", error.hint, offset=error.column)
        return None


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
        if not _is_score(colocation_set.score):
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
            declare(clone_id(resource.name), ("resources", i, "clone"))
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
            declare(clone_id(group.name), ("groups", i, "clone"))
    for i, bundle in enumerate(topology.bundles):
        declare(bundle.name, ("bundles", i, "name"))
    for i, tag in enumerate(topology.tags):
        declare(tag.name, ("tags", i, "name"))
    return set(seen)


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
    nodes = [n.name for n in topology.nodes]
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
                if name not in known:
                    loaded.problem(
                        ("constraints", kind, i, key),
                        f"no resource {name!r}",
                        suggest(name, sorted(known)),
                    )
            score = getattr(item, "score", None)
            if score is not None and not _is_score(score):
                loaded.problem(
                    ("constraints", kind, i, "score"),
                    f"{score!r} is not a score",
                    "an integer, INFINITY or -INFINITY",
                )
    for i, location in enumerate(c.locations):
        path: tuple[str | int, ...] = ("constraints", "locations", i)
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


def _check_fencing_levels(loaded: Loaded, topology: model.Topology) -> None:
    nodes = [n.name for n in topology.nodes]
    devices = [d.name for d in topology.fencing.devices]
    for i, level in enumerate(topology.fencing.levels):
        targets = [t for t in (level.target, level.target_pattern, level.target_attribute) if t]
        if len(targets) != 1:
            loaded.problem(
                ("fencing", "levels", i),
                "a level needs exactly one of target, " "target_pattern, target_attribute",
            )
        if level.target and nodes and level.target not in nodes:
            loaded.problem(
                ("fencing", "levels", i, "target"),
                f"no node {level.target!r}",
                suggest(level.target, nodes),
            )
        for j, device in enumerate(level.devices):
            if device not in devices:
                loaded.problem(
                    ("fencing", "levels", i, "devices", j),
                    f"no fencing device {device!r}",
                    suggest(device, devices),
                )


def _check_ops(loaded: Loaded, ops: list[model.Op], path: tuple[str | int, ...]) -> None:
    seen: set[tuple[str, str]] = set()
    for i, op in enumerate(ops):
        if (op.name, op.interval) in seen:
            loaded.problem(
                (*path, i),
                f"a second {op.name} every {op.interval}",
                "Pacemaker needs a different interval for each monitor",
            )
        seen.add((op.name, op.interval))


# --- Pacemaker's own checks -------------------------------------------------------------


@cache
def relaxng() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(RNG_DIR / f"{VALIDATE_WITH}.rng")))  # noqa: S320


def check_pacemaker(loaded: Loaded, topology: model.Topology) -> None:
    """RelaxNG of the rendered CIB, then crm_verify (which also checks IDREFs): whatever
    crm_verify rejects (its exit code) is a problem, located where its message names one."""
    cib = render(topology)
    schema = relaxng()
    if not schema.validate(cib):
        for error in schema.error_log:
            loaded.problem(
                (),
                f"the rendered CIB breaks {VALIDATE_WITH}.rng: {error.message} "
                f"(CIB line {error.line})",
            )
        loaded.skipped.append(f"crm_verify: it needs a CIB that {VALIDATE_WITH}.rng accepts")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as handle:
        handle.write(to_text(cib))
    try:
        code, messages = cluster.verify_cib_file(handle.name)
    except cluster.ClusterCommandError as error:
        loaded.problem(
            (), f"crm_verify could not run: {error}", "is pacemaker-cli-utils installed?"
        )
        return
    finally:
        os.unlink(handle.name)
    errors = _crm_verify_errors(messages)
    if code != 0 and not errors and "Warnings found" not in messages:  # warnings: exit 1
        errors = [" ".join(messages.split()) or f"exit code {code}"]
    for message in errors:
        path, hint = _locate(message, topology)
        loaded.problem(path, f"crm_verify: {message}", hint)


def _crm_verify_errors(messages: str) -> list[str]:
    """crm_verify's errors, the lines of one message (same function) joined."""
    errors: list[tuple[str, str]] = []
    for line in messages.splitlines():
        match = re.match(r"\s*(\(\w+\))?\s*error:\s*(.*)", line, re.IGNORECASE)
        if not match:
            continue
        where, text = match.group(1) or "", match.group(2).strip()
        if any(text in seen for _, seen in errors):
            continue  # crm_verify says some things twice
        if errors and where and errors[-1][0] == where:
            errors[-1] = (where, f"{errors[-1][1]} {text}")
        else:
            errors.append((where, text))
    return [text for _, text in errors]


def _locate(error: str, topology: model.Topology) -> tuple[tuple[str | int, ...], str]:
    """The object a crm_verify message is about, and what to do."""
    if "STONITH" in error:
        where: tuple[str | int, ...] = ("cluster", "properties", "stonith-enabled")
        return where, (
            "add a device under fencing.devices, or set stonith-enabled: false "
            "(only where the cluster shares no data)"
        )
    if "loss-policy" in error:
        return ("constraints", "tickets"), "loss_policy: fence needs stonith-enabled: true"
    objects: list[tuple[str, tuple[str | int, ...]]] = [
        *((r.name, ("resources", i)) for i, r in enumerate(topology.resources)),
        *((g.name, ("groups", i)) for i, g in enumerate(topology.groups)),
        *((b.name, ("bundles", i)) for i, b in enumerate(topology.bundles)),
        *((d.name, ("fencing", "devices", i)) for i, d in enumerate(topology.fencing.devices)),
        *((n.name, ("nodes", i)) for i, n in enumerate(topology.nodes)),
    ]
    for name, path in sorted(objects, key=lambda item: -len(item[0])):
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", error):
            return path, ""
    return (), ""


def _is_score(text: str) -> bool:
    return text in SCORE_WORDS or text.lstrip("+-").isdigit()


def _where(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path)
