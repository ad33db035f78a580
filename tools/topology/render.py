"""Topology → CIB XML, deterministic, with ids derived the way pcs derives them.

One small function per CIB object; `render` assembles the document.
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from hakit.tools.topology import model, remotes, rules
from hakit.tools.topology.conventions import (
    clone_id,
    clone_meta,
    effective,
    recipient_ids,
    sanitize_id,
    set_constraint_id,
    text_value,
)

VALIDATE_WITH = "pacemaker-3.9"
Element = etree._Element


def nvset(parent: Element, tag: str, set_id: str, values: Mapping[str, model.Scalar]) -> None:
    """instance_attributes / meta_attributes / utilization with pcs-style nvpair ids."""
    if not values:
        return
    element = etree.SubElement(parent, tag, id=set_id)
    for name, value in values.items():
        etree.SubElement(
            element, "nvpair", id=f"{set_id}-{name}", name=name, value=text_value(value)
        )


def ruled_sets(parent: Element, tag: str, sets: list[model.NvSet]) -> None:
    """Further name/value sets with their ids, scores and rules."""
    for item in sets:
        element = etree.SubElement(parent, tag, id=item.id)
        if item.score is not None:
            element.set("score", item.score)
        if item.rule:
            rules.to_element(element, rules.parse(item.rule), f"{item.id}-rule", {})
        for name, value in item.values.items():
            etree.SubElement(
                element, "nvpair", id=f"{item.id}-{name}", name=name, value=text_value(value)
            )


def operations(parent: Element, rsc: str, ops: list[model.Op]) -> None:
    if not ops:
        return
    element = etree.SubElement(parent, "operations")
    for op in ops:
        op_id = f"{rsc}-{op.name}-interval-{op.interval}"
        attrs = {"id": op_id, "name": op.name, "interval": op.interval}
        for key, value in (
            ("timeout", op.timeout),
            ("role", op.role),
            ("on-fail", op.on_fail),
            ("start-delay", op.start_delay),
            ("enabled", op.enabled),
            ("record-pending", op.record_pending),
            ("interval-origin", op.interval_origin),
            ("description", op.description),
        ):
            if value is not None:
                attrs[key] = text_value(value)
        op_element = etree.SubElement(element, "op", attrs)
        nvset(op_element, "meta_attributes", f"{op_id}-meta_attributes", op.meta)
        if op.check_level is not None:
            nvset(
                op_element,
                "instance_attributes",
                f"{op_id}-instance_attributes",
                {"OCF_CHECK_LEVEL": op.check_level},
            )


def agent_attributes(agent: str) -> dict[str, str]:
    """ocf:heartbeat:IPaddr2 → class, provider, type; stonith:fence_x → class, type."""
    parts = agent.split(":")
    if len(parts) == 3:
        return {"class": parts[0], "provider": parts[1], "type": parts[2]}
    if len(parts) == 2:
        return {"class": parts[0], "type": parts[1]}
    return {"class": "ocf", "provider": "heartbeat", "type": agent}


def primitive(parent: Element, resource: model.Resource) -> Element:
    attrs = {"id": resource.name, **agent_attributes(resource.agent or "")}
    if resource.description is not None:
        attrs["description"] = resource.description
    element = etree.SubElement(parent, "primitive", attrs)
    nvset(element, "instance_attributes", f"{resource.name}-instance_attributes", resource.params)
    ruled_sets(element, "instance_attributes", resource.instance_sets)
    nvset(element, "meta_attributes", f"{resource.name}-meta_attributes", resource.meta)
    ruled_sets(element, "meta_attributes", resource.meta_sets)
    nvset(element, "utilization", f"{resource.name}-utilization", resource.utilization)
    operations(element, resource.name, resource.ops)
    return element


def wrap_clone(parent: Element, name: str, spec: model.CloneSpec) -> Element:
    element = etree.SubElement(parent, "clone", id=clone_id(name, spec))
    if spec.description is not None:
        element.set("description", spec.description)
    meta: dict[str, model.Scalar] = dict(spec.meta)
    if spec.promotable:
        meta["promotable"] = True
    meta |= clone_meta(spec)
    nvset(element, "meta_attributes", f"{clone_id(name, spec)}-meta_attributes", meta)
    return element


def render(topology: model.Topology) -> Element:
    """The complete CIB for `topology` (status section empty); its remotes as plain
    objects (`remotes.expand`) and a `<node type="remote">` each."""
    remote_nodes = topology.remotes.nodes
    topology = remotes.expand(topology)
    cib = etree.Element(
        "cib",
        {"validate-with": VALIDATE_WITH, "admin_epoch": "0", "epoch": "1", "num_updates": "0"},
    )
    configuration = etree.SubElement(cib, "configuration")
    crm_config = etree.SubElement(configuration, "crm_config")
    properties = {"cluster-name": topology.cluster.name, **topology.cluster.properties}
    nvset(crm_config, "cluster_property_set", "cib-bootstrap-options", properties)
    ruled_sets(crm_config, "cluster_property_set", topology.cluster.property_sets)
    nodes = etree.SubElement(configuration, "nodes")
    for number, node in enumerate(topology.nodes, 1):
        element = etree.SubElement(nodes, "node", id=str(number), uname=node.name)
        nvset(element, "instance_attributes", f"nodes-{number}", node.attributes)
        nvset(element, "utilization", f"nodes-{number}-utilization", node.utilization)
    for remote in remote_nodes:  # as pcs writes it: the name is the id
        element = etree.SubElement(nodes, "node", id=remote.name, uname=remote.name, type="remote")
        nvset(element, "instance_attributes", f"nodes-{remote.name}", remote.attributes)
        nvset(element, "utilization", f"nodes-{remote.name}-utilization", remote.utilization)
    resources(etree.SubElement(configuration, "resources"), topology)
    constraints(etree.SubElement(configuration, "constraints"), topology)
    if topology.fencing.levels:
        fencing_topology(etree.SubElement(configuration, "fencing-topology"), topology)
    defaults(configuration, topology.defaults)
    if topology.tags:
        tags(etree.SubElement(configuration, "tags"), topology.tags)
    if topology.acls.roles or topology.acls.users or topology.acls.groups:
        acls(etree.SubElement(configuration, "acls"), topology.acls)
    if topology.alerts:
        alerts(etree.SubElement(configuration, "alerts"), topology.alerts)
    etree.SubElement(cib, "status")
    return cib


def resources(section: Element, topology: model.Topology) -> None:
    """Fence devices, primitives (cloned or not), groups and bundles."""
    for device in topology.fencing.devices:
        primitive(
            section,
            model.Resource(
                name=device.name,
                agent=f"stonith:{device.agent}",
                params=device.params,
                meta=device.meta,
                ops=device.ops,
                description=device.description,
            ),
        )
    grouped = {member for group in topology.groups for member in group.members}
    grouped |= {bundle.resource for bundle in topology.bundles if bundle.resource}
    by_name = {r.name: effective(r, topology) for r in topology.resources}
    for resource in by_name.values():
        if resource.name not in grouped:
            holder = (
                wrap_clone(section, resource.name, resource.clone) if resource.clone else section
            )
            primitive(holder, resource)
    for group in topology.groups:
        holder = wrap_clone(section, group.name, group.clone) if group.clone else section
        element = etree.SubElement(holder, "group", id=group.name)
        if group.description is not None:
            element.set("description", group.description)
        nvset(element, "meta_attributes", f"{group.name}-meta_attributes", group.meta)
        for member in group.members:
            if member in by_name:
                primitive(element, by_name[member])
    for item in topology.bundles:
        bundle(section, item, by_name.get(item.resource or ""))


def bundle(parent: Element, item: model.Bundle, inner: model.Resource | None) -> None:
    """A bundle with pcs's ids: `<bundle>-port-map-<port>`, `<bundle>-storage-map[-N]`."""
    element = etree.SubElement(parent, "bundle", id=item.name)
    container = {"image": item.image}
    for key, value in (
        ("replicas", item.replicas),
        ("replicas-per-host", item.replicas_per_host),
        ("promoted-max", item.promoted_max),
        ("run-command", item.run_command),
        ("options", item.options),
    ):
        if value is not None:
            container[key] = str(value)
    etree.SubElement(element, item.runtime, container)
    if item.network or item.ports:
        network = etree.SubElement(
            element, "network", {k: text_value(v) for k, v in item.network.items()}
        )
        for port in item.ports:
            attrs = {
                k: str(v)
                for k, v in (
                    ("port", port.port),
                    ("internal-port", port.internal_port),
                    ("range", port.range),
                )
                if v is not None
            }
            attrs["id"] = f"{item.name}-port-map-{port.port or port.range}"
            etree.SubElement(network, "port-mapping", attrs)
    if item.storage:
        storage = etree.SubElement(element, "storage")
        for number, mapping in enumerate(item.storage):
            attrs = {k.replace("_", "-"): v for k, v in vars(mapping).items() if v is not None}
            etree.SubElement(
                storage,
                "storage-mapping",
                attrs,
                id=f"{item.name}-storage-map" + (f"-{number}" if number else ""),
            )
    nvset(element, "meta_attributes", f"{item.name}-meta_attributes", item.meta)
    if inner is not None:
        primitive(element, inner)


