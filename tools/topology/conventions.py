"""What render, validate, export, import and simulate derive from the model in the same
way: a value's CIB text, a resource with its template (and the publisher with the
correlation rules) applied, pcs-style ids."""

from __future__ import annotations

import dataclasses
import re

from hakit.tools.topology import model

_ID_FIRST_NOT = re.compile("[^a-zA-Z_]")
_ID_REST_NOT = re.compile("[^a-zA-Z0-9_.-]")


def text_value(value: model.Scalar) -> str:
    """A value as the CIB writes it (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def effective(resource: model.Resource, topology: model.Topology) -> model.Resource:
    """The resource with its template applied (the resource's own values win) and, for
    the publisher, the topology's `correlation` section as its parameter."""
    template = topology.templates.get(resource.template or "")
    full = resource if template is None else _templated(resource, template)
    if topology.correlation.rules and full.agent == "ocf:hakit:publisher":
        from hakit.tools.topology import correlation  # it imports values, which imports this

        if correlation.PARAM not in full.params:  # set twice: a problem validate names
            text = correlation.attribute(topology.correlation) or ""
            full = dataclasses.replace(full, params={**full.params, correlation.PARAM: text})
    return full


def _templated(resource: model.Resource, template: model.Template) -> model.Resource:
    return model.Resource(
        name=resource.name,
        agent=resource.agent or template.agent,
        params={**template.params, **resource.params},
        meta={**template.meta, **resource.meta},
        ops=resource.ops or template.ops,
        utilization=resource.utilization,
        clone=resource.clone or template.clone,
        description=resource.description,
        instance_sets=resource.instance_sets,
        meta_sets=resource.meta_sets,
    )


def clone_id(name: str, spec: model.CloneSpec | None = None) -> str:
    """The clone's id: its own, or pcs's NAME-clone."""
    return spec.id if spec is not None and spec.id else f"{name}-clone"


def sanitize_id(candidate: str) -> str:
    """pcs's sanitize_id: characters an XML id cannot hold are dropped."""
    if not candidate:
        return candidate
    first = "" if _ID_FIRST_NOT.match(candidate[0]) else candidate[0]
    return first + _ID_REST_NOT.sub("", candidate[1:])


def clone_meta(spec: model.CloneSpec) -> dict[str, model.Scalar]:
    """The clone's meta attributes, its counts included (not `promotable`)."""
    meta: dict[str, model.Scalar] = dict(spec.meta)
    for key, value in (
        ("clone-max", spec.max),
        ("clone-node-max", spec.node_max),
        ("promoted-max", spec.promoted_max),
    ):
        if value is not None:
            meta[key] = value
    return meta


def set_constraint_id(kind: str, sets: list[model.ResourceSet]) -> str:
    """pcs's create_id: KIND_set_ and the first and last letters of the first three
    resources (web, db, app → colocation_set_wbdbap)."""
    names = [name for item in sets for name in item.resources][:3]
    return f"{kind}_set_" + "".join(name[0] + name[-1] for name in names if name)


def recipient_ids(alert: model.Alert) -> list[str]:
    """pcs's recipient ids: the given one, else the first free of ALERT-recipient,
    ALERT-recipient-1, ... (given ones reserved first)."""
    taken = {r.id for r in alert.recipients if r.id}
    result = []
    for recipient in alert.recipients:
        if recipient.id:
            result.append(recipient.id)
            continue
        base, number = f"{alert.name}-recipient", 0
        candidate = base
        while candidate in taken:
            number += 1
            candidate = f"{base}-{number}"
        taken.add(candidate)
        result.append(candidate)
    return result
