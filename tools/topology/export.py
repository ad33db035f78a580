"""Topology → an equivalent pcs command script, for operators who keep those (crmsh:
`export_crm`)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from hakit.ocf import cluster
from hakit.tools.topology import model, remotes, rules
from hakit.tools.topology.conventions import (
    clone_meta,
    effective,
    recipient_ids,
    sanitize_id,
    text_value,
)


class ExportError(ValueError):
    """The topology says something the target tool's syntax cannot."""


def pairs(values: Mapping[str, model.Scalar]) -> list[str]:
    return [f"{k}={text_value(v)}" for k, v in values.items()]


def op_words(op: model.Op) -> list[str]:
    words = [op.name, f"interval={op.interval}"]
    words += [f"timeout={op.timeout}"] if op.timeout else []
    words += [f"role={op.role}"] if op.role else []
    words += [f"on-fail={op.on_fail}"] if op.on_fail else []
    words += [f"OCF_CHECK_LEVEL={op.check_level}"] if op.check_level is not None else []
    for key, value in (
        ("start-delay", op.start_delay),
        ("enabled", op.enabled),
        ("record-pending", op.record_pending),
        ("interval-origin", op.interval_origin),
        ("description", op.description),
    ):
        words += [f"{key}={text_value(value)}"] if value is not None else []
    return words


def pcs_script(topology: model.Topology, cib_file: str = "cib.xml") -> str:
    """`pcs -f CIB ...` commands that build the same configuration."""
    refuse_tags_in_constraints(topology)
    remote_nodes = topology.remotes.nodes
    topology = remotes.expand(topology)
    pcs = [cluster.PCS, "-f", cib_file]
    lines: list[list[str]] = []
    if topology.cluster.properties:
        lines.append([*pcs, "property", "set", *pairs(topology.cluster.properties)])
    for node in topology.nodes:
        if node.attributes:
            lines.append([*pcs, "node", "attribute", node.name, *pairs(node.attributes)])
        if node.utilization:
            lines.append([*pcs, "node", "utilization", node.name, *pairs(dict(node.utilization))])
    for device in topology.fencing.devices:
        # --force: the fence agent may be missing where the file is built (hakit checked it)
        words = [*pcs, "stonith", "create", device.name, device.agent, *pairs(device.params)]
        words.insert(words.index("create") + 1, "--force")
        for op in device.ops:
            words += ["op", *op_words(op)]
        words += ["meta", *pairs(device.meta)] if device.meta else []
        lines.append(words)
    lines += [[*pcs, *words] for words in _pcs_bundles(topology)]
    lines += _pcs_resources(topology, pcs)
    for remote in remote_nodes:  # pcs knows a remote node once its connection exists
        if remote.attributes:
            lines.append([*pcs, "node", "attribute", remote.name, *pairs(remote.attributes)])
        if remote.utilization:
            lines.append([*pcs, "node", "utilization", remote.name, *pairs(remote.utilization)])
    lines += _pcs_constraints(topology, pcs)
    lines += [[*pcs, *words] for words in _pcs_set_constraints(topology.constraints)]
    lines += [[*pcs, *words] for words in _pcs_defaults(topology.defaults)]
    lines += [[*pcs, "tag", "create", tag.name, *tag.resources] for tag in topology.tags]
    lines += [[*pcs, *words] for words in _pcs_acls(topology.acls)]
    for alert in topology.alerts:
        words = [*pcs, "alert", "create", f"id={alert.name}", f"path={alert.path}"]
        words += [f"description={alert.description}"] if alert.description is not None else []
        words += ["options", *pairs(alert.params)] if alert.params else []
        words += ["meta", *pairs(alert.meta)] if alert.meta else []
        lines.append(words)
        for recipient, rid in zip(alert.recipients, recipient_ids(alert), strict=True):
            words = [
                *pcs,
                "alert",
                "recipient",
                "add",
                alert.name,
                f"value={recipient.value}",
                f"id={rid}",
            ]
            words += [f"description={recipient.description}"] if recipient.description else []
            words += ["options", *pairs(recipient.params)] if recipient.params else []
            words += ["meta", *pairs(recipient.meta)] if recipient.meta else []
            lines.append(words)
    header = (
        "#!/bin/sh\n# Run with sh where the CIB file is (from `pcs cluster cib "
        f"{cib_file}`; push it with `pcs cluster cib-push {cib_file}`).\nset -e\n"
        f"# cluster-name {topology.cluster.name} is set by "
        f"`pcs cluster setup {topology.cluster.name} ...`, not as a property\n"
    )
    header += _node_entries(topology, cib_file)
    if any(alert.select for alert in topology.alerts):
        header += "# pcs 0.11 cannot set an alert's select; add it with cibadmin\n"
    return header + "".join(shlex.join(words) + "\n" for words in lines)


