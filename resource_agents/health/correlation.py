"""VNF error reports → suspected NFVI faults and SOL 003 alarms: pure, deterministic, no I/O.

An `Observation` is one resolved VNF error report: its VNF, error class, severity, when it
was observed, and the host / physnet / cinder backend it concerns (`scopes`; a scope
absent is unknown, a report without scopes never counts). `step` moves the open
correlations (`Book`) to time `now`:

- A rule holds for a scope key K at `now` when at least `min_vnfs` DISTINCT VNFs reported,
  about K, an error of one of its classes (any class when the list is empty), observed in
  (now - window_s, now]. One VNF reporting ten times counts once.
- While some rule holds for (scope, K) there is one "suspect" correlation: a root alarm
  (managedObjectId and faulty resource K) and one child alarm per counted report
  (managedObjectId its VNF), correlated both ways. Reports counted later join it (their
  child raised, the root updated); children are not dropped while it stays open. When
  no rule holds any more, the children then the root clear. It is named after the first
  rule (in the rules' order) that held when it was raised.
- A host in `Evidence.lost_hosts` (fenced, or its node lost) has its own root alarm: every
  report about it observed within the longest window becomes a child of that alarm (a
  "fenced" correlation), never a suspicion, nor counts for its physnet or backend. A
  suspicion open on a host that becomes lost clears, and its reports are raised again
  under the host's alarm.
- Mass guard: when more than `max_suspects` (scope, key) held a rule at some moment of the
  last `mass_event.window_s`, no suspect alarm is raised (open ones clear) and one "mass"
  root alarm (managedObjectId "nfvi") names them, until the count is back to
  `max_suspects` or fewer.
- With `disable_compute_service`, a host-scope suspicion yields one `DisableService` when
  it is raised; never under the mass guard.

Ids: a correlation's is uuid5 of (kind, scope, key, raise time), its children's uuid5 of
(its id, report id), notifications' uuid5 of (alarm id, step time): the same inputs give
the same notifications, so a retried step stores nothing twice. `step` reads only the
observations of the last `Rules.horizon_s`. `replay` runs it over recorded reports.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hakit.resource_agents.health import correlation_alarms as alarms
from hakit.resource_agents.health.correlation_rules import (
    ERROR_CLASSES,
    SCOPES,
    MassEvent,
    Observation,
    Rule,
    Rules,
    RulesError,
    Scope,
    holding_rules,
    parse_rules,
    recent_suspects,
    scope_groups,
)
from hakit.resource_agents.health.model import rfc3339
from hakit.resource_agents.health.sol003 import Context, Outgoing

__all__ = [
    "ERROR_CLASSES",
    "SCOPES",
    "Book",
    "Correlation",
    "DisableService",
    "Evidence",
    "MassEvent",
    "Observation",
    "ReplayEvent",
    "Rule",
    "Rules",
    "RulesError",
    "StepResult",
    "explain",
    "parse_rules",
    "replay",
    "step",
]

explain = alarms.explain


@dataclass(frozen=True)
class Evidence:
    """What Pacemaker knows: lost (fenced or unreachable) host → its root alarm id."""

    lost_hosts: Mapping[str, str] = field(default_factory=dict)


NO_EVIDENCE = Evidence()


@dataclass
class Correlation:
    """One correlation, open or closed: its alarms and what it counted."""

    id: str
    kind: str  # suspect | fenced | mass
    scope: str  # host | physnet | backend; "nfvi" for mass
    key: str
    rule: str
    rule_summary: dict[str, Any]
    raised: float
    changed: float
    root_alarm_id: str  # the alarm its children correlate to (a lost host's, for fenced)
    cleared: float | None = None
    severity: str = "INDETERMINATE"
    report_ids: list[str] = field(default_factory=list)
    vnfs: list[str] = field(default_factory=list)
    error_classes: list[str] = field(default_factory=list)
    children: dict[str, str] = field(default_factory=dict)  # report id → child alarm id
    evidence: list[str] = field(default_factory=list)
    suspects: list[str] = field(default_factory=list)  # mass: the "scope key" it stands for
    first_observed: float | None = None
    last_observed: float | None = None

    @property
    def slot(self) -> str:
        return f"{self.kind}/{self.scope}/{self.key}"

    def as_dict(self) -> dict[str, Any]:
        return {name: _copied(getattr(self, name)) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Correlation:
        names = cls.__dataclass_fields__
        return cls(**{name: _copied(value) for name, value in data.items() if name in names})

    def copy(self) -> Correlation:
        return Correlation.from_dict(self.as_dict())


@dataclass(frozen=True)
class Book:
    """The open correlations, by slot (kind/scope/key)."""

    correlations: Mapping[str, Correlation] = field(default_factory=dict)

    @classmethod
    def of(cls, correlations: Iterable[Correlation]) -> Book:
        return cls({c.slot: c for c in correlations})

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.correlations.values(), key=lambda c: c.slot)
        return {"correlations": [c.as_dict() for c in ordered]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Book:
        return cls.of(Correlation.from_dict(c) for c in data.get("correlations", []))


@dataclass(frozen=True)
class DisableService:
    """Disable nova-compute on a host suspected faulty."""

    host: str
    reason: str


@dataclass(frozen=True)
class StepResult:
    """The new book, the notifications to store (clears first), the actions to take."""

    book: Book
    outgoing: list[Outgoing]
    actions: list[DisableService]
    closed: list[Correlation]  # cleared by this step, `cleared` set


@dataclass(frozen=True)
class ReplayEvent:
    """A correlation `replay` saw raised or cleared."""

    at: float
    event: str  # raised | cleared
    kind: str
    scope: str
    key: str
    rule: str
    vnfs: tuple[str, ...]


def step(
    book: Book,
    observations: Sequence[Observation],
    evidence: Evidence,
    rules: Rules,
    now: float,
    context: Context,
) -> StepResult:
    """The correlations at `now`, and the notifications and actions that takes."""
    lost = dict(evidence.lost_hosts)
    groups = scope_groups(observations, now, lost)
    holding = holding_rules(groups, rules, lost, now)
    mass = rules.mass_event
    suspects = recent_suspects(groups, rules, lost, now, mass.window_s) if mass else set(holding)
    guard = mass is not None and len(suspects) > mass.max_suspects
    run = _Run(now, context, {slot: c.copy() for slot, c in book.correlations.items()})
    run.suspects(holding, guard, lost, rules.disable_compute_service)
    run.fenced(groups, lost, rules.longest_window_s)
    if mass is not None:
        run.mass(suspects if guard else set(), holding, mass)
    outgoing = run.clears + run.raises
    return StepResult(Book(run.book), outgoing, run.actions, run.closed)


class _Run:
    """One step's work: the book it builds, what it clears and raises."""

    def __init__(self, now: float, context: Context, book: dict[str, Correlation]) -> None:
        self.now, self.context, self.book = now, context, book
        self.clears: list[Outgoing] = []
        self.raises: list[Outgoing] = []
        self.actions: list[DisableService] = []
        self.closed: list[Correlation] = []

    def suspects(
        self, holding: dict[Scope, list[tuple[Rule, list[Observation]]]], guard: bool,
        lost: dict[str, str], disable: bool,
    ) -> None:  # fmt: skip
        open_now = {(c.scope, c.key) for c in self.book.values() if c.kind == "suspect"}
        for scope, key in sorted(open_now | set(holding)):
            current = self.book.get(f"suspect/{scope}/{key}")
            held = holding.get((scope, key))
            if current is not None and (guard or not held):
                if scope == "host" and key in lost:
                    reason = f"host {key} lost (root alarm {lost[key]}): reports moved under it"
                else:
                    reason = "mass event guard" if guard else "no rule holds any more"
                self.close(current, reason)
            elif held and not guard:
                self.suspect(current, scope, key, held, disable)

    def suspect(
        self, current: Correlation | None, scope: str, key: str,
        held: list[tuple[Rule, list[Observation]]], disable: bool,
    ) -> None:  # fmt: skip
        counted = _union(reports for _, reports in held)
        if current is None:
            rule = held[0][0]
            lines = [
                f"rule {r.name} holds: {len({o.vnf_instance_id for o in reports})} VNFs "
                f"reported about {scope} {key} in ({rfc3339(self.now - r.window_s)}, "
                f"{rfc3339(self.now)}]"
                for r, reports in held
            ]
            corr = self.open("suspect", scope, key, rule.name, rule.as_dict(), lines)
            new = self.join(corr, counted)
            if disable and scope == "host":
                self.actions.append(DisableService(key, alarms.probable_cause(corr)))
        else:
            corr, new = current, self.join(current, counted)
            if not new:
                return
        self.raises.append(alarms.root_raised(corr, self.now, self.context))
        self.raises += [alarms.child_raised(corr, o, self.now, self.context) for o in new]

    def fenced(
        self, groups: dict[Scope, list[Observation]], lost: dict[str, str], window_s: float
    ) -> None:
        open_now = {c.key for c in self.book.values() if c.kind == "fenced"}
        for host in sorted(open_now | set(lost)):
            current = self.book.get(f"fenced/host/{host}")
            root = lost.get(host)
            reports = [
                o for o in groups.get(("host", host), []) if self.now - window_s < o.observed
            ]
            if current is not None and (root != current.root_alarm_id or not reports):
                if root is None:
                    self.close(current, f"host {host} no longer lost")
                elif root != current.root_alarm_id:
                    self.close(current, f"host {host} has a new root alarm {root}")
                else:
                    self.close(current, "no report within the window any more")
                current = None
            if root is None or not reports:
                continue
            if current is None:
                line = f"host {host} lost (root alarm {root})"
                summary = {"window_s": window_s}
                current = self.open("fenced", "host", host, "", summary, [line], root)
            new = self.join(current, reports)
            self.raises += [alarms.child_raised(current, o, self.now, self.context) for o in new]

    def mass(
        self, suspects: set[Scope],
        holding: dict[Scope, list[tuple[Rule, list[Observation]]]], guard: MassEvent,
    ) -> None:  # fmt: skip
        current = self.book.get(f"mass/{alarms.MASS_KEY}/{alarms.MASS_KEY}")
        if not suspects:
            if current is not None:
                self.close(current, "suspect scopes back within the guard's limit")
            return
        names = sorted(f"{scope} {key}" for scope, key in suspects)
        counted = _union(reports for scope in sorted(holding) for _, reports in holding[scope])
        if current is None:
            summary = {"max_suspects": guard.max_suspects, "window_s": guard.window_s}
            line = f"{len(names)} scopes suspect within {guard.window_s:g} s"
            current = self.open(
                "mass", alarms.MASS_KEY, alarms.MASS_KEY, "mass_event", summary, [line]
            )
            before = None
        else:
            before = (current.suspects, current.severity)
        current.suspects = names
        self.join(current, counted, children=False)
        if before != (current.suspects, current.severity):
            current.changed = self.now
            self.raises.append(alarms.root_raised(current, self.now, self.context))

    def open(
        self, kind: str, scope: str, key: str, rule: str, summary: dict[str, Any],
        evidence: list[str], root: str | None = None,
    ) -> Correlation:  # fmt: skip
        identifier = alarms.correlation_id(kind, scope, key, self.now, root or "")
        corr = Correlation(
            identifier, kind, scope, key, rule, summary, self.now, self.now,
            root or identifier, evidence=evidence,
        )  # fmt: skip
        self.book[corr.slot] = corr
        return corr

    def join(
        self, corr: Correlation, reports: list[Observation], children: bool = True
    ) -> list[Observation]:
        """Add the reports `corr` has not counted yet; those it added."""
        known = set(corr.report_ids)
        new = [o for o in reports if o.report_id not in known]
        if not new:
            return []
        corr.changed = self.now
        for report in new:
            corr.report_ids.append(report.report_id)
            if children:
                corr.children[report.report_id] = alarms.child_id(corr.id, report.report_id)
        corr.vnfs = sorted({*corr.vnfs, *(o.vnf_instance_id for o in new)})
        corr.error_classes = sorted({*corr.error_classes, *(o.error_class for o in new)})
        corr.severity = alarms.worst(corr.severity, *(o.severity for o in new))
        first, last = new[0].observed, new[-1].observed  # reports come oldest first
        corr.first_observed = first if corr.first_observed is None else corr.first_observed
        corr.last_observed = last if corr.last_observed is None else max(last, corr.last_observed)
        return new

    def close(self, corr: Correlation, reason: str) -> None:
        corr.cleared = self.now
        corr.evidence.append(f"cleared {rfc3339(self.now)}: {reason}")
        ids = [*corr.children.values(), *([] if corr.kind == "fenced" else [corr.id])]
        self.clears += [alarms.cleared(corr, a, self.now, self.context) for a in ids]
        self.closed.append(corr)
        del self.book[corr.slot]


