"""Topology → equivalent pcs or crmsh command scripts, for operators who keep those."""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from hakit.tools.topology import model
from hakit.tools.topology.render import clone_id, clone_meta, effective, text_value


def _pairs(values: Mapping[str, model.Scalar]) -> list[str]:
    return [f"{k}={text_value(v)}" for k, v in values.items()]


def _op_words(op: model.Op) -> list[str]:
    words = [op.name, f"interval={op.interval}"]
    words += [f"timeout={op.timeout}"] if op.timeout else []
    words += [f"role={op.role}"] if op.role else []
    words += [f"on-fail={op.on_fail}"] if op.on_fail else []
    words += [f"OCF_CHECK_LEVEL={op.check_level}"] if op.check_level is not None else []
    return words


def pcs_script(topology: model.Topology, cib_file: str = "cib.xml") -> str:
    """`pcs -f CIB ...` commands that build the same configuration."""
    pcs = ["pcs", "-f", cib_file]
    lines: list[list[str]] = []
    if topology.cluster.properties:
        lines.append([*pcs, "property", "set", *_pairs(topology.cluster.properties)])
    for device in topology.fencing.devices:
        words = [*pcs, "stonith", "create", device.name, device.agent, *_pairs(device.params)]
        for op in device.ops:
            words += ["op", *_op_words(op)]
        words += ["meta", *_pairs(device.meta)] if device.meta else []
        lines.append(words)
    lines += _pcs_resources(topology, pcs)
    lines += _pcs_constraints(topology, pcs)
    if topology.defaults.resources:
        lines.append([*pcs, "resource", "defaults", "update",
                      *_pairs(topology.defaults.resources)])  # fmt: skip
    if topology.defaults.operations:
        lines.append([*pcs, "resource", "op", "defaults", "update",
                      *_pairs(topology.defaults.operations)])  # fmt: skip
    for alert in topology.alerts:
        words = [*pcs, "alert", "create", f"id={alert.name}", f"path={alert.path}"]
        words += ["options", *_pairs(alert.params)] if alert.params else []
        words += ["meta", *_pairs(alert.meta)] if alert.meta else []
        lines.append(words)
        for number, recipient in enumerate(alert.recipients, 1):
            rid = f"{alert.name}-recipient" + (f"-{number}" if number > 1 else "")
            words = [*pcs, "alert", "recipient", "add", alert.name, f"value={recipient.value}",
                     f"id={rid}"]  # fmt: skip
            words += ["options", *_pairs(recipient.params)] if recipient.params else []
            words += ["meta", *_pairs(recipient.meta)] if recipient.meta else []
            lines.append(words)
    header = (f"# cluster-name {topology.cluster.name} is set by "
              f"`pcs cluster setup {topology.cluster.name} ...`, not as a property\n")  # fmt: skip
    if any(alert.select for alert in topology.alerts):
        header += "# pcs 0.11 cannot set an alert's select; add it with cibadmin\n"
    return header + "".join(shlex.join(words) + "\n" for words in lines)


def _pcs_resources(topology: model.Topology, pcs: list[str]) -> list[list[str]]:
    lines: list[list[str]] = []
    grouped = {m for g in topology.groups for m in g.members}
    for resource in topology.resources:
        full = effective(resource, topology)
        words = [*pcs, "resource", "create", "--no-default-ops", full.name, full.agent or "",
                 *_pairs(full.params)]  # fmt: skip
        for op in full.ops:
            words += ["op", *_op_words(op)]
        words += ["meta", *_pairs(full.meta)] if full.meta else []
        if full.clone and full.name not in grouped:
            # pcs 0.11: clone options follow the keyword directly ("meta" would be the primitive's)
            words += ["promotable" if full.clone.promotable else "clone"]
            words += _pairs(clone_meta(full.clone))
        lines.append(words)
        if full.utilization:
            lines.append([*pcs, "resource", "utilization", full.name, *_pairs(full.utilization)])
    for group in topology.groups:
        lines.append([*pcs, "resource", "group", "add", group.name, *group.members])
        if group.meta:
            lines.append([*pcs, "resource", "meta", group.name, *_pairs(group.meta)])
        if group.clone:
            kind = "promotable" if group.clone.promotable else "clone"
            lines.append([*pcs, "resource", kind, group.name, *_pairs(clone_meta(group.clone))])
    return lines


