"""The topology's `correlation` section: its checks, the JSON every ocf:hakit:publisher
resource gets as its `correlation` parameter (what the node side parses), and the
section recovered from an imported CIB."""

from __future__ import annotations

import json
import typing

from hakit.tools.topology import model
from hakit.tools.topology.load import Loaded, Path_
from hakit.tools.topology.problems import Found, name_problem
from hakit.tools.topology.values import milliseconds

PUBLISHER = "ocf:hakit:publisher"
#: The publisher's parameter that carries the section.
PARAM = "correlation"
#: The largest min_vnfs and max_suspects the publisher's parser takes.
MAX_COUNT = 1_000_000
_HINTS = typing.get_type_hints(model.CorrelationRule, vars(model))
SCOPES = typing.get_args(_HINTS["scope"])
CLASSES = typing.get_args(typing.get_args(_HINTS["error_classes"])[0])


def seconds(duration: str) -> int | float | None:
    """A duration in seconds (an int when whole); None if it is not one."""
    ms = milliseconds(duration)
    if ms is None:
        return None
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def attribute(section: model.Correlation) -> str | None:
    """The publisher's `correlation` value: compact JSON, sorted keys; None without rules."""
    if not section.rules:
        return None
    document: dict[str, object] = {
        "rules": [
            {
                "name": rule.name,
                "scope": rule.scope,
                "error_classes": list(rule.error_classes),
                "min_vnfs": rule.min_vnfs,
                "window_s": seconds(rule.window),
            }
            for rule in section.rules
        ],
        "disable_compute_service": section.disable_compute_service,
    }
    if (guard := section.mass_event) is not None:
        document["mass_event"] = {
            "max_suspects": guard.max_suspects,
            "window_s": seconds(guard.window),
        }
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def section_problems(section: model.Correlation) -> list[Found]:
    """What is wrong in the section itself (names, counts, windows, the action)."""
    found: list[Found] = []
    for i, rule in enumerate(section.rules):
        where: Path_ = ("correlation", "rules", i)
        earlier = [item.name for item in section.rules[:i]]
        if named := name_problem(rule.name, earlier, (*where, "name"), "rule"):
            found.append(named)
        hint = "at least 1: the distinct VNFs whose reports make a suspect"
        found += _count(rule.min_vnfs, (*where, "min_vnfs"), hint)
        for j, kind in enumerate(rule.error_classes):
            if kind in rule.error_classes[:j]:
                found.append(((*where, "error_classes", j), f"{kind!r} twice", "list it once"))
        found += _window(rule.window, (*where, "window"))
    if (guard := section.mass_event) is not None:
        hint = "at least 1: the suspects tolerated in the window before one alarm"
        found += _count(guard.max_suspects, ("correlation", "mass_event", "max_suspects"), hint)
        found += _window(guard.window, ("correlation", "mass_event", "window"))
    if section.disable_compute_service and not any(r.scope == "host" for r in section.rules):
        found.append(
            (
                ("correlation", "disable_compute_service"),
                "no rule of scope host: no compute service would ever be disabled",
                "add a rule with `scope: host`, or drop disable_compute_service",
            )
        )
    return found


def _count(value: int, path: Path_, hint: str) -> list[Found]:
    if value < 1:
        return [(path, f"{path[-1]} is {value}", hint)]
    if value > MAX_COUNT:
        return [(path, f"{path[-1]} is {value}", f"at most {MAX_COUNT:,}")]
    return []


def _window(text: str, path: Path_) -> list[Found]:
    value = seconds(text)
    if value is None:
        return [(path, f"{text!r} is not a duration", "e.g. 60s, 2min or 1h")]
    if value <= 0:
        return [(path, f"{text!r} is no time at all", "a window longer than 0, e.g. 60s")]
    return []


def check(loaded: Loaded, topology: model.Topology) -> None:
    """The section's problems, rules with no publisher to run them, and a publisher
    that sets `correlation` itself beside the section (one source of truth)."""
    section = topology.correlation
    for path, message, hint in section_problems(section):
        loaded.problem(path, message, hint)
    if not section.rules:
        return
    templates = topology.templates
    publishers = [
        (i, r)
        for i, r in enumerate(topology.resources)
        if (r.agent or templates.get(r.template or "", model.Template()).agent) == PUBLISHER
    ]
    if not publishers:
        loaded.problem(
            ("correlation", "rules"),
            f"no {PUBLISHER} resource: the rules would go nowhere",
            "add the publisher (it correlates the reports), or drop `correlation:`",
        )
    hint = "drop it: hakit writes it from the topology's `correlation:` section"
    named: set[str] = set()
    for i, resource in publishers:
        if PARAM in resource.params:
            loaded.problem(
                ("resources", i, "params", PARAM), "set here and by `correlation:`", hint
            )
        template = resource.template or ""
        if PARAM in templates.get(template, model.Template()).params and template not in named:
            named.add(template)
            loaded.problem(
                ("templates", template, "params", PARAM), "set here and by `correlation:`", hint
            )


def recover(topology: model.Topology) -> None:
    """An imported topology's section, from its publishers' `correlation` parameter: when
    every publisher has the same one, valid and as `attribute` writes it (so that the
    topology renders it back); otherwise the parameter stays where it is."""
    publishers = [r for r in topology.resources if r.agent == PUBLISHER]
    texts = {str(r.params[PARAM]) if PARAM in r.params else None for r in publishers}
    if len(texts) != 1 or (text := texts.pop()) is None:
        return
    section = parse(text)
    if section is None or attribute(section) != text or section_problems(section):
        return
    topology.correlation = section
    for resource in publishers:
        del resource.params[PARAM]


def parse(text: str) -> model.Correlation | None:
    """The section a `correlation` value describes; None if it does not describe one."""
    try:
        data = json.loads(text)
        rules = [
            model.CorrelationRule(
                name=_typed(rule["name"], str),
                scope=_choice(rule["scope"], SCOPES),
                min_vnfs=_typed(rule["min_vnfs"], int),
                window=_duration(rule["window_s"]),
                error_classes=[_choice(c, CLASSES) for c in rule["error_classes"]],
            )
            for rule in data["rules"]
        ]
        guard = data.get("mass_event")
        mass_event = (
            None
            if guard is None
            else model.MassEvent(
                max_suspects=_typed(guard["max_suspects"], int),
                window=_duration(guard["window_s"]),
            )
        )
        action = _typed(data["disable_compute_service"], bool)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return model.Correlation(rules, mass_event, action)


T = typing.TypeVar("T")


def _typed(value: object, kind: type[T]) -> T:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{value!r} is not {kind.__name__}")
    return value


def _choice(value: object, choices: tuple[object, ...]) -> typing.Any:
    if value not in choices:
        raise ValueError(f"{value!r} is not one of {choices}")
    return value


def _duration(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number of seconds")
    return f"{value}s"
