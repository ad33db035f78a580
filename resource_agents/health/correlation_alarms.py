"""SOL 003 alarms for `correlation`'s correlations: bodies shaped like `sol003`'s, ids, and
`explain`, the human account of one correlation.

A correlation's root alarm (suspect, mass) names the scope key as its managed object and
faulty resource; each child alarm names the reporting VNF and correlates to the root. A
"fenced" correlation raises children only: their root is the lost host's own alarm.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from hakit.resource_agents.health.model import rfc3339
from hakit.resource_agents.health.sol003 import (
    ALARM_NAMESPACE,
    Context,
    FaultyResource,
    Outgoing,
    alarm_body,
    cleared_notification,
    raised_notification,
)

if TYPE_CHECKING:  # no import cycle: correlation imports this module
    from hakit.resource_agents.health.correlation import Correlation, Observation

MASS_KEY = "nfvi"
RESOURCE_TYPES = {"host": "COMPUTE", "physnet": "NETWORK", "backend": "STORAGE"}
SCOPE_CLASSES = {"host": "compute", "physnet": "network", "backend": "storage"}
EVENT_TYPES = {
    "compute": "EQUIPMENT_ALARM",
    "network": "COMMUNICATIONS_ALARM",
    "storage": "EQUIPMENT_ALARM",
    "unknown": "PROCESSING_ERROR_ALARM",
}
FAULT_TYPES = {"suspect": "SUSPECTED_NFVI_FAULT", "mass": "MASS_NFVI_EVENT"}
CHILD_FAULT_TYPE = "VNF_ERROR_REPORT"
SEVERITY_RANK = {"CRITICAL": 5, "MAJOR": 4, "MINOR": 3, "WARNING": 2, "INDETERMINATE": 1}


def correlation_id(kind: str, scope: str, key: str, raised: float, parent: str = "") -> str:
    """A correlation's id (its root alarm's, for suspect and mass; for fenced, `parent` is
    the lost host's alarm)."""
    name = f"{kind}/{scope}/{key}/{raised:.6f}" + (f"/{parent}" if parent else "")
    return str(uuid.uuid5(ALARM_NAMESPACE, name))


def child_id(correlation: str, report_id: str) -> str:
    """The alarm id of one report's child alarm in a correlation."""
    return str(uuid.uuid5(uuid.UUID(correlation), f"report/{report_id}"))


def worst(*severities: str) -> str:
    """The most severe of SOL 003 perceived severities (unknown ones rank lowest)."""
    return max(severities, key=lambda s: SEVERITY_RANK.get(s, 0), default="INDETERMINATE")


def probable_cause(corr: Correlation) -> str:
    if corr.kind == "mass":
        named = ", ".join(corr.suspects[:20]) + (", …" if len(corr.suspects) > 20 else "")
        window = float(corr.rule_summary.get("window_s", 0))
        return (
            f"Suspected mass NFVI event: {len(corr.suspects)} scopes suspect within "
            f"{window:g} s ({named})"
        )
    window = float(corr.rule_summary.get("window_s", 0))
    classes = "/".join(corr.error_classes) or "unknown"
    vnfs = f"{len(corr.vnfs)} VNF{'' if len(corr.vnfs) == 1 else 's'}"
    return (
        f"Suspected NFVI fault: {vnfs} reported {classes} errors on {corr.scope} {corr.key} "
        f"within {window:g} s (rule {corr.rule})"
    )


def root_raised(corr: Correlation, now: float, context: Context) -> Outgoing:
    """AlarmNotification for a suspect or mass root alarm, raised or changed at `now`."""
    if corr.kind == "mass":
        event_type = "EQUIPMENT_ALARM"
        details = [f"suspect {suspect}" for suspect in corr.suspects]
    else:
        event_type = EVENT_TYPES[SCOPE_CLASSES.get(corr.scope, "unknown")]
        details = [f"{corr.scope} {corr.key}", f"VNFs: {', '.join(corr.vnfs)}"]
    event_time = corr.last_observed if corr.last_observed is not None else now
    body = _alarm(
        corr,
        corr.id,
        corr.key,
        severity=corr.severity,
        event_type=event_type,
        fault_type=FAULT_TYPES[corr.kind],
        probable_cause=probable_cause(corr),
        root=True,
        correlated=list(corr.children.values()),
        details=[*details, *corr.evidence],
        raised=corr.raised,
        event_time=event_time,
        context=context,
    )
    return _notify(corr, body, now, event_time)


