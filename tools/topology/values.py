"""Values Pacemaker reads as durations, integers, scores, booleans, roles or choices, and
the names it reads them under (`pacemaker_options`).

Pacemaker itself takes a bad value silently (a default in its place) and ignores a
misspelt name, so these are problems here. A name Pacemaker does not know is accepted
(agents and tools keep their own attributes) unless it is close to one it knows.
"""

from __future__ import annotations

import calendar
import re
from functools import cache

from hakit.tools.topology import model
from hakit.tools.topology.conventions import text_value
from hakit.tools.topology.load import Loaded, Path_
from hakit.tools.topology.pacemaker_options import (
    BOOLEAN,
    INTEGER,
    MAINTAINED_PROPERTIES,
    OPERATION,
    RESOURCE_META,
    ROLE,
    TIME,
    Kind,
    cluster_options,
    fencing_options,
)
from hakit.tools.topology.problems import did_you_mean
from hakit.tools.topology.rule_sets import SCORE_WORDS

__all__ = ["Kind", "check", "milliseconds", "problem"]

#: Pacemaker's duration: a number and a unit (seconds without one), or ISO 8601.
_DURATION = re.compile(
    r"\s*([0-9]+)(\.[0-9]+)?\s*(ms|msec|us|usec|s|sec|m|min|h|hr)?\s*", re.IGNORECASE
)
_ISO_DURATION = re.compile(
    r"P(?=.)(?:([0-9]+)Y)?(?:([0-9]+)M)?(?:([0-9]+)W)?(?:([0-9]+)D)?"
    r"(?:T(?=.)(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)S)?)?"
)
_UNIT_MS = {"ms": 1, "msec": 1, "us": 1e-3, "usec": 1e-3, "s": 1e3, "sec": 1e3}
_UNIT_MS |= {"m": 6e4, "min": 6e4, "h": 36e5, "hr": 36e5, "": 1e3}
_INTEGER = re.compile(r"[+-]?[0-9]+")
_BOOLEAN = {"true", "false", "yes", "no", "y", "n", "on", "off", "1", "0"}
#: What people write for a role, and the role they mean.
_ROLE_WORDS = {"run": "Started", "up": "Started", "on": "Started", "down": "Stopped"}
_ROLE_WORDS |= {"off": "Stopped", "primary": "Promoted", "secondary": "Unpromoted"}
#: A bundle's network options (resources-3.9.rng) and their types.
_NETWORK = {
    "ip-range-start": Kind("string"),
    "control-port": INTEGER,
    "host-interface": Kind("string"),
    "host-netmask": INTEGER,
    "add-host": BOOLEAN,
}


def milliseconds(text: str, *, as_pacemaker_2_1: bool = False) -> int | None:
    """A duration in milliseconds (None if `text` is not one): what the text means, or
    how Pacemaker 2.1 reads it (`as_pacemaker_2_1`): fractions dropped (1.5s is 1s) and,
    in ISO 8601, days and years counted from 1 (P1D is 0s, P2D is 24h)."""
    return _milliseconds(text, as_pacemaker_2_1)


@cache  # a topology says 10s a thousand times
def _milliseconds(text: str, as_pacemaker_2_1: bool) -> int | None:
    if match := _DURATION.fullmatch(text):
        number = int(match.group(1)) + (0 if as_pacemaker_2_1 else float(match.group(2) or 0))
        return int(number * _UNIT_MS[(match.group(3) or "").lower()])
    if not (match := _ISO_DURATION.fullmatch(text)):
        return None
    years, months, weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    days += 7 * weeks
    if as_pacemaker_2_1:  # crm_time_get_seconds() of 2.1, which counts dates from day 1
        days += sum(366 if calendar.isleap(y) else 365 for y in range(1, years)) - (days > 0)
    else:
        days += 365 * years
    days += 30 * months  # both: a month is 30 days
    return ((days * 24 + hours) * 60 + minutes) * 60_000 + seconds * 1000


