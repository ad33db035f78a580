"""Values Pacemaker reads as durations, integers, scores, booleans or choices.

Cluster properties and fencing `pcmk_*` parameters are typed from the daemons' own
metadata; operation and meta attributes from Pacemaker Explained. Pacemaker itself
takes a bad value silently (a default in its place), so these are problems here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from lxml import etree

from hakit.ocf import cluster
from hakit.tools.topology import model
from hakit.tools.topology.conventions import text_value
from hakit.tools.topology.load import Loaded, Path_
from hakit.tools.topology.problems import did_you_mean

_DURATION = re.compile(r"\s*[0-9]+(\.[0-9]+)?\s*(ms|msec|us|usec|s|sec|m|min|h|hr)?\s*", re.I)
_ISO_DURATION = re.compile(
    r"P(?=.)([0-9]+Y)?([0-9]+M)?([0-9]+W)?([0-9]+D)?(T(?=.)([0-9]+H)?([0-9]+M)?([0-9]+S)?)?"
)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_BOOLEAN = {"true", "false", "yes", "no", "y", "n", "on", "off", "1", "0"}
_SCORE_WORDS = {"INFINITY", "+INFINITY", "-INFINITY"}


@dataclass(frozen=True)
class Kind:
    """What a value must look like: time, integer, score, boolean, percentage, select, string."""

    name: str
    options: tuple[str, ...] = ()


def _select(*options: str) -> Kind:
    return Kind("select", options)


TIME, INTEGER, SCORE, BOOLEAN = Kind("time"), Kind("integer"), Kind("score"), Kind("boolean")

#: Meta attributes of resources, groups, clones and bundles (and rsc_defaults).
RESOURCE_META: dict[str, Kind] = {
    "priority": INTEGER,
    "critical": BOOLEAN,
    "target-role": _select("Stopped", "Started", "Promoted", "Unpromoted", "Master", "Slave"),
    "is-managed": BOOLEAN,
    "maintenance": BOOLEAN,
    "resource-stickiness": SCORE,
    "requires": _select("nothing", "quorum", "fencing", "unfencing"),
    "migration-threshold": SCORE,
    "failure-timeout": TIME,
    "multiple-active": _select("block", "stop_only", "stop_start", "stop_unexpected"),
    "allow-migrate": BOOLEAN,
    "allow-unhealthy-nodes": BOOLEAN,
    "globally-unique": BOOLEAN,
    "interleave": BOOLEAN,
    "notify": BOOLEAN,
    "ordered": BOOLEAN,
    "promotable": BOOLEAN,
    "clone-max": INTEGER,
    "clone-node-max": INTEGER,
    "clone-min": INTEGER,
    "promoted-max": INTEGER,
    "promoted-node-max": INTEGER,
}

#: Attributes of operations (and op_defaults).
OPERATION: dict[str, Kind] = {
    "interval": TIME,
    "timeout": TIME,
    "start-delay": TIME,
    "enabled": BOOLEAN,
    "record-pending": BOOLEAN,
    "on-fail": _select(
        "ignore", "block", "stop", "restart", "standby", "fence", "demote", "restart-container"
    ),
}


def problem(kind: Kind, text: str) -> str | None:
    """Why `text` is not a valid value of `kind`, or None when it is."""
    if kind.name == "time" and not (_DURATION.fullmatch(text) or _ISO_DURATION.fullmatch(text)):
        return f"{text!r} is not a duration (e.g. 30s, 500ms, 5min, 1h)"
    if kind.name == "integer" and not _INTEGER.fullmatch(text.strip()):
        return f"{text!r} is not an integer"
    if kind.name == "score" and not (_INTEGER.fullmatch(text) or text in _SCORE_WORDS):
        return f"{text!r} is not a score (an integer, INFINITY or -INFINITY)"
    if kind.name == "boolean" and text.lower() not in _BOOLEAN:
        return f"{text!r} is not a boolean (true or false)"
    if kind.name == "percentage" and not re.fullmatch(r"[0-9]+%?", text):
        return f"{text!r} is not a percentage (e.g. 80%)"
    if kind.name == "select" and kind.options and text not in kind.options:
        return f"{text!r} is not one of {', '.join(kind.options)}"
    return None


def _daemon_options(*daemons: str) -> dict[str, Kind]:
    options: dict[str, Kind] = {}
    for daemon in daemons:
        metadata = cluster.daemon_metadata(daemon)
        if metadata is None:
            continue
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        try:
            root = etree.fromstring(metadata.encode(), parser)  # noqa: S320 — Pacemaker's own
        except etree.XMLSyntaxError:
            continue
        for param in root.iterfind("parameters/parameter"):
            content = param.find("content")
            kind = content.get("type", "string") if content is not None else "string"
            choices = tuple(o.get("value", "") for o in param.iterfind("content/option"))
            options[param.get("name", "")] = Kind(kind, choices)
    return options


@cache
def cluster_properties() -> dict[str, Kind]:
    """crm_config options by name, as the installed Pacemaker's daemons declare them."""
    return _daemon_options("schedulerd", "controld", "based")


