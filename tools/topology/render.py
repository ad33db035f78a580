"""Topology → CIB XML, deterministic, with ids derived the way pcs derives them.

One small function per CIB object; `render` assembles the document.
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from hakit.tools.topology import model

VALIDATE_WITH = "pacemaker-3.9"
Element = etree._Element


def text_value(value: model.Scalar) -> str:
    """A value as the CIB writes it (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def nvset(parent: Element, tag: str, set_id: str, values: Mapping[str, model.Scalar]) -> None:
    """instance_attributes / meta_attributes / utilization with pcs-style nvpair ids."""
    if not values:
        return
    element = etree.SubElement(parent, tag, id=set_id)
    for name, value in values.items():
        etree.SubElement(
            element, "nvpair", id=f"{set_id}-{name}", name=name, value=text_value(value)
        )


def operations(parent: Element, rsc: str, ops: list[model.Op]) -> None:
    if not ops:
        return
    element = etree.SubElement(parent, "operations")
    for op in ops:
        op_id = f"{rsc}-{op.name}-interval-{op.interval}"
        attrs = {"id": op_id, "name": op.name, "interval": op.interval}
        for key, value in (("timeout", op.timeout), ("role", op.role), ("on-fail", op.on_fail)):
            if value is not None:
                attrs[key] = value
        op_element = etree.SubElement(element, "op", attrs)
        if op.check_level is not None:
            nvset(op_element, "instance_attributes", f"{op_id}-instance_attributes",
                  {"OCF_CHECK_LEVEL": op.check_level})  # fmt: skip


def agent_attributes(agent: str) -> dict[str, str]:
    """ocf:heartbeat:IPaddr2 → class, provider, type; stonith:fence_x → class, type."""
    parts = agent.split(":")
    if len(parts) == 3:
        return {"class": parts[0], "provider": parts[1], "type": parts[2]}
    if len(parts) == 2:
        return {"class": parts[0], "type": parts[1]}
    return {"class": "ocf", "provider": "heartbeat", "type": agent}


def effective(resource: model.Resource, topology: model.Topology) -> model.Resource:
    """The resource with its template applied (the resource's own values win)."""
    template = topology.templates.get(resource.template or "")
    if template is None:
        return resource
    return model.Resource(
        name=resource.name,
        agent=resource.agent or template.agent,
        params={**template.params, **resource.params},
        meta={**template.meta, **resource.meta},
        ops=resource.ops or template.ops,
        utilization=resource.utilization,
        clone=resource.clone or template.clone,
    )


def primitive(parent: Element, resource: model.Resource) -> Element:
    attrs = {"id": resource.name, **agent_attributes(resource.agent or "")}
    element = etree.SubElement(parent, "primitive", attrs)
    nvset(element, "instance_attributes", f"{resource.name}-instance_attributes", resource.params)
    nvset(element, "meta_attributes", f"{resource.name}-meta_attributes", resource.meta)
    nvset(element, "utilization", f"{resource.name}-utilization", resource.utilization)
    operations(element, resource.name, resource.ops)
    return element


def clone_id(name: str) -> str:
    return f"{name}-clone"


def clone_meta(spec: model.CloneSpec) -> dict[str, model.Scalar]:
    """The clone's meta attributes, its counts included (not `promotable`)."""
    meta: dict[str, model.Scalar] = dict(spec.meta)
    for key, value in (("clone-max", spec.max), ("clone-node-max", spec.node_max),
                       ("promoted-max", spec.promoted_max)):  # fmt: skip
        if value is not None:
            meta[key] = value
    return meta


def wrap_clone(parent: Element, name: str, spec: model.CloneSpec) -> Element:
    element = etree.SubElement(parent, "clone", id=clone_id(name))
    meta: dict[str, model.Scalar] = dict(spec.meta)
    if spec.promotable:
        meta["promotable"] = True
    meta |= clone_meta(spec)
    nvset(element, "meta_attributes", f"{clone_id(name)}-meta_attributes", meta)
    return element


def render(topology: model.Topology) -> Element:
    """The complete CIB for `topology` (status section empty)."""
    cib = etree.Element("cib", {"validate-with": VALIDATE_WITH, "admin_epoch": "0",
                                "epoch": "1", "num_updates": "0"})  # fmt: skip
    configuration = etree.SubElement(cib, "configuration")
    crm_config = etree.SubElement(configuration, "crm_config")
    properties = {"cluster-name": topology.cluster.name, **topology.cluster.properties}
    nvset(crm_config, "cluster_property_set", "cib-bootstrap-options", properties)
    nodes = etree.SubElement(configuration, "nodes")
    for number, node in enumerate(topology.nodes, 1):
        element = etree.SubElement(nodes, "node", id=str(number), uname=node.name)
        nvset(element, "instance_attributes", f"nodes-{number}", node.attributes)
        nvset(element, "utilization", f"nodes-{number}-utilization", node.utilization)
    resources = etree.SubElement(configuration, "resources")
    for device in topology.fencing.devices:
        primitive(resources, model.Resource(name=device.name, agent=f"stonith:{device.agent}",
                                            params=device.params, meta=device.meta,
                                            ops=device.ops))  # fmt: skip
    grouped = {member for group in topology.groups for member in group.members}
    by_name = {r.name: effective(r, topology) for r in topology.resources}
    for resource in by_name.values():
        if resource.name in grouped:
            continue
        parent = wrap_clone(resources, resource.name, resource.clone) if resource.clone \
            else resources  # fmt: skip
        primitive(parent, resource)
    for group in topology.groups:
        parent = wrap_clone(resources, group.name, group.clone) if group.clone else resources
        element = etree.SubElement(parent, "group", id=group.name)
        nvset(element, "meta_attributes", f"{group.name}-meta_attributes", group.meta)
        for member in group.members:
            if member in by_name:
                primitive(element, by_name[member])
    constraints(etree.SubElement(configuration, "constraints"), topology)
    if topology.fencing.levels:
        fencing_topology(etree.SubElement(configuration, "fencing-topology"), topology)
    for tag, values in (("rsc_defaults", topology.defaults.resources),
                        ("op_defaults", topology.defaults.operations)):  # fmt: skip
        if values:
            nvset(etree.SubElement(configuration, tag), "meta_attributes",
                  f"{tag}-meta_attributes", values)  # fmt: skip
    if topology.alerts:
        alerts(etree.SubElement(configuration, "alerts"), topology.alerts)
    etree.SubElement(cib, "status")
    return cib


def alerts(parent: Element, items: list[model.Alert]) -> None:
    """Alerts with pcs's ids: the alert's name, recipients `<alert>-recipient[-N]`."""
    for alert in items:
        element = etree.SubElement(parent, "alert", id=alert.name, path=alert.path)
        nvset(element, "meta_attributes", f"{alert.name}-meta_attributes", alert.meta)
        nvset(element, "instance_attributes", f"{alert.name}-instance_attributes", alert.params)
        if alert.select:
            select = etree.SubElement(element, "select")
            for kind in alert.select:
                etree.SubElement(select, f"select_{kind}")
        for number, recipient in enumerate(alert.recipients, 1):
            rid = f"{alert.name}-recipient" + (f"-{number}" if number > 1 else "")
            node = etree.SubElement(element, "recipient", id=rid, value=recipient.value)
            nvset(node, "meta_attributes", f"{rid}-meta_attributes", recipient.meta)
            nvset(node, "instance_attributes", f"{rid}-instance_attributes", recipient.params)


def constraints(parent: Element, topology: model.Topology) -> None:
    c = topology.constraints
    for location in c.locations:
        attrs = {
            "id": f"location-{location.resource}-{location.node}-{location.score}",
            "rsc": location.resource,
            "node": location.node,
            "score": location.score,
        }
        if location.role:
            attrs["role"] = location.role
        etree.SubElement(parent, "rsc_location", attrs)
    for colocation in c.colocations:
        attrs = {"id": f"colocation-{colocation.resource}-{colocation.with_}-{colocation.score}",
                 "rsc": colocation.resource, "with-rsc": colocation.with_,
                 "score": colocation.score}  # fmt: skip
        for key, value in (("rsc-role", colocation.role), ("with-rsc-role", colocation.with_role)):
            if value:
                attrs[key] = value
        etree.SubElement(parent, "rsc_colocation", attrs)
    for order in c.orders:
        attrs = {
            "id": f"order-{order.first}-{order.then}-{order.kind.lower()}",
            "first": order.first,
            "then": order.then,
            "kind": order.kind,
        }
        if order.first_action:
            attrs["first-action"] = order.first_action
        if order.then_action:
            attrs["then-action"] = order.then_action
        if order.symmetrical is not None:
            attrs["symmetrical"] = "true" if order.symmetrical else "false"
        etree.SubElement(parent, "rsc_order", attrs)


def fencing_topology(parent: Element, topology: model.Topology) -> None:
    for level in topology.fencing.levels:
        attrs = {"index": str(level.index), "devices": ",".join(level.devices)}
        if level.target:
            attrs |= {"id": f"fl-{level.target}-{level.index}", "target": level.target}
        elif level.target_pattern:
            attrs |= {"id": f"fl-pattern-{level.index}", "target-pattern": level.target_pattern}
        elif level.target_attribute:
            name, _, value = level.target_attribute.partition("=")
            attrs |= {"id": f"fl-{name}-{level.index}", "target-attribute": name,
                      "target-value": value}  # fmt: skip
        etree.SubElement(parent, "fencing-level", attrs)


def to_text(cib: Element) -> str:
    return etree.tostring(cib, pretty_print=True, encoding="unicode")
