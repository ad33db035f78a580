"""Topology → an equivalent `crm configure load update -` script (crmsh 4.4), refusing
with the reason what crmsh cannot say."""

from __future__ import annotations

import shlex

from hakit.tools.topology import model, remotes, rules
from hakit.tools.topology.conventions import clone_id, clone_meta, effective, text_value
from hakit.tools.topology.export import ExportError, op_words, pairs


def crm_script(topology: model.Topology) -> str:
    """A `crm configure load update -` script for the same configuration."""
    remote_nodes = topology.remotes.nodes
    topology = remotes.expand(topology)
    refuse_unwritten(topology)
    out: list[str] = []

    def nv(values: dict[str, model.Scalar]) -> str:
        return " ".join(f"{k}={shlex.quote(text_value(v))}" for k, v in values.items())

    props = {"cluster-name": topology.cluster.name, **topology.cluster.properties}
    out.append(f"property cib-bootstrap-options: {nv(props)}")
    typed: list[tuple[model.Node | model.Remote, str]] = [(n, "") for n in topology.nodes]
    typed += [(remote, ":remote") for remote in remote_nodes]
    for node, kind in typed:
        if node.attributes or node.utilization:
            text = f"node {node.name}{kind}"
            text += f" attributes {nv(node.attributes)}" if node.attributes else ""
            text += f" utilization {nv(dict(node.utilization))}" if node.utilization else ""
            out.append(text)
    for device in topology.fencing.devices:
        out.append(
            _crm_primitive(
                device.name, f"stonith:{device.agent}", device.params, device.ops, device.meta
            )
        )
    for resource in topology.resources:
        full = effective(resource, topology)
        out.append(
            _crm_primitive(
                full.name, full.agent or "", full.params, full.ops, full.meta, full.utilization
            )
        )
        grouped = {m for g in topology.groups for m in g.members}
        if full.clone and full.name not in grouped:
            meta = clone_meta(full.clone) | ({"promotable": True} if full.clone.promotable else {})
            out.append(
                f"clone {clone_id(full.name, full.clone)} {full.name}"
                + (f" meta {nv(meta)}" if meta else "")
            )
    for group in topology.groups:
        out.append(
            f"group {group.name} {' '.join(group.members)}"
            + (f" meta {nv(group.meta)}" if group.meta else "")
        )
        if group.clone:
            out.append(f"clone {clone_id(group.name, group.clone)} {group.name}")
    out += _crm_constraints(topology.constraints)
    out += _crm_bundles_tags_acls(topology)
    if topology.defaults.resource_sets or topology.defaults.operation_sets:
        raise ExportError(
            "crmsh cannot express default sets with scores and rules; "
            "use the pcs export or apply the topology directly"
        )
    for alert in topology.alerts:
        text = f"alert {alert.name} {shlex.quote(alert.path)}"
        text += f" meta {nv(alert.meta)}" if alert.meta else ""
        text += f" attributes {nv(alert.params)}" if alert.params else ""
        text += f" select {' '.join(alert.select)}" if alert.select else ""
        for recipient in alert.recipients:
            text += f" to {{ {shlex.quote(recipient.value)}"
            text += f" attributes {nv(recipient.params)}" if recipient.params else ""
            text += f" meta {nv(recipient.meta)}" if recipient.meta else ""
            text += " }"
        out.append(text)
    if topology.defaults.resources:
        out.append(f"rsc_defaults {nv(topology.defaults.resources)}")
    if topology.defaults.operations:
        out.append(f"op_defaults {nv(topology.defaults.operations)}")
    return "\n".join(out) + "\n"