def tags(parent: Element, items: list[model.Tag]) -> None:
    for tag in items:
        element = etree.SubElement(parent, "tag", id=tag.name)
        for name in tag.resources:
            etree.SubElement(element, "obj_ref", id=name)


def defaults(configuration: Element, values: model.Defaults) -> None:
    """rsc_defaults / op_defaults: the plain set, then the sets with rules."""
    for tag, plain, sets in (
        ("rsc_defaults", values.resources, values.resource_sets),
        ("op_defaults", values.operations, values.operation_sets),
    ):
        if not plain and not sets:
            continue
        element = etree.SubElement(configuration, tag)
        nvset(element, "meta_attributes", f"{tag}-meta_attributes", plain)
        for item in sets:
            meta = etree.SubElement(element, "meta_attributes", id=item.name)
            if item.score is not None:
                meta.set("score", item.score)
            if item.rule:
                rule = rules.parse(item.rule)
                rules.to_element(
                    meta, rule, f"{item.name}-rule", {"score": "INFINITY"}, always_boolean_op=True
                )
            for name, value in item.meta.items():
                etree.SubElement(
                    meta, "nvpair", id=f"{item.name}-{name}", name=name, value=text_value(value)
                )


def acls(parent: Element, values: model.Acls) -> None:
    """Roles with pcs's permission ids (`<role>-<kind>[-N]`), then users and groups."""
    for role in values.roles:
        element = etree.SubElement(parent, "acl_role", id=role.name)
        if role.description:
            element.set("description", role.description)
        counts: dict[str, int] = {}
        for permission in role.permissions:
            count = counts[permission.kind] = counts.get(permission.kind, -1) + 1
            attrs = {
                "id": f"{role.name}-{permission.kind}" + (f"-{count}" if count else ""),
                "kind": permission.kind,
            }
            if permission.xpath:
                attrs["xpath"] = permission.xpath
            if permission.reference:
                attrs["reference"] = permission.reference
            etree.SubElement(element, "acl_permission", attrs)
    for tag, targets in (("acl_target", values.users), ("acl_group", values.groups)):
        for target in targets:
            element = etree.SubElement(parent, tag, id=target.name)
            for role_name in target.roles:
                etree.SubElement(element, "role", id=role_name)


