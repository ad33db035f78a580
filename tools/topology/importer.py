"""CIB → topology: an existing cluster's configuration as hakit YAML.

Lossless or said: the imported topology is rendered back and compared object by object
with the CIB (`roundtrip`); whatever it cannot say is listed in `skipped`. Ids that
pcs would generate anyway are left out of the YAML; others are kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import yaml
from lxml import etree

from hakit.tools.topology import correlation, model, remotes, roundtrip, rules
from hakit.tools.topology.apply import read_cib
from hakit.tools.topology.import_constraints import (
    drop_generated_ids,
    flag,
    leave_out,
    read_constraints,
)
from hakit.tools.topology.pacemaker_options import MAINTAINED_PROPERTIES
from hakit.tools.topology.render import render


@dataclass
class Imported:
    """The topology, and every object of the CIB it does not say exactly."""

    topology: model.Topology
    skipped: list[str] = field(default_factory=list)

    @property
    def lossless(self) -> bool:
        return not self.skipped


def _nv(element: etree._Element | None, tag: str) -> dict[str, model.Scalar]:
    if element is None:
        return {}
    found = element.find(tag)
    if found is None:
        return {}
    return {str(p.get("name")): str(p.get("value", "")) for p in found.iterfind("nvpair")}


def _sets(
    element: etree._Element | None, tag: str
) -> tuple[dict[str, model.Scalar], list[model.NvSet]]:
    """The plain set (the first, if it has no rule or score) and the further ones."""
    plain: dict[str, model.Scalar] = {}
    extra: list[model.NvSet] = []
    for number, found in enumerate(() if element is None else element.iterfind(tag)):
        values: dict[str, model.Scalar] = {
            str(p.get("name")): str(p.get("value", "")) for p in found.iterfind("nvpair")
        }
        rule, score = found.find("rule"), found.get("score")
        if number == 0 and rule is None and score is None:
            plain = values
            continue
        try:
            text = rules.to_text(rules.from_element(rule)) if rule is not None else None
        except ValueError:
            text = None  # the rule is then missing, and roundtrip names the object
        extra.append(model.NvSet(id=found.get("id", ""), values=values, rule=text, score=score))
    return plain, extra


def _ops(element: etree._Element) -> list[model.Op]:
    ops = []
    for op in element.iterfind("operations/op"):
        level = _nv(op, "instance_attributes").get("OCF_CHECK_LEVEL")
        ops.append(
            model.Op(
                name=op.get("name", ""),
                interval=op.get("interval", "0s"),
                timeout=op.get("timeout"),
                check_level=int(str(level)) if str(level or "").isdigit() else None,
                role=op.get("role"),  # type: ignore[arg-type]
                on_fail=op.get("on-fail"),
                start_delay=op.get("start-delay"),
                enabled=flag(op, "enabled"),
                record_pending=flag(op, "record-pending"),
                interval_origin=op.get("interval-origin"),
                description=op.get("description"),
                meta=_nv(op, "meta_attributes"),
            )
        )
    return ops


def _agent(element: etree._Element) -> str:
    parts = [element.get("class"), element.get("provider"), element.get("type")]
    return ":".join(p for p in parts if p)


def _clone_spec(clone: etree._Element, inner_id: str) -> model.CloneSpec:
    meta = _nv(clone, "meta_attributes")
    spec = model.CloneSpec(promotable=str(meta.pop("promotable", "false")) == "true")
    spec.description = clone.get("description")
    if clone.get("id") != f"{inner_id}-clone":
        spec.id = clone.get("id")
    for key, attr in (
        ("clone-max", "max"),
        ("clone-node-max", "node_max"),
        ("promoted-max", "promoted_max"),
    ):
        if key in meta and str(meta[key]).lstrip("-").isdigit():
            setattr(spec, attr, int(str(meta.pop(key))))
    spec.meta = meta
    return spec


def import_cib(xml: str | bytes) -> Imported:
    """The topology a CIB describes (configuration section only), checked against it."""
    return import_tree(
        read_cib(xml if isinstance(xml, str) else xml.decode("utf-8", "replace"), "input")
    )


def import_tree(root: etree._Element) -> Imported:
    """`import_cib` of a CIB already parsed (`read_cib`); `root` is left as it is."""
    imported = _read(root)
    said = {_key(line) for line in imported.skipped}
    first = [ln for ln in roundtrip.losses(root, render(imported.topology)) if _key(ln) not in said]
    left_out = leave_out(imported.topology, {_key(line) for line in first})
    drop_generated_ids(imported.topology, root)
    said |= left_out
    imported.skipped += [line for line in first if _key(line) in left_out]
    imported.skipped += [
        line for line in roundtrip.losses(root, render(imported.topology)) if _key(line) not in said
    ]
    return imported


def _key(line: str) -> str:
    return line.split(":", 1)[0]


def _read(root: etree._Element) -> Imported:
    config = root.find("configuration")
    assert config is not None  # noqa: S101 — read_cib checked
    skipped: list[str] = []
    plain, property_sets = _sets(config.find("crm_config"), "cluster_property_set")
    props = {k: v for k, v in plain.items() if k not in MAINTAINED_PROPERTIES}
    name_pair = config.find("crm_config/cluster_property_set/nvpair[@name='cluster-name']")
    cluster_name = name_pair.get("value", "cluster") if name_pair is not None else "cluster"
    topology = model.Topology(
        cluster=model.Cluster(name=cluster_name, properties=props, property_sets=property_sets)
    )
    for node in config.iterfind("nodes/node"):
        if node.get("type") == "remote" and not len(node):
            continue  # says nothing (Pacemaker and render write one for a remote)
        topology.nodes.append(
            model.Node(
                name=node.get("uname", ""),
                attributes=_nv(node, "instance_attributes"),
                utilization=_numbers(_nv(node, "utilization")),
            )
        )
    for child in config.iterfind("resources/*"):
        _import_resource(topology, child, skipped)
    read_constraints(topology, config, skipped)
    for level in config.iterfind("fencing-topology/fencing-level"):
        attribute = level.get("target-attribute")
        topology.fencing.levels.append(
            model.FenceLevel(
                id=level.get("id"),
                index=int(level.get("index", "1")),
                devices=level.get("devices", "").split(","),
                target=level.get("target"),
                target_pattern=level.get("target-pattern"),
                target_attribute=f"{attribute}={level.get('target-value')}" if attribute else None,
            )
        )
    _import_defaults(topology.defaults, config, skipped)
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
                description=alert.get("description"),
                params=_nv(alert, "instance_attributes"),
                meta=_nv(alert, "meta_attributes"),
                select=[c.tag.removeprefix("select_") for c in select]  # type: ignore[misc]
                if select is not None
                else [],
                recipients=[
                    model.Recipient(
                        id=r.get("id"),
                        description=r.get("description"),
                        value=r.get("value", ""),
                        params=_nv(r, "instance_attributes"),
                        meta=_nv(r, "meta_attributes"),
                    )
                    for r in alert.iterfind("recipient")
                ],
            )
        )
    correlation.recover(topology)
    remotes.recover(topology, root)
    return Imported(topology, skipped)


def _import_defaults(defaults: model.Defaults, config: etree._Element, skipped: list[str]) -> None:
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
            plain_id = element.get("id") == f"{tag}-meta_attributes"
            if rule is None and score is None and plain_id and not plain:
                plain.update(values)
                continue
            try:
                text = rules.to_text(rules.from_element(rule)) if rule is not None else None
            except ValueError as error:
                skipped.append(f"meta_attributes {element.get('id')}: its rule ({error})")
                continue
            sets.append(
                model.DefaultSet(
                    name=element.get("id", ""), meta=dict(values), rule=text, score=score
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
                description=element.get("description"),
                params=_nv(element, "instance_attributes"),
                meta=_nv(element, "meta_attributes"),
                ops=_ops(element),
            )
        )
    elif element.tag == "primitive":
        params, instance_sets = _sets(element, "instance_attributes")
        meta, meta_sets = _sets(element, "meta_attributes")
        topology.resources.append(
            model.Resource(
                name=rid,
                agent=_agent(element),
                params=params,
                meta=meta,
                instance_sets=instance_sets,
                meta_sets=meta_sets,
                ops=_ops(element),
                utilization=_numbers(_nv(element, "utilization")),
                clone=clone,
                description=element.get("description"),
            )
        )
    elif element.tag == "group":
        members = [p.get("id", "") for p in element.iterfind("primitive")]
        for primitive in element.iterfind("primitive"):
            _import_resource(topology, primitive, skipped)
        meta = _nv(element, "meta_attributes")
        topology.groups.append(
            model.Group(
                name=rid,
                members=members,
                meta=meta,
                clone=clone,
                description=element.get("description"),
            )
        )
    elif element.tag == "clone":
        inner = element.find("primitive")
        if inner is None:
            inner = element.find("group")
        if inner is not None:
            _import_resource(topology, inner, skipped, _clone_spec(element, inner.get("id", "")))
        else:
            skipped.append(f"clone {rid}: nothing inside")
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


def _numbers(values: dict[str, model.Scalar]) -> dict[str, int]:
    """Utilization as integers (a value that is not one stays for `roundtrip` to name)."""
    return {k: int(str(v)) for k, v in values.items() if str(v).lstrip("-").isdigit()}


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