def refuse_unwritten(topology: model.Topology) -> None:
    """ExportError naming what this crmsh export does not write (the pcs export does)."""
    c = topology.constraints
    found = [
        *(
            f"location {x.resource_pattern}: resource_pattern"
            for x in c.locations
            if x.resource_pattern
        ),
        *(f"location {x.resource}: score_attribute" for x in c.locations if x.score_attribute),
        *(f"colocation {x.resource}: node_attribute" for x in c.colocations if x.node_attribute),
        *(
            f"order {x.first} then {x.then}: require_all"
            for x in c.orders
            if x.require_all is not None
        ),
        *(
            f"{kind} set {' '.join(s.resources)}: ordering, kind or score"
            for kind, owners in (("colocation", c.colocation_sets), ("order", c.order_sets))
            for owner in owners
            for s in owner.sets
            if s.ordering or s.kind or s.score
        ),
    ]
    things: list[model.Resource | model.Group | model.FenceDevice | model.Alert] = [
        *topology.resources,
        *topology.groups,
        *topology.fencing.devices,
        *topology.alerts,
    ]
    found += [f"{x.name}: description" for x in things if x.description]
    found += [
        f"{r.name}: more attribute sets"
        for r in topology.resources
        if r.instance_sets or r.meta_sets
    ]
    found += [f"property set {x.id}" for x in topology.cluster.property_sets]
    with_ops: list[model.Resource | model.FenceDevice] = [
        *topology.resources,
        *topology.fencing.devices,
    ]
    ops = [(r.name, op) for r in with_ops for op in r.ops]
    found += [
        f"{name}: op {op.name} meta or extra attributes" for name, op in ops if _op_extras(op)
    ]
    if found:
        raise ExportError(f"the crm export does not write {'; '.join(found)}: use the pcs export")


def _op_extras(op: model.Op) -> bool:
    extras = (op.start_delay, op.enabled, op.record_pending, op.interval_origin, op.description)
    return bool(op.meta) or any(value is not None for value in extras)


def _crm_constraints(c: model.Constraints) -> list[str]:
    out = []
    for loc in c.locations:
        if loc.rule is None:
            discovery = _discovery(loc)
            out.append(
                f"location location-{loc.resource}-{loc.node}-{loc.score} {loc.resource}"
                f"{discovery} {loc.score}: {loc.node}"
            )
    for col in c.colocations:
        rsc = f"{col.resource}:{col.role}" if col.role else col.resource
        with_ = f"{col.with_}:{col.with_role}" if col.with_role else col.with_
        out.append(
            f"colocation colocation-{col.resource}-{col.with_}-{col.score} "
            f"{col.score}: {rsc} {with_}"
        )
    for order in c.orders:
        first = f"{order.first}:{order.first_action}" if order.first_action else order.first
        then = f"{order.then}:{order.then_action}" if order.then_action else order.then
        sym = (
            f" symmetrical={text_value(order.symmetrical)}" if order.symmetrical is not None else ""
        )
        kind = order.kind or "Mandatory"
        out.append(
            f"order order-{order.first}-{order.then}-{kind.lower()} {kind}: {first} {then}{sym}"
        )
    return out + _crm_rules_and_sets(c)


def _discovery(location: model.Location) -> str:
    """crmsh's resource-discovery option, after the resource."""
    mode = location.resource_discovery
    return f" resource-discovery={mode}" if mode else ""


def _crm_sets(sets: list[model.ResourceSet], kind: str) -> str:
    """crmsh's set syntax: `( A B )` not sequential, `[ A B ]` neither sequential nor
    require-all, bare names one sequential set; `A:promote` gives a set its action (or
    role), and crmsh splits bare names where the action changes."""
    words: list[str] = []
    previous_plain: str | None = None
    for item in sets:
        shape = (item.sequential, item.require_all)
        if shape not in ((None, None), (False, None), (False, False)) or (
            item.role and item.action
        ):
            raise ExportError(
                f"crmsh cannot express this {kind} set ({item.resources}): use the pcs export"
            )
        suffix = f":{item.action or item.role}" if item.action or item.role else ""
        plain = shape == (None, None)
        if plain and previous_plain == suffix:
            raise ExportError(f"crmsh would merge two sequential {kind} sets: use the pcs export")
        brackets = None if plain else ("(", ")") if item.require_all is None else ("[", "]")
        names = [f"{name}{suffix}" for name in item.resources]
        words += [brackets[0], *names, brackets[1]] if brackets else names
        previous_plain = suffix if plain else None
    if kind == "colocation" and len(words) == 2:
        raise ExportError(
            "crmsh reads a two-resource colocation set as a plain colocation "
            "(reversed): use the pcs export"
        )
    return " ".join(words)