def _union(groups: Iterable[list[Observation]]) -> list[Observation]:
    """The reports of several lists, each once, oldest first."""
    unique = {o.report_id: o for reports in groups for o in reports}
    return sorted(unique.values(), key=lambda o: (o.observed, o.report_id))


def _copied(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    return list(value) if isinstance(value, list | tuple) else value


def replay(
    observations: Sequence[Observation],
    rules: Rules,
    evidence: Evidence = NO_EVIDENCE,
    step_s: float | None = None,
) -> list[ReplayEvent]:
    """What `step` would have raised and cleared over recorded reports: stepped at every
    report and every moment a window expires (exact), or every `step_s` seconds."""
    ordered = sorted(observations, key=lambda o: (o.observed, o.report_id))
    times = [o.observed for o in ordered]
    moments = _moments(ordered, rules)
    if step_s is not None and moments:
        if not step_s > 0:
            raise ValueError(f"step_s must be > 0, not {step_s!r}")
        count = math.ceil((moments[-1] - moments[0]) / step_s) + 1
        moments = [moments[0] + n * step_s for n in range(count)]
    book, events, context = Book(), [], Context()
    lookback = rules.horizon_s + 1.0  # older reports change nothing
    for now in moments:
        window = ordered[bisect_right(times, now - lookback) : bisect_right(times, now)]
        result = step(book, window, evidence, rules, now, context)
        events += [_event(now, "cleared", c) for c in result.closed]
        events += [
            _event(now, "raised", c)
            for slot, c in sorted(result.book.correlations.items())
            if slot not in book.correlations or book.correlations[slot].id != c.id
        ]
        book = result.book
    return events


def _event(at: float, event: str, corr: Correlation) -> ReplayEvent:
    return ReplayEvent(at, event, corr.kind, corr.scope, corr.key, corr.rule, tuple(corr.vnfs))


def _moments(ordered: Sequence[Observation], rules: Rules) -> list[float]:
    """Every moment a rule, the fenced reports or the mass guard can change."""
    windows = {r.window_s for r in rules.rules}
    guard = rules.mass_event.window_s if rules.mass_event else None
    moments: set[float] = set()
    for report in ordered:
        ends = [report.observed, *(_after(report.observed, w) for w in windows)]
        moments.update(ends)
        if guard is not None:
            moments.update(_after(end, guard) for end in ends)
    return sorted(moments)


def _after(moment: float, span: float) -> float:
    """The first float t with t - span >= moment: when something at `moment` leaves a
    `span`-long window."""
    later = moment + span
    while later - span < moment:
        later = math.nextafter(later, math.inf)
    while (earlier := math.nextafter(later, -math.inf)) - span >= moment:
        later = earlier
    return later