def pcs_unexported(topology: model.Topology) -> list[str]:
    """What the pcs script leaves out, each with the reason (the export then exits 1)."""
    why = "(pcs 0.11 cannot set it; apply the topology with hakit, or use cibadmin)"
    left = [
        f"alert {alert.name}: select {' '.join(alert.select)} {why}"
        for alert in topology.alerts
        if alert.select
    ]
    owners: list[tuple[str, model.Resource | model.Group | model.FenceDevice]] = [
        *(("resource", r) for r in topology.resources),
        *(("group", g) for g in topology.groups),
        *(("fence device", d) for d in topology.fencing.devices),
    ]
    for kind, owner in owners:
        clone = getattr(owner, "clone", None)
        left += [f"{kind} {owner.name}: description {why}"] if owner.description else []
        more = getattr(owner, "instance_sets", []) + getattr(owner, "meta_sets", [])
        left += [f"{kind} {owner.name}: attribute set {x.id} {why}" for x in more]
        left += (
            [f"{kind} {owner.name}: clone description {why}"] if clone and clone.description else []
        )
        for op in getattr(owner, "ops", []):
            left += [f"{kind} {owner.name}: meta of op {op.name} {why}"] if op.meta else []
    left += [f"property set {x.id} {why}" for x in topology.cluster.property_sets]
    left += [
        f"fencing level {level.index} ({level.id}): its id {why}"
        for level in topology.fencing.levels
        if level.id
    ]
    c = topology.constraints
    set_owners: list[model.ColocationSet | model.OrderSet | model.Ticket] = [
        *c.colocation_sets,
        *c.order_sets,
        *c.tickets,
    ]
    for set_owner in set_owners:
        for item in set_owner.sets:
            given = {
                "id": item.id,
                "ordering": item.ordering,
                "kind": item.kind,
                "score": item.score,
            }
            left += [
                f"resource set {' '.join(item.resources)}: {key} {why}"
                for key, value in given.items()
                if value is not None
            ]
    return left


def _node_entries(topology: model.Topology, cib_file: str) -> str:
    """Shell lines that add an entry for each node with attributes when the file has
    none (a fresh CIB; a cluster's own CIB lists every node that has joined)."""
    lines = ""
    for node in topology.nodes:
        if not (node.attributes or node.utilization):
            continue
        xpath = f"//node[@uname='{node.name}']"
        entry = f'<node id="{node.name}" uname="{node.name}"/>'
        query = [cluster.CIBADMIN, "--query", "--scope", "nodes", "--xpath", xpath]
        create = [cluster.CIBADMIN, "--create", "--scope", "nodes", "--xml-text", entry]
        lines += (
            f"CIB_file={shlex.quote(cib_file)} {shlex.join(query)} >/dev/null 2>&1 || "
            f"CIB_file={shlex.quote(cib_file)} {shlex.join(create)}\n"
        )
    return lines


def refuse_tags_in_constraints(topology: model.Topology) -> None:
    tags = {t.name for t in topology.tags}
    c = topology.constraints
    used = {x.resource for x in c.locations} | {x.resource for x in c.colocations}
    used |= {x.with_ for x in c.colocations} | {x.first for x in c.orders}
    used |= {x.then for x in c.orders} | {x.resource for x in c.tickets if x.resource}
    owners: list[model.ColocationSet | model.OrderSet | model.Ticket] = [
        *c.colocation_sets,
        *c.order_sets,
        *c.tickets,
    ]
    for owner in owners:
        used |= {name for item in owner.sets for name in item.resources}
    if tags & used:
        raise ExportError(
            f"pcs 0.11 cannot use tags in constraints ({', '.join(sorted(tags & used))})"
            ": name the resources, or use the crm export"
        )