@cache
def fencing_parameters() -> dict[str, Kind]:
    """The `pcmk_*` parameters every fencing device takes."""
    return _daemon_options("fenced")


def check(loaded: Loaded, topology: model.Topology) -> None:
    """Every typed value in the topology: properties, operations, meta attributes."""
    known = cluster_properties()
    for name, value in topology.cluster.properties.items():
        path: Path_ = ("cluster", "properties", name)
        if name in known:
            _check(loaded, known[name], value, path)
        elif known and (hint := did_you_mean(name, list(known))):
            loaded.problem(path, f"Pacemaker has no cluster property {name!r}", hint)
    for i, resource in enumerate(topology.resources):
        _check_object(loaded, resource.meta, resource.ops, resource.clone, ("resources", i))
    for name, template in topology.templates.items():
        _check_object(loaded, template.meta, template.ops, template.clone, ("templates", name))
    for i, group in enumerate(topology.groups):
        _check_object(loaded, group.meta, [], group.clone, ("groups", i))
    for i, bundle in enumerate(topology.bundles):
        _check_map(loaded, RESOURCE_META, bundle.meta, ("bundles", i, "meta"))
    for i, device in enumerate(topology.fencing.devices):
        where: Path_ = ("fencing", "devices", i)
        _check_object(loaded, device.meta, device.ops, None, where)
        pcmk = {k: v for k, v in device.params.items() if k.startswith("pcmk_")}
        _check_map(loaded, fencing_parameters(), pcmk, (*where, "params"))
    _check_map(loaded, RESOURCE_META, topology.defaults.resources, ("defaults", "resources"))
    _check_map(loaded, OPERATION, topology.defaults.operations, ("defaults", "operations"))
    sets_by_key: tuple[tuple[str, list[model.DefaultSet], dict[str, Kind]], ...] = (
        ("resource_sets", topology.defaults.resource_sets, RESOURCE_META),
        ("operation_sets", topology.defaults.operation_sets, OPERATION),
    )
    for key, sets, kinds in sets_by_key:
        for i, default_set in enumerate(sets):
            _check_map(loaded, kinds, default_set.meta, ("defaults", key, i, "meta"))


def _check_object(
    loaded: Loaded,
    meta: dict[str, model.Scalar],
    ops: list[model.Op],
    clone: model.CloneSpec | None,
    path: Path_,
) -> None:
    _check_map(loaded, RESOURCE_META, meta, (*path, "meta"))
    if clone is not None:
        _check_map(loaded, RESOURCE_META, clone.meta, (*path, "clone", "meta"))
    for i, op in enumerate(ops):
        for key, value in (("interval", op.interval), ("timeout", op.timeout)):
            if value is not None:
                _check(loaded, TIME, value, (*path, "ops", i, key))
        if op.on_fail is not None:
            _check(loaded, OPERATION["on-fail"], op.on_fail, (*path, "ops", i, "on_fail"))


def _check_map(
    loaded: Loaded, kinds: dict[str, Kind], values: dict[str, model.Scalar], path: Path_
) -> None:
    for name, value in values.items():
        if name in kinds:
            _check(loaded, kinds[name], value, (*path, name))


def _check(loaded: Loaded, kind: Kind, value: model.Scalar, path: Path_) -> None:
    if (why := problem(kind, text_value(value))) is not None:
        loaded.problem(path, why)