def child_raised(corr: Correlation, report: Observation, now: float, context: Context) -> Outgoing:
    """AlarmNotification for one report's child alarm, raised at `now`."""
    if corr.kind == "fenced":
        cause = f"VNF reported a {report.error_class} error; its host {corr.key} is lost"
    else:
        cause = (
            f"VNF reported a {report.error_class} error; suspected NFVI fault on "
            f"{corr.scope} {corr.key}"
        )
    body = _alarm(
        corr,
        corr.children[report.report_id],
        report.vnf_instance_id,
        severity=report.severity,
        event_type=EVENT_TYPES.get(report.error_class, "PROCESSING_ERROR_ALARM"),
        fault_type=CHILD_FAULT_TYPE,
        probable_cause=cause,
        root=False,
        correlated=[corr.root_alarm_id],
        details=[f"report {report.report_id}", f"{corr.scope} {corr.key}"],
        raised=now,
        event_time=report.observed,
        context=context,
    )
    return _notify(corr, body, now, report.observed)


def cleared(corr: Correlation, alarm_id: str, now: float, context: Context) -> Outgoing:
    """AlarmClearedNotification for one of the correlation's alarms."""
    return cleared_notification(corr.key, alarm_id, corr.severity, now, now, context)


def _alarm(
    corr: Correlation,
    identifier: str,
    managed_object: str,
    *,
    severity: str,
    event_type: str,
    fault_type: str,
    probable_cause: str,
    root: bool,
    correlated: list[str],
    details: list[str],
    raised: float,
    event_time: float,
    context: Context,
) -> dict[str, Any]:
    if corr.kind == "mass":
        level = MASS_KEY
        scopes = {suspect.split(" ", 1)[0] for suspect in corr.suspects}
        resource_type = next((RESOURCE_TYPES[s] for s in RESOURCE_TYPES if s in scopes), "COMPUTE")
    else:
        level, resource_type = corr.scope, RESOURCE_TYPES[corr.scope]
    return alarm_body(
        identifier,
        managed_object,
        FaultyResource(corr.key, level, resource_type),
        raised=raised,
        changed=corr.changed,
        severity=severity,
        event_type=event_type,
        fault_type=fault_type,
        probable_cause=probable_cause,
        root=root,
        correlated=correlated,
        details=details,
        event_time=event_time,
        context=context,
    )


def _notify(corr: Correlation, body: dict[str, Any], now: float, event_time: float) -> Outgoing:
    return raised_notification(body, corr.key, now, now, event_time)


def explain(corr: Correlation) -> list[str]:
    """Human lines: what the correlation is, its rule and window, what it counted, why."""
    state = "open" if corr.cleared is None else f"cleared {rfc3339(corr.cleared)}"
    lines = [
        f"{corr.kind} {corr.scope} {corr.key}: alarm {corr.root_alarm_id}, raised "
        f"{rfc3339(corr.raised)}, last changed {rfc3339(corr.changed)}, {state}"
    ]
    summary = corr.rule_summary
    window = float(summary.get("window_s", 0))
    if corr.kind == "suspect":
        classes = ", ".join(summary.get("error_classes") or []) or "any"
        lines.append(
            f"rule {corr.rule}: scope {summary.get('scope')}, classes {classes}, at least "
            f"{summary.get('min_vnfs')} distinct VNFs within {window:g} s"
        )
    elif corr.kind == "mass":
        lines.append(
            f"mass event guard: more than {summary.get('max_suspects')} suspect scopes "
            f"within {window:g} s"
        )
        lines.append(f"suspect scopes ({len(corr.suspects)}): {', '.join(corr.suspects)}")
    else:
        lines.append(f"reports about a lost host within the longest rule window, {window:g} s")
    lines.append(
        f"window at the last change: ({rfc3339(corr.changed - window)}, {rfc3339(corr.changed)}]"
    )
    if corr.first_observed is not None and corr.last_observed is not None:
        first, last = rfc3339(corr.first_observed), rfc3339(corr.last_observed)
        lines.append(f"reports observed from {first} to {last}")
    lines.append(f"VNFs counted ({len(corr.vnfs)}): {', '.join(corr.vnfs) or '-'}")
    lines.append(f"reports counted ({len(corr.report_ids)}): {', '.join(corr.report_ids) or '-'}")
    return lines + [f"evidence: {line}" for line in corr.evidence]
