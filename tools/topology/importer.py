"""CIB → topology: an existing cluster's configuration as hakit YAML.

What the model cannot say (rsc-pattern locations, score-attribute rules, clones not
named <resource>-clone, ...) is listed in `skipped` rather than dropped silently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import yaml
from lxml import etree

from hakit.tools.topology import model, rules
from hakit.tools.topology.apply import read_cib

PACEMAKER_PROPERTIES = {
    "dc-version",
    "cluster-infrastructure",
    "have-watchdog",
    "last-lrm-refresh",
    "cluster-name",
}


@dataclass
class Imported:
    topology: model.Topology
    skipped: list[str] = field(default_factory=list)


def _nv(element: etree._Element | None, tag: str) -> dict[str, model.Scalar]:
    if element is None:
        return {}
    found = element.find(tag)
    if found is None:
        return {}
    return {str(p.get("name")): str(p.get("value", "")) for p in found.iterfind("nvpair")}


def _ops(element: etree._Element) -> list[model.Op]:
    ops = []
    for op in element.iterfind("operations/op"):
        level = _nv(op, "instance_attributes").get("OCF_CHECK_LEVEL")
        role = op.get("role")
        ops.append(
            model.Op(
                name=op.get("name", ""),
                interval=op.get("interval", "0s"),
                timeout=op.get("timeout"),
                check_level=int(level) if level is not None else None,
                role=role if role in ("Promoted", "Unpromoted", "Started", "Stopped") else None,  # type: ignore[arg-type]
                on_fail=op.get("on-fail"),
            )
        )
    return ops


def _agent(element: etree._Element) -> str:
    parts = [element.get("class"), element.get("provider"), element.get("type")]
    return ":".join(p for p in parts if p)


def _clone_spec(clone: etree._Element) -> model.CloneSpec:
    meta = _nv(clone, "meta_attributes")
    spec = model.CloneSpec(promotable=str(meta.pop("promotable", "false")) == "true")
    for key, attr in (
        ("clone-max", "max"),
        ("clone-node-max", "node_max"),
        ("promoted-max", "promoted_max"),
    ):
        if key in meta:
            setattr(spec, attr, int(str(meta.pop(key))))
    spec.meta = meta
    return spec


def import_cib(xml: str | bytes) -> Imported:
    """The topology a CIB describes (configuration section only)."""
    root = read_cib(xml if isinstance(xml, str) else xml.decode("utf-8", "replace"), "input")
    config = root.find("configuration")
    assert config is not None  # noqa: S101 — read_cib checked
    skipped: list[str] = []
    props = {
        k: v
        for k, v in _nv(config.find("crm_config"), "cluster_property_set").items()
        if k not in PACEMAKER_PROPERTIES
    }
    name_pair = config.find("crm_config/cluster_property_set/nvpair[@name='cluster-name']")
    cluster_name = name_pair.get("value", "cluster") if name_pair is not None else "cluster"
    topology = model.Topology(cluster=model.Cluster(name=cluster_name, properties=props))
    for node in config.iterfind("nodes/node"):
        topology.nodes.append(
            model.Node(
                name=node.get("uname", ""),
                attributes=_nv(node, "instance_attributes"),
                utilization={k: int(str(v)) for k, v in _nv(node, "utilization").items()},
            )
        )
    for child in config.iterfind("resources/*"):
        _import_resource(topology, child, skipped)
    _import_constraints(topology, config, skipped)
    for level in config.iterfind("fencing-topology/fencing-level"):
        attribute = level.get("target-attribute")
        topology.fencing.levels.append(
            model.FenceLevel(
                index=int(level.get("index", "1")),
                devices=level.get("devices", "").split(","),
                target=level.get("target"),
                target_pattern=level.get("target-pattern"),
                target_attribute=f"{attribute}={level.get('target-value')}" if attribute else None,
            )
        )
    _import_defaults(topology.defaults, config)
    for tag in config.iterfind("tags/tag"):
        topology.tags.append(
            model.Tag(name=tag.get("id", ""), resources=[r.get("id", "") for r in tag])
        )
    _import_acls(topology.acls, config)
    for alert in config.iterfind("alerts/alert"):
        select = alert.find("select")
        topology.alerts.append(
            model.Alert(
                name=alert.get("id", ""),
                path=alert.get("path", ""),
                params=_nv(alert, "instance_attributes"),
                meta=_nv(alert, "meta_attributes"),
                select=[c.tag.removeprefix("select_") for c in select]  # type: ignore[misc]
                if select is not None
                else [],
                recipients=[
                    model.Recipient(
                        value=r.get("value", ""),
                        params=_nv(r, "instance_attributes"),
                        meta=_nv(r, "meta_attributes"),
                    )
                    for r in alert.iterfind("recipient")
                ],
            )
        )
    return Imported(topology, skipped)


def _import_defaults(defaults: model.Defaults, config: etree._Element) -> None:
    """The first plain meta_attributes is the plain set; scored or ruled ones are sets."""
    for tag, plain, sets in (
        ("rsc_defaults", defaults.resources, defaults.resource_sets),
        ("op_defaults", defaults.operations, defaults.operation_sets),
    ):
        for element in config.iterfind(f"{tag}/meta_attributes"):
            values = {
                str(p.get("name")): str(p.get("value", "")) for p in element.iterfind("nvpair")
            }
            rule, score = element.find("rule"), element.get("score")
            if rule is None and score is None and not plain:
                plain.update(values)
                continue
            sets.append(
                model.DefaultSet(
                    name=element.get("id", ""),
                    meta=dict(values),
                    rule=rules.to_text(rules.from_element(rule)) if rule is not None else None,
                    score=int(score) if score is not None and score.lstrip("-").isdigit() else None,
                )
            )


def _import_acls(acls: model.Acls, config: etree._Element) -> None:
    for role in config.iterfind("acls/acl_role"):
        acls.roles.append(
            model.AclRole(
                name=role.get("id", ""),
                description=role.get("description"),
                permissions=[
                    model.AclPermission(
                        kind=p.get("kind", "read"),  # type: ignore[arg-type]
                        xpath=p.get("xpath"),
                        reference=p.get("reference"),
                    )
                    for p in role.iterfind("acl_permission")
                ],
            )
        )
    for tag, targets in (("acl_target", acls.users), ("acl_group", acls.groups)):
        for target in config.iterfind(f"acls/{tag}"):
            targets.append(
                model.AclTarget(
                    name=target.get("id") or target.get("name") or "",
                    roles=[r.get("id", "") for r in target],
                )
            )


def _import_resource(
    topology: model.Topology,
    element: etree._Element,
    skipped: list[str],
    clone: model.CloneSpec | None = None,
) -> None:
    rid = element.get("id", "")
    if element.tag == "primitive" and element.get("class") == "stonith":
        topology.fencing.devices.append(
            model.FenceDevice(
                name=rid,
                agent=element.get("type", ""),
                params=_nv(element, "instance_attributes"),
                meta=_nv(element, "meta_attributes"),
                ops=_ops(element),
            )
        )
    elif element.tag == "primitive":
        topology.resources.append(
            model.Resource(
                name=rid,
                agent=_agent(element),
                params=_nv(element, "instance_attributes"),
                meta=_nv(element, "meta_attributes"),
                ops=_ops(element),
                utilization={k: int(str(v)) for k, v in _nv(element, "utilization").items()},
                clone=clone,
            )
        )
    elif element.tag == "group":
        members = [p.get("id", "") for p in element.iterfind("primitive")]
        for primitive in element.iterfind("primitive"):
            _import_resource(topology, primitive, skipped)
        meta = _nv(element, "meta_attributes")
        topology.groups.append(model.Group(name=rid, members=members, meta=meta, clone=clone))
    elif element.tag == "clone":
        spec = _clone_spec(element)
        inner = element.find("primitive")
        if inner is None:
            inner = element.find("group")
        if inner is not None and element.get("id") == f"{inner.get('id')}-clone":
            _import_resource(topology, inner, skipped, spec)
        else:
            skipped.append(f"clone {rid}: only clones named <resource>-clone are imported")
    elif element.tag == "bundle":
        _import_bundle(topology, element, skipped)
    else:
        skipped.append(f"{element.tag} {rid}: not in the topology model yet")


def _import_bundle(topology: model.Topology, element: etree._Element, skipped: list[str]) -> None:
    container = next((c for c in element if c.tag in ("podman", "docker", "rkt")), None)
    if container is None:
        skipped.append(f"bundle {element.get('id')}: no container")
        return

    def number(key: str) -> int | None:
        value = container.get(key)
        return int(value) if value is not None else None

    network = element.find("network")
    inner = element.find("primitive")
    bundle = model.Bundle(
        name=element.get("id", ""),
        image=container.get("image", ""),
        runtime=container.tag,  # type: ignore[arg-type]
        replicas=number("replicas"),
        replicas_per_host=number("replicas-per-host"),
        promoted_max=number("promoted-max"),
        run_command=container.get("run-command"),
        options=container.get("options"),
        network={str(k): str(v) for k, v in network.attrib.items()} if network is not None else {},
        ports=[
            model.PortMap(
                port=int(p.get("port", "0")) if p.get("port") else None,
                internal_port=int(p.get("internal-port", "0")) if p.get("internal-port") else None,
                range=p.get("range"),
            )
            for p in element.iterfind("network/port-mapping")
        ],
        storage=[
            model.StorageMap(
                target_dir=m.get("target-dir", ""),
                source_dir=m.get("source-dir"),
                source_dir_root=m.get("source-dir-root"),
                options=m.get("options"),
            )
            for m in element.iterfind("storage/storage-mapping")
        ],
        resource=inner.get("id") if inner is not None else None,
        meta=_nv(element, "meta_attributes"),
    )
    if inner is not None:
        _import_resource(topology, inner, skipped)
    topology.bundles.append(bundle)


def _import_constraints(
    topology: model.Topology, config: etree._Element, skipped: list[str]
) -> None:
    c = topology.constraints
    for element in config.iterfind("constraints/*"):
        cid = element.get("id", "")
        if (
            element.tag == "rsc_location"
            and element.get("rsc")
            and element.find("rule") is not None
        ):
            _import_location_rules(c, element, skipped)
        elif element.find("resource_set") is not None:
            _import_set_constraint(c, element, skipped)
        elif element.tag == "rsc_ticket":
            c.tickets.append(
                model.Ticket(
                    ticket=element.get("ticket", ""),
                    resource=element.get("rsc"),
                    role=element.get("rsc-role"),  # type: ignore[arg-type]
                    loss_policy=element.get("loss-policy"),  # type: ignore[arg-type]
                )
            )
        elif element.tag == "rsc_location" and element.get("node"):
            c.locations.append(
                model.Location(
                    resource=element.get("rsc", ""),
                    node=element.get("node", ""),
                    score=element.get("score", "INFINITY"),
                    role=element.get("role"),  # type: ignore[arg-type]
                )
            )
        elif element.tag == "rsc_colocation":
            c.colocations.append(
                model.Colocation(
                    resource=element.get("rsc", ""),
                    with_=element.get("with-rsc", ""),
                    score=element.get("score", "INFINITY"),
                    role=element.get("rsc-role"),  # type: ignore[arg-type]
                    with_role=element.get("with-rsc-role"),  # type: ignore[arg-type]
                )
            )
        elif element.tag == "rsc_order":
            symmetrical = element.get("symmetrical")
            c.orders.append(
                model.Order(
                    first=element.get("first", ""),
                    then=element.get("then", ""),
                    kind=element.get("kind", "Mandatory"),  # type: ignore[arg-type]
                    first_action=element.get("first-action"),  # type: ignore[arg-type]
                    then_action=element.get("then-action"),  # type: ignore[arg-type]
                    symmetrical=None if symmetrical is None else symmetrical == "true",
                )
            )
        else:
            skipped.append(f"{element.tag} {cid}: not in the topology model yet")


def _import_location_rules(
    c: model.Constraints, element: etree._Element, skipped: list[str]
) -> None:
    """One location per rule (a location's rules are alternatives, like separate ones)."""
    for rule in element.iterfind("rule"):
        if rule.get("score-attribute") or rule.get("score") is None:
            skipped.append(f"rsc_location {element.get('id')}: a rule without a plain score")
            continue
        c.locations.append(
            model.Location(
                resource=element.get("rsc", ""),
                rule=rules.to_text(rules.from_element(rule)),
                score=rule.get("score", "INFINITY"),
                role=rule.get("role"),  # type: ignore[arg-type]
            )
        )


def _resource_sets(element: etree._Element) -> list[model.ResourceSet]:
    def flag(item: etree._Element, key: str) -> bool | None:
        value = item.get(key)
        return None if value is None else value == "true"

    return [
        model.ResourceSet(
            resources=[r.get("id", "") for r in item.iterfind("resource_ref")],
            sequential=flag(item, "sequential"),
            require_all=flag(item, "require-all"),
            role=item.get("role"),  # type: ignore[arg-type]
            action=item.get("action"),  # type: ignore[arg-type]
        )
        for item in element.iterfind("resource_set")
    ]


def _import_set_constraint(
    c: model.Constraints, element: etree._Element, skipped: list[str]
) -> None:
    sets = _resource_sets(element)
    if element.tag == "rsc_colocation":
        score = element.get("score", "INFINITY")
        c.colocation_sets.append(model.ColocationSet(sets=sets, score=score))
    elif element.tag == "rsc_order":
        symmetrical = element.get("symmetrical")
        c.order_sets.append(
            model.OrderSet(
                sets=sets,
                kind=element.get("kind", "Mandatory"),  # type: ignore[arg-type]
                symmetrical=None if symmetrical is None else symmetrical == "true",
            )
        )
    elif element.tag == "rsc_ticket":
        policy = element.get("loss-policy")
        c.tickets.append(
            model.Ticket(
                ticket=element.get("ticket", ""),
                sets=sets,
                loss_policy=policy,  # type: ignore[arg-type]
            )
        )
    else:
        skipped.append(f"{element.tag} {element.get('id')}: resource sets here are not supported")


def to_yaml(topology: model.Topology) -> str:
    """YAML in the model's field order, empty and default values left out."""
    return yaml.safe_dump(_plain(topology), sort_keys=False, allow_unicode=True, width=100)


def _plain(value: object) -> object:
    """Plain data for YAML; a field equal to its default is left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        result = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.default is not dataclasses.MISSING and item == f.default:
                continue
            if f.default_factory is not dataclasses.MISSING and item == f.default_factory():
                continue
            result[f.name.rstrip("_")] = _plain(item)
        return result
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