def _pcs_bundles(topology: model.Topology) -> list[list[str]]:
    lines = []
    for bundle in topology.bundles:
        container = {
            "image": bundle.image,
            "replicas": bundle.replicas,
            "replicas-per-host": bundle.replicas_per_host,
            "promoted-max": bundle.promoted_max,
            "run-command": bundle.run_command,
            "options": bundle.options,
        }
        words = ["resource", "bundle", "create", bundle.name, "container", bundle.runtime]
        words += [f"{k}={v}" for k, v in container.items() if v is not None]
        words += ["network", *pairs(bundle.network)] if bundle.network else []
        for port in bundle.ports:
            words += [
                "port-map",
                *pairs({k.replace("_", "-"): v for k, v in vars(port).items() if v is not None}),
            ]
        for mapping in bundle.storage:
            words += [
                "storage-map",
                *pairs({k.replace("_", "-"): v for k, v in vars(mapping).items() if v is not None}),
            ]
        words += ["meta", *pairs(bundle.meta)] if bundle.meta else []
        lines.append(words)
    return lines


def _location_words(loc: model.Location) -> list[str]:
    """After `constraint location`: prefers, add (an id or resource-discovery) or rule."""
    subject = loc.resource or f"regexp%{loc.resource_pattern}"
    discovery = [f"resource-discovery={loc.resource_discovery}"] if loc.resource_discovery else []
    if loc.rule is not None:
        words = [subject, "rule", *([f"constraint-id={loc.id}"] if loc.id else []), *discovery]
        words += [f"role={loc.role}"] if loc.role else []
        score = f"score-attribute={loc.score_attribute}" if loc.score_attribute else None
        return [*words, score or f"score={loc.score}", *_rule_words(loc.rule)]
    if loc.id or discovery:
        default = sanitize_id(
            f"location-{loc.resource or loc.resource_pattern}-{loc.node}-{loc.score}"
        )
        return ["add", loc.id or default, subject, loc.node or "", loc.score, *discovery]
    return [subject, "prefers", f"{loc.node}={loc.score}"]


def _rule_words(text: str) -> list[str]:
    """A rule as pcs's argument words (parentheses are words of their own)."""
    return rules.to_text(rules.parse(text)).replace("(", "( ").replace(")", " )").split()


def _set_words(sets: list[model.ResourceSet]) -> list[str]:
    words: list[str] = []
    for item in sets:
        options = {
            "sequential": item.sequential,
            "require-all": item.require_all,
            "role": item.role,
            "action": item.action,
        }
        words += ["set", *item.resources]
        words += [f"{k}={text_value(v)}" for k, v in options.items() if v is not None]
    return words


def _pcs_set_constraints(c: model.Constraints) -> list[list[str]]:
    lines = []
    for colocation in c.colocation_sets:
        lines.append(
            [
                "constraint",
                "colocation",
                *_set_words(colocation.sets),
                "setoptions",
                f"score={colocation.score}",
                *([f"id={colocation.id}"] if colocation.id else []),
            ]
        )
    for order in c.order_sets:
        options = [
            f"{key}={text_value(value)}"
            for key, value in (
                ("kind", order.kind),
                ("symmetrical", order.symmetrical),
                ("id", order.id),
            )
            if value is not None
        ]
        setoptions = ["setoptions", *options] if options else []
        lines.append(["constraint", "order", *_set_words(order.sets), *setoptions])
    for ticket in c.tickets:
        policy = [f"loss-policy={ticket.loss_policy}"] if ticket.loss_policy else []
        if ticket.resource:
            role = [ticket.role] if ticket.role else []
            lines.append(
                [
                    "constraint",
                    "ticket",
                    "add",
                    ticket.ticket,
                    *role,
                    ticket.resource,
                    *policy,
                    *([f"id={ticket.id}"] if ticket.id else []),
                ]
            )
        else:
            lines.append(
                [
                    "constraint",
                    "ticket",
                    *_set_words(ticket.sets),
                    "setoptions",
                    f"ticket={ticket.ticket}",
                    *policy,
                    *([f"id={ticket.id}"] if ticket.id else []),
                ]
            )
    return lines


def _pcs_defaults(defaults: model.Defaults) -> list[list[str]]:
    lines = []
    for command, plain, sets in (
        (["resource", "defaults"], defaults.resources, defaults.resource_sets),
        (["resource", "op", "defaults"], defaults.operations, defaults.operation_sets),
    ):
        if plain:
            lines.append([*command, "update", *pairs(plain)])
        for item in sets:
            words = [*command, "set", "create", f"id={item.name}"]
            words += [f"score={item.score}"] if item.score is not None else []
            words += ["meta", *pairs(item.meta)]
            words += ["rule", *_rule_words(item.rule)] if item.rule else []
            lines.append(words)
    return lines