#: What a value of each kind looks like (a problem's hint).
_FORMS = {
    "time": "a duration, e.g. 30s, 500ms, 5min, 1h, PT1M",
    "integer": "an integer, e.g. 10",
    "pcmk-integer": "an integer, INFINITY or -INFINITY",
    "count": "an integer, 0 or more",
    "score": "an integer, INFINITY or -INFINITY",
    "boolean": "true or false",
    "percentage": "e.g. 80%",
}


def problem(kind: Kind, text: str) -> str | None:
    """Why `text` is not a valid value of `kind`, or None when it is (`hint` says what
    would be)."""
    if kind.name == "time" and milliseconds(text) is None:
        return f"{text!r} is not a duration"
    if kind.name == "integer" and not _INTEGER.fullmatch(text.strip()):
        return f"{text!r} is not an integer"
    if kind.name == "pcmk-integer" and not (_INTEGER.fullmatch(text) or text in SCORE_WORDS):
        return f"{text!r} is not an integer"
    if kind.name == "count" and not re.fullmatch(r"\+?[0-9]+", text.strip()):
        return f"{text!r} is not a count"
    if kind.name == "score" and not (_INTEGER.fullmatch(text) or text in SCORE_WORDS):
        return f"{text!r} is not a score"
    if kind.name == "boolean" and text.lower() not in _BOOLEAN:
        return f"{text!r} is not a boolean"
    if kind.name == "percentage" and not re.fullmatch(r"[0-9]+%?", text):
        return f"{text!r} is not a percentage"
    if kind.name == "choice" and text.lower() not in {o.lower() for o in kind.options}:
        return f"{text!r} is not one of {', '.join(kind.options)}"
    if kind.name == "select" and kind.options and text not in kind.options:
        return f"{text!r} is not one of {', '.join(kind.options)}"
    return None


def hint(kind: Kind, text: str) -> str:
    """The value `text` was probably meant to be, or what a value looks like."""
    if not kind.options:
        return _FORMS.get(kind.name, "")
    for word, role in _ROLE_WORDS.items() if kind == ROLE else ():
        if text.lower().startswith(word):
            return f"did you mean {role!r}?"
    lower = {option.lower(): option for option in kind.options}
    if text.lower() in lower:
        return f"did you mean {lower[text.lower()]!r}?"
    return did_you_mean(text, list(kind.options)) or "Pacemaker ignores another value"


def check(loaded: Loaded, topology: model.Topology) -> None:
    """Every typed value in the topology: properties, operations, meta attributes."""
    _check_properties(loaded, topology.cluster.properties)
    for i, resource in enumerate(topology.resources):
        _check_object(loaded, resource.meta, resource.ops, resource.clone, ("resources", i))
    for name, template in topology.templates.items():
        _check_object(loaded, template.meta, template.ops, template.clone, ("templates", name))
    for i, group in enumerate(topology.groups):
        _check_object(loaded, group.meta, [], group.clone, ("groups", i))
    for i, bundle in enumerate(topology.bundles):
        _check_bundle(loaded, bundle, ("bundles", i))
    for i, device in enumerate(topology.fencing.devices):
        where: Path_ = ("fencing", "devices", i)
        _check_object(loaded, device.meta, device.ops, None, where)
        pcmk = {k: v for k, v in device.params.items() if k.startswith("pcmk_")}
        _check_map(loaded, fencing_options(), pcmk, (*where, "params"), "fencing parameter")
    defaults = topology.defaults
    _check_map(loaded, RESOURCE_META, defaults.resources, ("defaults", "resources"))
    _check_map(loaded, OPERATION, defaults.operations, ("defaults", "operations"), "op attribute")
    sets_by_key: tuple[tuple[str, list[model.DefaultSet], dict[str, Kind], str], ...] = (
        ("resource_sets", defaults.resource_sets, RESOURCE_META, "meta attribute"),
        ("operation_sets", defaults.operation_sets, OPERATION, "op attribute"),
    )
    for key, sets, kinds, what in sets_by_key:
        for i, default_set in enumerate(sets):
            _check_map(loaded, kinds, default_set.meta, ("defaults", key, i, "meta"), what)


