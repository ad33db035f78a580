"""What render, validate, export, import and simulate derive from the model in the same
way: a value's CIB text, a resource with its template applied, pcs-style ids."""

from __future__ import annotations

from hakit.tools.topology import model


def text_value(value: model.Scalar) -> str:
    """A value as the CIB writes it (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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


def clone_id(name: str) -> str:
    return f"{name}-clone"


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
    """pcs's style: colocation_set_A_B_set_C."""
    return f"{kind}_set_" + "_set_".join("_".join(s.resources) for s in sets)