def _pcs_acls(acls: model.Acls) -> list[list[str]]:
    lines = []
    for role in acls.roles:
        words = ["acl", "role", "create", role.name]
        words += [f"description={role.description}"] if role.description else []
        for permission in role.permissions:
            words += [
                permission.kind,
                *(
                    ["xpath", permission.xpath]
                    if permission.xpath
                    else ["id", permission.reference or ""]
                ),
            ]
        lines.append(words)
    lines += [["acl", "user", "create", user.name, *user.roles] for user in acls.users]
    lines += [["acl", "group", "create", group.name, *group.roles] for group in acls.groups]
    return lines


def _pcs_resources(topology: model.Topology, pcs: list[str]) -> list[list[str]]:
    lines: list[list[str]] = []
    grouped = {m for g in topology.groups for m in g.members}
    bundled = {b.resource: b.name for b in topology.bundles if b.resource}
    for resource in topology.resources:
        full = effective(resource, topology)
        words = [
            *pcs,
            "resource",
            "create",
            "--no-default-ops",
            full.name,
            full.agent or "",
            *pairs(full.params),
        ]
        if _remote_node(full, grouped, bundled):
            # pcs's way for a remote node's connection ("resource create" refuses it)
            params = {k: v for k, v in full.params.items() if k != "server"}
            words = [*pcs, "cluster", "node", "add-remote", "--no-default-ops", full.name]
            words += [text_value(full.params["server"]), *pairs(params)]
        for op in full.ops:
            words += ["op", *op_words(op)]
        words += ["meta", *pairs(full.meta)] if full.meta else []
        words += ["bundle", bundled[full.name]] if full.name in bundled else []
        if full.clone and full.name not in grouped and not full.clone.id:
            # pcs 0.11: clone options follow the keyword directly ("meta" would be the primitive's)
            words += ["promotable" if full.clone.promotable else "clone"]
            words += pairs(clone_meta(full.clone))
        lines.append(words)
        if full.clone and full.name not in grouped and full.clone.id:
            kind = "promotable" if full.clone.promotable else "clone"
            clone_words = [full.clone.id, *pairs(clone_meta(full.clone))]
            lines.append([*pcs, "resource", kind, full.name, *clone_words])
        if full.utilization:
            lines.append([*pcs, "resource", "utilization", full.name, *pairs(full.utilization)])
    for group in topology.groups:
        lines.append([*pcs, "resource", "group", "add", group.name, *group.members])
        if group.meta:
            lines.append([*pcs, "resource", "meta", group.name, *pairs(group.meta)])
        if group.clone:
            kind = "promotable" if group.clone.promotable else "clone"
            custom = [group.clone.id] if group.clone.id else []
            lines.append(
                [*pcs, "resource", kind, group.name, *custom, *pairs(clone_meta(group.clone))]
            )
    return lines


def _remote_node(full: model.Resource, grouped: set[str], bundled: dict[str, str]) -> bool:
    """A remote node's connection resource, as `pcs cluster node add-remote` makes one."""
    plain = not (full.clone or full.name in grouped or full.name in bundled)
    return remotes.is_connection(full) and "server" in full.params and plain


def _pcs_constraints(topology: model.Topology, pcs: list[str]) -> list[list[str]]:
    lines: list[list[str]] = []
    c = topology.constraints
    for loc in c.locations:
        lines.append([*pcs, "constraint", "location", *_location_words(loc)])
    for col in c.colocations:
        words = [*pcs, "constraint", "colocation", "add"]
        words += [*([col.role] if col.role else []), col.resource, "with"]
        words += [*([col.with_role] if col.with_role else []), col.with_, col.score]
        words += [f"node-attribute={col.node_attribute}"] if col.node_attribute else []
        words += [f"id={col.id}"] if col.id else []
        lines.append(words)
    for order in c.orders:
        words = [*pcs, "constraint", "order"]
        words += [order.first_action] if order.first_action else []
        words += [order.first, "then"]
        words += [order.then_action] if order.then_action else []
        words += [order.then]
        for key, value in (
            ("kind", order.kind),
            ("symmetrical", order.symmetrical),
            ("require-all", order.require_all),
            ("id", order.id),
        ):
            words += [f"{key}={text_value(value)}"] if value is not None else []
        lines.append(words)
    for level in topology.fencing.levels:
        target = level.target or (
            f"regexp%{level.target_pattern}"
            if level.target_pattern
            else f"attrib%{level.target_attribute}"
        )
        lines.append(
            [*pcs, "stonith", "level", "add", "--force", str(level.index), target, *level.devices]
        )
    return lines
