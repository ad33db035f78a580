"""Correlation rules: when VNF error reports (`Observation`) point at the infrastructure,
and where they hold (`holding_rules`, `recent_suspects`). See `correlation` for the semantics.

Rules are parsed from JSON text (a publisher agent parameter) or its decoded mapping:

    {"rules": [{"name": "compute-host", "scope": "host", "error_classes": ["compute"],
                "min_vnfs": 3, "window_s": 60}],
     "mass_event": {"max_suspects": 3, "window_s": 120},
     "disable_compute_service": false}

`parse_rules` checks everything and raises `RulesError` naming every problem it found.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SCOPES = ("host", "physnet", "backend")
ERROR_CLASSES = ("compute", "network", "storage", "unknown")
RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_COUNT = 1_000_000  # min_vnfs and max_suspects: beyond any real cloud
TOP_KEYS = ("rules", "mass_event", "disable_compute_service")
RULE_KEYS = ("name", "scope", "error_classes", "min_vnfs", "window_s")
MASS_KEYS = ("max_suspects", "window_s")
Scope = tuple[str, str]  # (scope, key)


class RulesError(ValueError):
    """Invalid rules; the message names every problem, `problems` lists them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Rule:
    """At least `min_vnfs` distinct VNFs reporting one of `error_classes` (any, when empty)
    about one `scope` key within `window_s` seconds."""

    name: str
    scope: str
    error_classes: tuple[str, ...]
    min_vnfs: int
    window_s: float

    def accepts(self, error_class: str) -> bool:
        return not self.error_classes or error_class in self.error_classes

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": self.scope,
            "error_classes": list(self.error_classes),
            "min_vnfs": self.min_vnfs,
            "window_s": self.window_s,
        }


@dataclass(frozen=True)
class MassEvent:
    """More than `max_suspects` suspect scopes within `window_s`: one mass alarm instead."""

    max_suspects: int
    window_s: float

    def as_dict(self) -> dict[str, Any]:
        return {"max_suspects": self.max_suspects, "window_s": self.window_s}


@dataclass(frozen=True)
class Rules:
    """The rules (in priority order), the optional mass guard, and whether a host suspected
    faulty gets its nova-compute disabled."""

    rules: tuple[Rule, ...] = ()
    mass_event: MassEvent | None = None
    disable_compute_service: bool = False

    @property
    def longest_window_s(self) -> float:
        return max((r.window_s for r in self.rules), default=0.0)

    @property
    def horizon_s(self) -> float:
        """How far back reports matter: `step` needs those observed in (now - horizon_s, now]."""
        return self.longest_window_s + (self.mass_event.window_s if self.mass_event else 0.0)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"rules": [r.as_dict() for r in self.rules]}
        if self.mass_event is not None:
            data["mass_event"] = self.mass_event.as_dict()
        data["disable_compute_service"] = self.disable_compute_service
        return data


@dataclass(frozen=True)
class Observation:
    """One resolved VNF error report."""

    report_id: str
    vnf_instance_id: str
    error_class: str
    severity: str  # SOL 003 perceivedSeverity
    observed: float
    scopes: Mapping[str, str] = field(default_factory=dict)  # "host"/"physnet"/"backend" → name


def parse_rules(source: str | bytes | Mapping[str, Any]) -> Rules:
    """Rules from JSON text or a mapping; `RulesError` names every problem."""
    data: object = source
    if isinstance(source, str | bytes | bytearray):
        try:
            data = json.loads(source)
        except (ValueError, RecursionError) as error:
            raise RulesError([f"not JSON: {error}"]) from None
    if not isinstance(data, Mapping):
        raise RulesError([f"expected a JSON object, not {_show(data)}"])
    problems: list[str] = []
    _unknown(data, TOP_KEYS, "", problems)
    rules: list[Rule] = []
    items = data.get("rules")
    if not isinstance(items, list):
        problems.append(
            f"rules: {_show(items)} is not a list" if "rules" in data else "rules: missing"
        )
        items = []
    names: dict[str, int] = {}
    for index, item in enumerate(items):
        rule = _rule(item, f"rules[{index}]", problems)
        if rule is not None and rule.name in names:
            problems.append(
                f"rules[{index}].name: {rule.name!r} repeats rules[{names[rule.name]}]'s"
            )
        elif rule is not None:
            names[rule.name] = index
            rules.append(rule)
    mass = _mass(data.get("mass_event"), problems)
    disable = data.get("disable_compute_service", False)
    if not isinstance(disable, bool):
        problems.append(f"disable_compute_service: {_show(disable)} is not true or false")
    if problems:
        raise RulesError(problems)
    return Rules(tuple(rules), mass, bool(disable))


def scope_groups(
    observations: Sequence[Observation], now: float, lost: Mapping[str, str]
) -> dict[Scope, list[Observation]]:
    """The reports observed by `now` about each (scope, key), oldest first. A report about a
    lost host is only about that host: the host's loss explains it."""
    groups: dict[Scope, list[Observation]] = {}
    for report in observations:
        if report.observed <= now:
            explained = report.scopes.get("host") in lost
            for scope in ("host",) if explained else SCOPES:
                key = report.scopes.get(scope)
                if key:
                    groups.setdefault((scope, key), []).append(report)
    for reports in groups.values():
        reports.sort(key=lambda o: (o.observed, o.report_id))
    return groups


