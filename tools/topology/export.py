"""Topology → an equivalent pcs command script, for operators who keep those (crmsh:
`export_crm`)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from hakit.ocf import cluster
from hakit.tools.topology import model, rules
from hakit.tools.topology.conventions import clone_meta, effective, text_value


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
    return words


def pcs_script(topology: model.Topology, cib_file: str = "cib.xml") -> str:
    """`pcs -f CIB ...` commands that build the same configuration."""
    refuse_tags_in_constraints(topology)
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
    lines += _pcs_constraints(topology, pcs)
    lines += [[*pcs, *words] for words in _pcs_set_constraints(topology.constraints)]
    lines += [[*pcs, *words] for words in _pcs_defaults(topology.defaults)]
    lines += [[*pcs, "tag", "create", tag.name, *tag.resources] for tag in topology.tags]
    lines += [[*pcs, *words] for words in _pcs_acls(topology.acls)]
    for alert in topology.alerts:
        words = [*pcs, "alert", "create", f"id={alert.name}", f"path={alert.path}"]
        words += ["options", *pairs(alert.params)] if alert.params else []
        words += ["meta", *pairs(alert.meta)] if alert.meta else []
        lines.append(words)
        for number, recipient in enumerate(alert.recipients, 1):
            rid = f"{alert.name}-recipient" + (f"-{number}" if number > 1 else "")
            words = [
                *pcs,
                "alert",
                "recipient",
                "add",
                alert.name,
                f"value={recipient.value}",
                f"id={rid}",
            ]
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
    return [
        f"alert {alert.name}: select {' '.join(alert.select)} (pcs 0.11 cannot set it; "
        "add it with cibadmin, or apply the topology with hakit)"
        for alert in topology.alerts
        if alert.select
    ]


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
            ]
        )
    for order in c.order_sets:
        words = ["constraint", "order", *_set_words(order.sets), "setoptions", f"kind={order.kind}"]
        words += (
            [f"symmetrical={text_value(order.symmetrical)}"]
            if order.symmetrical is not None
            else []
        )
        lines.append(words)
    for ticket in c.tickets:
        policy = [f"loss-policy={ticket.loss_policy}"] if ticket.loss_policy else []
        if ticket.resource:
            role = [ticket.role] if ticket.role else []
            lines.append(
                ["constraint", "ticket", "add", ticket.ticket, *role, ticket.resource, *policy]
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
        for op in full.ops:
            words += ["op", *op_words(op)]
        words += ["meta", *pairs(full.meta)] if full.meta else []
        words += ["bundle", bundled[full.name]] if full.name in bundled else []
        if full.clone and full.name not in grouped:
            # pcs 0.11: clone options follow the keyword directly ("meta" would be the primitive's)
            words += ["promotable" if full.clone.promotable else "clone"]
            words += pairs(clone_meta(full.clone))
        lines.append(words)
        if full.utilization:
            lines.append([*pcs, "resource", "utilization", full.name, *pairs(full.utilization)])
    for group in topology.groups:
        lines.append([*pcs, "resource", "group", "add", group.name, *group.members])
        if group.meta:
            lines.append([*pcs, "resource", "meta", group.name, *pairs(group.meta)])
        if group.clone:
            kind = "promotable" if group.clone.promotable else "clone"
            lines.append([*pcs, "resource", kind, group.name, *pairs(clone_meta(group.clone))])
    return lines


def _pcs_constraints(topology: model.Topology, pcs: list[str]) -> list[list[str]]:
    lines: list[list[str]] = []
    c = topology.constraints
    for loc in c.locations:
        if loc.rule is not None:
            role = [f"role={loc.role}"] if loc.role else []
            lines.append(
                [
                    *pcs,
                    "constraint",
                    "location",
                    loc.resource,
                    "rule",
                    *role,
                    f"score={loc.score}",
                    *_rule_words(loc.rule),
                ]
            )
            continue
        lines.append(
            [*pcs, "constraint", "location", loc.resource, "prefers", f"{loc.node}={loc.score}"]
        )
    for col in c.colocations:
        lines.append(
            [
                *pcs,
                "constraint",
                "colocation",
                "add",
                *([col.role] if col.role else []),
                col.resource,
                "with",
                *([col.with_role] if col.with_role else []),
                col.with_,
                col.score,
            ]
        )
    for order in c.orders:
        words = [*pcs, "constraint", "order"]
        words += [order.first_action] if order.first_action else []
        words += [order.first, "then"]
        words += [order.then_action] if order.then_action else []
        words += [order.then, f"kind={order.kind}"]
        if order.symmetrical is not None:
            words.append(f"symmetrical={text_value(order.symmetrical)}")
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
