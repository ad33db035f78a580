"""Checks of structure: fencing levels and their targets, and what wraps what
(clones, groups, bundles) where a constraint names the inner resource."""

from __future__ import annotations

import re
import warnings

from hakit.tools.topology import model
from hakit.tools.topology.conventions import clone_id, effective
from hakit.tools.topology.load import Loaded
from hakit.tools.topology.problems import suggest
from hakit.tools.topology.rule_sets import is_score


def check_fencing_levels(loaded: Loaded, topology: model.Topology) -> None:
    nodes = [n.name for n in topology.nodes] + [r.name for r in topology.remotes.nodes]
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


def check_levels(loaded: Loaded, levels: list[model.FenceLevel]) -> None:
    """Indexes count from 1, one level per index and target (pcs's rule); a level has
    devices; its target attribute is NAME=VALUE, its pattern a regular expression."""
    seen: set[tuple[str | None, str | None, str | None, int]] = set()
    for i, level in enumerate(levels):
        path: tuple[str | int, ...] = ("fencing", "levels", i)
        if level.index < 1:
            loaded.problem(
                (*path, "index"),
                f"level {level.index}: levels count from 1",
                "index: 1 for the devices tried first, 2 for the next, ...",
            )
        key = (level.target, level.target_pattern, level.target_attribute, level.index)
        if key in seen:
            target = level.target or level.target_pattern or level.target_attribute
            loaded.problem(
                (*path, "index"),
                f"a second level {level.index} for {target!r}",
                "put the devices of one level in one list: devices: [a, b]",
            )
        seen.add(key)
        if not level.devices:
            loaded.problem((*path, "devices"), "a level with no device", "devices: [DEVICE, ...]")
        attribute = level.target_attribute
        if attribute is not None and not re.fullmatch(r"[^=\s]+=.+", attribute):
            loaded.problem(
                ("fencing", "levels", i, "target_attribute"),
                f"{attribute!r} is not NAME=VALUE",
                "e.g. rack=r1: the nodes whose attribute rack is r1",
            )
        if level.target_pattern is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    re.compile(level.target_pattern)
                except re.error as error:
                    loaded.problem(
                        ("fencing", "levels", i, "target_pattern"),
                        f"not a regular expression: {error}",
                        "a regular expression over node names, e.g. ^node[0-9]+$",
                    )


def check_shapes(loaded: Loaded, topology: model.Topology) -> None:
    """What the schema (or pcs) requires of an object's fields: groups and tags hold
    something, node names are unique, a bundle storage mapping has one source, a default
    set's score is a score."""
    for key, items in (("groups", topology.groups), ("tags", topology.tags)):
        for i, item in enumerate(items):
            if not getattr(item, "members", getattr(item, "resources", None)):
                field = "members" if key == "groups" else "resources"
                loaded.problem((key, i, field), f"an empty {key[:-1]}", "name one or more")
    names: set[str] = set()
    for i, node in enumerate(topology.nodes):
        if node.name in names:
            loaded.problem(
                ("nodes", i, "name"), f"a second node named {node.name!r}", "list each node once"
            )
        names.add(node.name)
    for i, bundle in enumerate(topology.bundles):
        for j, mapping in enumerate(bundle.storage):
            if (mapping.source_dir is None) == (mapping.source_dir_root is None):
                loaded.problem(
                    ("bundles", i, "storage", j),
                    "give source_dir or source_dir_root (one of them)",
                    "source_dir: one host directory for all replicas; source_dir_root: "
                    "a directory per replica under it",
                )
    for key in ("resource_sets", "operation_sets"):
        for i, default_set in enumerate(getattr(topology.defaults, key)):
            score = default_set.score
            if score is not None and not is_score(str(score)):
                loaded.problem(
                    ("defaults", key, i, "score"),
                    f"{score!r} is not a score",
                    "an integer, INFINITY or -INFINITY",
                )


def _wrapping(topology: model.Topology) -> dict[str, str]:
    """Names Pacemaker ignores in a constraint or tag (a cloned primitive or group, a
    cloned group's member, a bundle's resource), and what to name instead."""
    wrapped: dict[str, str] = {}
    for resource in topology.resources:
        clone = effective(resource, topology).clone
        if clone is not None:
            wrapped[resource.name] = clone_id(resource.name, clone)
    for group in topology.groups:
        if group.clone is not None:
            for name in (group.name, *group.members):
                wrapped[name] = clone_id(group.name, group.clone)
    for bundle in topology.bundles:
        if bundle.resource:
            wrapped[bundle.resource] = bundle.name
    return wrapped


def check_wrapped(loaded: Loaded, topology: model.Topology) -> None:
    """Constraints and tags that name what is inside a clone or a bundle."""
    wrapped = _wrapping(topology)
    if not wrapped:
        return
    bundles = {b.name for b in topology.bundles}
    c = topology.constraints
    named: list[tuple[tuple[str | int, ...], str | None]] = [
        *(
            (("tags", i, "resources", j), n)
            for i, t in enumerate(topology.tags)
            for j, n in enumerate(t.resources)
        ),
        *(
            (("constraints", "locations", i, "resource"), x.resource)
            for i, x in enumerate(c.locations)
        ),
        *(
            (("constraints", "colocations", i, "resource"), x.resource)
            for i, x in enumerate(c.colocations)
        ),
        *(
            (("constraints", "colocations", i, "with"), x.with_)
            for i, x in enumerate(c.colocations)
        ),
        *((("constraints", "orders", i, "first"), x.first) for i, x in enumerate(c.orders)),
        *((("constraints", "orders", i, "then"), x.then) for i, x in enumerate(c.orders)),
        *((("constraints", "tickets", i, "resource"), x.resource) for i, x in enumerate(c.tickets)),
    ]
    owners: list[tuple[str, int, list[model.ResourceSet]]] = [
        *(("colocation_sets", i, x.sets) for i, x in enumerate(c.colocation_sets)),
        *(("order_sets", i, x.sets) for i, x in enumerate(c.order_sets)),
        *(("tickets", i, x.sets) for i, x in enumerate(c.tickets)),
    ]
    for key, i, sets in owners:
        for j, resource_set in enumerate(sets):
            named += [
                (("constraints", key, i, "sets", j, "resources", k), name)
                for k, name in enumerate(resource_set.resources)
            ]
    for path, name in named:
        if name is None or name not in wrapped:
            continue
        outer = wrapped[name]
        what = "bundle" if outer in bundles else "clone"
        loaded.problem(
            path,
            f"{name!r} is inside {what} {outer!r}: Pacemaker ignores "
            + ("a tag" if path[0] == "tags" else "a constraint")
            + " that names it",
            f"name the {what}: {outer}",
        )


# --- Pacemaker's own checks -------------------------------------------------------------