def holding_rules(
    groups: dict[Scope, list[Observation]], rules: Rules, lost: Mapping[str, str], now: float
) -> dict[Scope, list[tuple[Rule, list[Observation]]]]:
    """The rules holding for each (scope, key) not lost, with the reports they count."""
    holding: dict[Scope, list[tuple[Rule, list[Observation]]]] = {}
    for (scope, key), reports in groups.items():
        if scope == "host" and key in lost:
            continue
        for rule in rules.rules:
            if rule.scope != scope:
                continue
            counted = [
                o
                for o in reports
                if rule.accepts(o.error_class) and now - rule.window_s < o.observed
            ]
            if len({o.vnf_instance_id for o in counted}) >= rule.min_vnfs:
                holding.setdefault((scope, key), []).append((rule, counted))
    return holding


def recent_suspects(
    groups: dict[Scope, list[Observation]],
    rules: Rules,
    lost: Mapping[str, str],
    now: float,
    window_s: float,
) -> set[Scope]:
    """The (scope, key) not lost for which a rule held at some moment in (now - window_s, now].

    A rule's count rises only when a report arrives, so it is enough to look at the start
    of that span and at each report in it."""
    since = now - window_s
    recent: set[Scope] = set()
    for (scope, key), reports in groups.items():
        if scope == "host" and key in lost:
            continue
        moments = [since, *(o.observed for o in reports if o.observed > since)]
        if any(r.scope == scope and _held_at_any(reports, r, moments) for r in rules.rules):
            recent.add((scope, key))
    return recent


def _held_at_any(reports: list[Observation], rule: Rule, moments: list[float]) -> bool:
    """Whether `rule` holds at one of `moments` (ascending), over `reports` (oldest first)."""
    relevant = [o for o in reports if rule.accepts(o.error_class)]
    vnfs: Counter[str] = Counter()
    first = last = 0
    for moment in moments:
        while last < len(relevant) and relevant[last].observed <= moment:
            vnfs[relevant[last].vnf_instance_id] += 1
            last += 1
        while first < last and not moment - rule.window_s < relevant[first].observed:
            vnfs[relevant[first].vnf_instance_id] -= 1
            if not vnfs[relevant[first].vnf_instance_id]:
                del vnfs[relevant[first].vnf_instance_id]
            first += 1
        if len(vnfs) >= rule.min_vnfs:
            return True
    return False


def _rule(item: object, where: str, problems: list[str]) -> Rule | None:
    if not isinstance(item, Mapping):
        problems.append(f"{where}: {_show(item)} is not an object")
        return None
    before = len(problems)
    _unknown(item, RULE_KEYS, where, problems)
    name = _field(item, "name", where, problems, _name_problem)
    scope = _field(item, "scope", where, problems, _scope_problem)
    classes = _classes(item.get("error_classes", []), f"{where}.error_classes", problems)
    min_vnfs = _field(item, "min_vnfs", where, problems, _count_problem)
    window = _field(item, "window_s", where, problems, _seconds_problem)
    if len(problems) > before:
        return None
    return Rule(name, scope, classes, min_vnfs, float(window))


def _mass(value: object, problems: list[str]) -> MassEvent | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.append(f"mass_event: {_show(value)} is not an object")
        return None
    before = len(problems)
    _unknown(value, MASS_KEYS, "mass_event", problems)
    most = _field(value, "max_suspects", "mass_event", problems, _count_problem)
    window = _field(value, "window_s", "mass_event", problems, _seconds_problem)
    return None if len(problems) > before else MassEvent(most, float(window))


def _classes(value: object, where: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list):
        problems.append(f"{where}: {_show(value)} is not a list")
        return ()
    classes: list[str] = []
    for index, item in enumerate(value):
        if item not in ERROR_CLASSES:
            problems.append(
                f"{where}[{index}]: {_show(item)} is not compute, network, storage or unknown"
            )
        elif item not in classes:
            classes.append(item)
    return tuple(classes)


def _field(
    data: Mapping[Any, Any],
    key: str,
    where: str,
    problems: list[str],
    problem_of: Callable[[object], str | None],
) -> Any:
    """data[key] when present and fine, else None with the problem noted."""
    if key not in data:
        problems.append(f"{where}.{key}: missing")
        return None
    value = data[key]
    problem = problem_of(value)
    if problem is not None:
        problems.append(f"{where}.{key}: {_show(value)} {problem}")
        return None
    return value


def _name_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "is not a string"
    return None if RULE_NAME.fullmatch(value) else f"does not match {RULE_NAME.pattern}"


def _scope_problem(value: object) -> str | None:
    return None if value in SCOPES else "is not host, physnet or backend"


def _count_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "is not an integer"
    if value < 1:
        return "is not >= 1"
    return f"is over {MAX_COUNT}" if value > MAX_COUNT else None


def _seconds_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "is not a number"
    try:
        seconds = float(value)
    except OverflowError:
        return "is not a finite number"
    if not math.isfinite(seconds):
        return "is not a finite number"
    return None if seconds > 0 else "is not > 0"


def _unknown(
    data: Mapping[Any, Any], known: tuple[str, ...], where: str, problems: list[str]
) -> None:
    problems += [
        f"{where or 'rules'}: unknown key {_show(key)}" for key in data if key not in known
    ]


def _show(value: object) -> str:
    """A short, safe rendering of any value for a problem message."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "…")
    if isinstance(value, int | float):
        try:
            text = repr(value)
        except ValueError:  # an integer too long to print
            return "a huge integer"
        return text if len(text) <= 40 else text[:40] + "…"
    if isinstance(value, list | tuple):
        return "a list"
    return "an object" if isinstance(value, Mapping) else type(value).__name__