def _check_properties(loaded: Loaded, properties: dict[str, model.Scalar]) -> None:
    known = cluster_options()
    if properties and not known:
        loaded.skipped.append(
            "cluster property names and values: Pacemaker's daemons' metadata could not "
            "be read (pacemaker-schedulerd, -controld, -based metadata)"
        )
        return
    for name, value in properties.items():
        path: Path_ = ("cluster", "properties", name)
        if name in known:
            _check(loaded, known[name], value, path)
        elif name in MAINTAINED_PROPERTIES:
            continue
        elif close := did_you_mean(name, list(known)):
            loaded.problem(path, f"Pacemaker has no cluster property {name!r}", close)
        elif name in RESOURCE_META or name in OPERATION:
            where = "resources" if name in RESOURCE_META else "operations"
            loaded.problem(
                path,
                f"{name!r} is not a cluster property, it is a {where[:-1]} attribute",
                f"set it for all under defaults.{where}",
            )


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
        for key, count in (
            ("max", clone.max),
            ("node_max", clone.node_max),
            ("promoted_max", clone.promoted_max),
        ):
            if count is not None and count < 0:
                loaded.problem(
                    (*path, "clone", key),
                    f"{count} is negative",
                    "a count of instances: 0 or more (clone-max 0 or unset: one per node)",
                )
    for i, op in enumerate(ops):
        for key, duration in (
            ("interval", op.interval),
            ("timeout", op.timeout),
            ("start_delay", op.start_delay),
        ):
            if duration is not None:
                _check(loaded, TIME, duration, (*path, "ops", i, key))
        if op.on_fail is not None:
            _check(loaded, OPERATION["on-fail"], op.on_fail, (*path, "ops", i, "on_fail"))
        _check_map(loaded, OPERATION, op.meta, (*path, "ops", i, "meta"), "op attribute")


def _check_bundle(loaded: Loaded, bundle: model.Bundle, path: Path_) -> None:
    """What pcs checks of a bundle (and the schema of its network options)."""
    _check_map(loaded, RESOURCE_META, bundle.meta, (*path, "meta"))
    for key, count, least in (
        ("replicas", bundle.replicas, 1),
        ("replicas_per_host", bundle.replicas_per_host, 1),
        ("promoted_max", bundle.promoted_max, 0),
    ):
        if count is not None and count < least:
            loaded.problem(
                (*path, key),
                f"{count} is less than {least}",
                "as pcs: replicas and replicas_per_host 1 or more, promoted_max 0 or more",
            )
    for name, value in bundle.network.items():
        if name not in _NETWORK:
            loaded.problem(
                (*path, "network", name),
                f"a bundle's network has no option {name!r}",
                did_you_mean(name, list(_NETWORK)) or f"known: {', '.join(_NETWORK)}",
            )
        else:
            _check(loaded, _NETWORK[name], value, (*path, "network", name))
    for i, port in enumerate(bundle.ports):
        for key, number in (("port", port.port), ("internal_port", port.internal_port)):
            if number is not None and not 1 <= number <= 65535:
                loaded.problem(
                    (*path, "ports", i, key), f"{number} is not a port", "a port: 1 to 65535"
                )
        if port.range is not None and not re.fullmatch(r"[0-9]+-[0-9]+", port.range):
            loaded.problem(
                (*path, "ports", i, "range"), f"{port.range!r} is not FIRST-LAST", "e.g. 8000-8010"
            )


def _check_map(
    loaded: Loaded,
    kinds: dict[str, Kind],
    values: dict[str, model.Scalar],
    path: Path_,
    what: str = "meta attribute",
) -> None:
    """Known names' values; unknown names close to a known one (a misspelling)."""
    for name, value in values.items():
        if name in kinds:
            _check(loaded, kinds[name], value, (*path, name))
        elif kinds and (close := did_you_mean(name, list(kinds))):
            loaded.problem((*path, name), f"Pacemaker has no {what} {name!r}", close)


def _check(loaded: Loaded, kind: Kind, value: model.Scalar, path: Path_) -> None:
    text = text_value(value)
    if (why := problem(kind, text)) is not None:
        loaded.problem(path, why, hint(kind, text))