def _pcs_constraints(topology: model.Topology, pcs: list[str]) -> list[list[str]]:
    lines: list[list[str]] = []
    c = topology.constraints
    for loc in c.locations:
        lines.append([*pcs, "constraint", "location", loc.resource, "prefers",
                      f"{loc.node}={loc.score}"])  # fmt: skip
    for col in c.colocations:
        lines.append([*pcs, "constraint", "colocation", "add", *([col.role] if col.role else []),
                      col.resource, "with", *([col.with_role] if col.with_role else []),
                      col.with_, col.score])  # fmt: skip
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
        target = level.target or (f"regexp%{level.target_pattern}" if level.target_pattern
                                  else f"attrib%{level.target_attribute}")  # fmt: skip
        lines.append([*pcs, "stonith", "level", "add", str(level.index), target, *level.devices])
    return lines


def crm_script(topology: model.Topology) -> str:
    """A `crm configure load update -` script for the same configuration."""
    out: list[str] = []

    def nv(values: dict[str, model.Scalar]) -> str:
        return " ".join(f"{k}={shlex.quote(text_value(v))}" for k, v in values.items())

    props = {"cluster-name": topology.cluster.name, **topology.cluster.properties}
    out.append(f"property cib-bootstrap-options: {nv(props)}")
    for device in topology.fencing.devices:
        out.append(_crm_primitive(device.name, f"stonith:{device.agent}", device.params,
                                  device.ops, device.meta))  # fmt: skip
    for resource in topology.resources:
        full = effective(resource, topology)
        out.append(_crm_primitive(full.name, full.agent or "", full.params, full.ops, full.meta))
        grouped = {m for g in topology.groups for m in g.members}
        if full.clone and full.name not in grouped:
            meta = clone_meta(full.clone) | ({"promotable": True} if full.clone.promotable
                                              else {})  # fmt: skip
            out.append(f"clone {clone_id(full.name)} {full.name}" +
                       (f" meta {nv(meta)}" if meta else ""))  # fmt: skip
    for group in topology.groups:
        out.append(f"group {group.name} {' '.join(group.members)}" +
                   (f" meta {nv(group.meta)}" if group.meta else ""))  # fmt: skip
        if group.clone:
            out.append(f"clone {clone_id(group.name)} {group.name}")
    c = topology.constraints
    for loc in c.locations:
        out.append(f"location location-{loc.resource}-{loc.node}-{loc.score} {loc.resource} "
                   f"{loc.score}: {loc.node}")  # fmt: skip
    for col in c.colocations:
        rsc = f"{col.resource}:{col.role}" if col.role else col.resource
        with_ = f"{col.with_}:{col.with_role}" if col.with_role else col.with_
        out.append(f"colocation colocation-{col.resource}-{col.with_}-{col.score} "
                   f"{col.score}: {rsc} {with_}")  # fmt: skip
    for order in c.orders:
        first = f"{order.first}:{order.first_action}" if order.first_action else order.first
        then = f"{order.then}:{order.then_action}" if order.then_action else order.then
        sym = (
            f" symmetrical={text_value(order.symmetrical)}" if order.symmetrical is not None else ""
        )
        out.append(f"order order-{order.first}-{order.then}-{order.kind.lower()} {order.kind}: "
                   f"{first} {then}{sym}")  # fmt: skip
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


def _crm_primitive(name: str, agent: str, params: dict[str, model.Scalar], ops: list[model.Op],
                   meta: dict[str, model.Scalar]) -> str:  # fmt: skip
    text = f"primitive {name} {agent}"
    if params:
        text += " params " + " ".join(
            f"{k}={shlex.quote(text_value(v))}" for k, v in params.items()
        )
    for op in ops:
        text += " op " + " ".join(_op_words(op))
    if meta:
        text += " meta " + " ".join(f"{k}={shlex.quote(text_value(v))}" for k, v in meta.items())
    return text
