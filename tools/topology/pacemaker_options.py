"""The names Pacemaker reads and the values it takes: cluster properties and fencing
`pcmk_*` parameters from its daemons' own metadata (`pacemaker-schedulerd metadata`, ...),
meta and operation attributes from Pacemaker Explained (Pacemaker 2.1 has no metadata
for those: `crm_resource --list-options` came with 2.1.8)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from lxml import etree

from hakit.ocf import cluster


@dataclass(frozen=True)
class Kind:
    """What a value must look like: time, integer, count (an integer >= 0), score,
    boolean, percentage, select (one of `options`), choice (one of them, in any case),
    string."""

    name: str
    options: tuple[str, ...] = ()


def select(*options: str) -> Kind:
    return Kind("select", options)


TIME, INTEGER, COUNT, SCORE = Kind("time"), Kind("integer"), Kind("count"), Kind("score")
BOOLEAN, STRING = Kind("boolean"), Kind("string")
#: Pacemaker reads roles case-insensitively; Master and Slave are the old names.
ROLE = Kind("choice", ("Stopped", "Started", "Promoted", "Unpromoted", "Master", "Slave"))

#: Meta attributes of primitives, groups, clones and bundles (and rsc_defaults), from
#: Pacemaker Explained 2.1: "Resource Meta-Attributes", "Clone options", "Guest nodes"
#: and "Fencing devices" (provides).
RESOURCE_META: dict[str, Kind] = {
    "priority": INTEGER,
    "critical": BOOLEAN,
    "target-role": ROLE,
    "is-managed": BOOLEAN,
    "maintenance": BOOLEAN,
    "resource-stickiness": SCORE,
    "requires": select("nothing", "quorum", "fencing", "unfencing"),
    "migration-threshold": SCORE,
    "failure-timeout": TIME,
    "multiple-active": select("block", "stop_only", "stop_start", "stop_unexpected"),
    "allow-migrate": BOOLEAN,
    "allow-unhealthy-nodes": BOOLEAN,
    "container-attribute-target": STRING,
    "remote-node": STRING,
    "remote-port": INTEGER,
    "remote-addr": STRING,
    "remote-connect-timeout": TIME,
    "remote-allow-migrate": BOOLEAN,
    "provides": select("unfencing"),
    "globally-unique": BOOLEAN,
    "interleave": BOOLEAN,
    "notify": BOOLEAN,
    "ordered": BOOLEAN,
    "promotable": BOOLEAN,
    "clone-max": COUNT,
    "clone-node-max": COUNT,
    "clone-min": COUNT,
    "promoted-max": COUNT,
    "promoted-node-max": COUNT,
    "master-max": COUNT,  # the old names of promoted-max and promoted-node-max
    "master-node-max": COUNT,
}

#: Attributes of operations (and op_defaults), from Pacemaker Explained 2.1,
#: "Operation Properties".
OPERATION: dict[str, Kind] = {
    "interval": TIME,
    "timeout": TIME,
    "start-delay": TIME,
    "interval-origin": STRING,
    "enabled": BOOLEAN,
    "record-pending": BOOLEAN,
    "role": ROLE,
    "on-fail": select(
        "ignore", "block", "stop", "restart", "standby", "fence", "demote", "restart-container"
    ),
    "requires": select("nothing", "quorum", "fencing", "unfencing"),
}

#: Properties Pacemaker (or pcs) writes itself; no daemon declares last-lrm-refresh.
MAINTAINED_PROPERTIES = frozenset(
    {"dc-version", "cluster-infrastructure", "cluster-name", "have-watchdog", "last-lrm-refresh"}
)

#: "Allowed values: a, b (what b does), c" in a longdesc, or 'Allowed values are "a" ... "b"'.
_ALLOWED_LIST = re.compile(r"Allowed values:\s*(.*)", re.S)
_ALLOWED_QUOTED = re.compile(r"Allowed values are (.*)", re.S)


@cache
def daemon_options(daemon: str) -> dict[str, Kind]:
    """The options one Pacemaker daemon declares (`schedulerd`, `controld`, `based`,
    `fenced`), typed; empty when its metadata cannot be read."""
    metadata = cluster.daemon_metadata(daemon)
    return parse_options(metadata) if metadata else {}


def parse_options(metadata: str) -> dict[str, Kind]:
    """Parameters of an OCF-style metadata document by name: their content type, and
    their choices (`<option>`s, or the values the longdesc allows)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(metadata.encode(), parser)  # noqa: S320 — Pacemaker's own
    except etree.XMLSyntaxError:
        return {}
    options: dict[str, Kind] = {}
    for param in root.iterfind("parameters/parameter"):
        content = param.find("content")
        kind = content.get("type", "string") if content is not None else "string"
        choices = tuple(o.get("value", "") for o in param.iterfind("content/option"))
        if choices:  # pcs takes only these, as they are written
            kind = "select"
        elif kind in ("select", "string"):  # Pacemaker reads these in any case
            choices = _allowed_values(param.findtext("longdesc") or "")
            kind = "choice" if choices else kind
        elif kind == "integer":  # Pacemaker (and pcs) take INFINITY for its integers
            kind = "pcmk-integer"
        options[param.get("name", "")] = Kind(kind, choices)
    return options


def _allowed_values(longdesc: str) -> tuple[str, ...]:
    if match := _ALLOWED_LIST.search(longdesc):
        text = re.sub(r"\([^)]*\)", "", match.group(1))  # drop "(what it does)"
        words = [item.strip().rstrip(".") for item in text.split(",")]
        if all(re.fullmatch(r"[\w-]+", word) for word in words):
            return tuple(words)
    if match := _ALLOWED_QUOTED.search(longdesc):
        return tuple(re.findall(r'"([\w-]+)"', match.group(1)))
    return ()


@cache
def cluster_options() -> dict[str, Kind]:
    """crm_config options by name, as the installed Pacemaker's daemons declare them
    (the daemons pcs asks too)."""
    return {
        name: kind
        for daemon in ("based", "controld", "schedulerd")
        for name, kind in daemon_options(daemon).items()
    }


def fencing_options() -> dict[str, Kind]:
    """The `pcmk_*` parameters every fencing device takes."""
    return daemon_options("fenced")