def _crm_rules_and_sets(c: model.Constraints) -> list[str]:
    out = []
    for number, loc in enumerate(c.locations):
        if loc.rule is not None:
            role = f" $role={loc.role}" if loc.role else ""
            try:
                text = rules.crm_text(rules.parse(loc.rule))
            except ValueError as error:
                raise ExportError(str(error)) from None
            out.append(
                f"location {loc.id or f'location-{loc.resource}-{number}'} {loc.resource}"
                f"{_discovery(loc)} rule{role} {loc.score}: {text}"
            )
    for number, colocation in enumerate(c.colocation_sets):
        out.append(
            f"colocation colocation_set-{number} {colocation.score}: "
            f"{_crm_sets(colocation.sets, 'colocation')}"
        )
    for number, order in enumerate(c.order_sets):
        sym = (
            f" symmetrical={text_value(order.symmetrical)}" if order.symmetrical is not None else ""
        )
        kind = order.kind or "Mandatory"
        out.append(f"order order_set-{number} {kind}: {_crm_sets(order.sets, 'order')}{sym}")
    for number, ticket in enumerate(c.tickets):
        what = (
            (f"{ticket.resource}:{ticket.role}" if ticket.role else ticket.resource)
            if ticket.resource
            else _crm_sets(ticket.sets, "ticket")
        )
        policy = f" loss-policy={ticket.loss_policy}" if ticket.loss_policy else ""
        out.append(f"rsc_ticket ticket-{ticket.ticket}-{number} {ticket.ticket}: {what}{policy}")
    return out


def _crm_bundles_tags_acls(topology: model.Topology) -> list[str]:
    out = []
    for bundle in topology.bundles:
        if bundle.runtime == "podman":
            raise ExportError(
                f"bundle {bundle.name}: crmsh 4.4 (Debian 12) knows docker and "
                "rkt bundles, not podman: use the pcs export"
            )
        container = {
            "image": bundle.image,
            "replicas": bundle.replicas,
            "replicas-per-host": bundle.replicas_per_host,
            "promoted-max": bundle.promoted_max,
            "run-command": bundle.run_command,
            "options": bundle.options,
        }
        text = f"bundle {bundle.name} {bundle.runtime} " + " ".join(
            f"{k}={shlex.quote(str(v))}" for k, v in container.items() if v is not None
        )
        if bundle.network or bundle.ports:
            text += " network " + " ".join(pairs(bundle.network))
            for port in bundle.ports:
                attrs = {k.replace("_", "-"): v for k, v in vars(port).items() if v is not None}
                text += f" port-mapping id={bundle.name}-port-map-{port.port or port.range} "
                text += " ".join(pairs(attrs))
        if bundle.storage:
            text += " storage"
            for number, mapping in enumerate(bundle.storage):
                attrs = {k.replace("_", "-"): v for k, v in vars(mapping).items() if v is not None}
                text += f" storage-mapping id={bundle.name}-storage-map"
                text += (f"-{number} " if number else " ") + " ".join(pairs(attrs))
        text += f" primitive {bundle.resource}" if bundle.resource else ""
        text += " meta " + " ".join(pairs(bundle.meta)) if bundle.meta else ""
        out.append(text)
    out += [f"tag {tag.name}: {' '.join(tag.resources)}" for tag in topology.tags]
    for role in topology.acls.roles:
        if role.description:
            out.append(f"# role {role.name}: crmsh drops its description {role.description!r}")
        out.append(
            f"role {role.name} "
            + " ".join(
                f'{p.kind} xpath:"{p.xpath}"' if p.xpath else f"{p.kind} ref:{p.reference}"
                for p in role.permissions
            )
        )
    out += [f"acl_target {u.name} {' '.join(u.roles)}" for u in topology.acls.users]
    out += [f"acl_group {g.name} {' '.join(g.roles)}" for g in topology.acls.groups]
    return out


def _crm_primitive(
    name: str,
    agent: str,
    params: dict[str, model.Scalar],
    ops: list[model.Op],
    meta: dict[str, model.Scalar],
    utilization: dict[str, int] | None = None,
) -> str:
    text = f"primitive {name} {agent}"
    if params:
        text += " params " + " ".join(
            f"{k}={shlex.quote(text_value(v))}" for k, v in params.items()
        )
    for op in ops:
        text += " op " + " ".join(op_words(op))
    if meta:
        text += " meta " + " ".join(f"{k}={shlex.quote(text_value(v))}" for k, v in meta.items())
    if utilization:
        text += " utilization " + " ".join(f"{k}={v}" for k, v in utilization.items())
    return text