def alerts(parent: Element, items: list[model.Alert]) -> None:
    """Alerts with pcs's ids: the alert's name, recipients `<alert>-recipient[-N]`
    (N from 1, the first id not taken)."""
    for alert in items:
        element = etree.SubElement(parent, "alert", id=alert.name, path=alert.path)
        if alert.description is not None:
            element.set("description", alert.description)
        nvset(element, "meta_attributes", f"{alert.name}-meta_attributes", alert.meta)
        nvset(element, "instance_attributes", f"{alert.name}-instance_attributes", alert.params)
        if alert.select:
            select = etree.SubElement(element, "select")
            for kind in alert.select:
                etree.SubElement(select, f"select_{kind}")
        for recipient, rid in zip(alert.recipients, recipient_ids(alert), strict=True):
            node = etree.SubElement(element, "recipient", id=rid, value=recipient.value)
            if recipient.description is not None:
                node.set("description", recipient.description)
            nvset(node, "meta_attributes", f"{rid}-meta_attributes", recipient.meta)
            nvset(node, "instance_attributes", f"{rid}-instance_attributes", recipient.params)


class Ids:
    """pcs's find_unique_id: a taken id gets -1, -2, ... (ids the topology gives are
    reserved first)."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken

    def __call__(self, given: str | None, base: str) -> str:
        if given:
            return given
        number, candidate = 0, base
        while candidate in self.taken:
            number += 1
            candidate = f"{base}-{number}"
        self.taken.add(candidate)
        return candidate


def constraints(parent: Element, topology: model.Topology) -> None:
    c = topology.constraints
    ids = _ids_in(parent, topology)
    for location in c.locations:
        _location(parent, location, ids)
    for colocation in c.colocations:
        base = f"colocation-{colocation.resource}-{colocation.with_}-{colocation.score}"
        attrs = {
            "id": ids(colocation.id, sanitize_id(base)),
            "rsc": colocation.resource,
            "with-rsc": colocation.with_,
            "score": colocation.score,
        }
        for key, value in (
            ("rsc-role", colocation.role),
            ("with-rsc-role", colocation.with_role),
            ("node-attribute", colocation.node_attribute),
        ):
            if value:
                attrs[key] = value
        etree.SubElement(parent, "rsc_colocation", attrs)
    for order in c.orders:
        base = f"order-{order.first}-{order.then}-{order.kind or 'mandatory'}"
        attrs = {"id": ids(order.id, sanitize_id(base)), "first": order.first, "then": order.then}
        options: tuple[tuple[str, model.Scalar | None], ...] = (
            ("kind", order.kind),
            ("first-action", order.first_action),
            ("then-action", order.then_action),
            ("symmetrical", order.symmetrical),
            ("require-all", order.require_all),
        )
        for key, option in options:
            if option is not None:
                attrs[key] = text_value(option)
        etree.SubElement(parent, "rsc_order", attrs)
    _set_constraints(parent, c, ids)


def _ids_in(parent: Element, topology: model.Topology) -> Ids:
    """Every id already in the document, and every constraint id the topology gives."""
    taken = {str(e.get("id")) for e in parent.getroottree().iter() if e.get("id")}
    c = topology.constraints
    for items in (c.locations, c.colocations, c.orders, c.colocation_sets, c.order_sets, c.tickets):
        taken |= {item.id for item in items if item.id}
    return Ids(taken)


def _location(parent: Element, location: model.Location, ids: Ids) -> None:
    target: dict[str, str] = (
        {"rsc": location.resource}
        if location.resource is not None
        else {"rsc-pattern": location.resource_pattern or ""}
    )
    subject = location.resource or location.resource_pattern or ""
    discovery: dict[str, str] = (
        {"resource-discovery": location.resource_discovery} if location.resource_discovery else {}
    )
    if location.rule is not None:
        rsc_id = ids(location.id, sanitize_id(f"location-{subject}"))
        element = etree.SubElement(parent, "rsc_location", {"id": rsc_id, **target, **discovery})
        extra: dict[str, str] = {"role": location.role} if location.role else {}
        score = (
            {"score-attribute": location.score_attribute}
            if location.score_attribute
            else {"score": location.score}
        )
        rule = rules.parse(location.rule)
        rules.to_element(element, rule, f"{rsc_id}-rule", extra | score)
        return
    attrs = {
        "id": ids(location.id, sanitize_id(f"location-{subject}-{location.node}-{location.score}")),
        **target,
        "node": location.node or "",
        "score": location.score,
        **discovery,
    }
    if location.role:
        attrs["role"] = location.role
    etree.SubElement(parent, "rsc_location", attrs)


def _set_constraints(parent: Element, c: model.Constraints, ids: Ids) -> None:
    for colocation_set in c.colocation_sets:
        element = etree.SubElement(
            parent,
            "rsc_colocation",
            id=ids(colocation_set.id, set_constraint_id("colocation", colocation_set.sets)),
            score=colocation_set.score,
        )
        resource_sets(element, colocation_set.sets)
    for order_set in c.order_sets:
        element = etree.SubElement(
            parent, "rsc_order", id=ids(order_set.id, set_constraint_id("order", order_set.sets))
        )
        for key, value in (("kind", order_set.kind), ("symmetrical", order_set.symmetrical)):
            if value is not None:
                element.set(key, text_value(value))
        resource_sets(element, order_set.sets)
    for ticket in c.tickets:
        if ticket.resource:
            base = f"ticket-{ticket.ticket}-{ticket.resource}" + (
                f"-{ticket.role}" if ticket.role else ""
            )
            attrs = {"id": ids(ticket.id, base), "ticket": ticket.ticket, "rsc": ticket.resource}
            attrs |= {"rsc-role": ticket.role} if ticket.role else {}
        else:
            attrs = {
                "id": ids(ticket.id, set_constraint_id("ticket", ticket.sets)),
                "ticket": ticket.ticket,
            }
        if ticket.loss_policy:
            attrs["loss-policy"] = ticket.loss_policy
        element = etree.SubElement(parent, "rsc_ticket", attrs)
        resource_sets(element, ticket.sets)


def resource_sets(parent: Element, sets: list[model.ResourceSet]) -> None:
    """pcs's set ids: CONSTRAINT_set, CONSTRAINT_set-1, ..."""
    for number, item in enumerate(sets):
        set_id = item.id or f"{parent.get('id')}_set" + (f"-{number}" if number else "")
        element = etree.SubElement(parent, "resource_set", id=set_id)
        for key, value in (
            ("sequential", item.sequential),
            ("require-all", item.require_all),
            ("ordering", item.ordering),
            ("action", item.action),
            ("role", item.role),
            ("kind", item.kind),
            ("score", item.score),
        ):
            if value is not None:
                element.set(key, text_value(value))
        for name in item.resources:
            etree.SubElement(element, "resource_ref", id=name)


def fencing_topology(parent: Element, topology: model.Topology) -> None:
    """Levels with pcs's ids: fl-TARGET-INDEX (pattern or attribute name as TARGET)."""
    ids = Ids({str(e.get("id")) for e in parent.getroottree().iter() if e.get("id")})
    for level in topology.fencing.levels:
        attrs = {"index": str(level.index), "devices": ",".join(level.devices)}
        if level.target:
            attrs |= {"target": level.target}
            part = level.target
        elif level.target_pattern:
            attrs |= {"target-pattern": level.target_pattern}
            part = level.target_pattern
        else:
            name, _, value = (level.target_attribute or "").partition("=")
            attrs |= {"target-attribute": name, "target-value": value}
            part = name
        attrs = {"id": ids(level.id, sanitize_id(f"fl-{part}-{level.index}")), **attrs}
        etree.SubElement(parent, "fencing-level", attrs)


def to_text(cib: Element) -> str:
    return etree.tostring(cib, pretty_print=True, encoding="unicode")
