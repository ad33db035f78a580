"""VNF error reports correlated into suspected NFVI faults: rules, the step function's SOL 003
alarms, lost hosts, the mass guard, replay, and a randomized check against a brute-force
oracle."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakit.resource_agents.health.constants import ALARM_CLEARED_NOTIFICATION, ALARM_NOTIFICATION
from hakit.resource_agents.health.correlation import (
    Book,
    Correlation,
    DisableService,
    Evidence,
    Observation,
    ReplayEvent,
    Rules,
    RulesError,
    StepResult,
    explain,
    parse_rules,
    replay,
    step,
)
from hakit.resource_agents.health.sol003 import Context, Outgoing

CONTEXT = Context("vim-1", "http://127.0.0.1:8797")
T0 = 1_800_000_000.0
CLASSES = ("compute", "network", "storage", "unknown")
HOST_RULE = {
    "name": "compute-host",
    "scope": "host",
    "error_classes": ["compute", "unknown"],
    "min_vnfs": 3,
    "window_s": 60,
}
RULES = parse_rules({"rules": [HOST_RULE]})


def report(
    n: int, vnf: str, host: str | None = "cmp1", at: float = 0.0, **scopes: str
) -> Observation:
    where = {"host": host, **scopes} if host else dict(scopes)
    return Observation(f"r{n}", vnf, "compute", "MAJOR", T0 + at, where)


def run(
    observations: list[Observation],
    at: float,
    book: Book | None = None,
    rules: Rules = RULES,
    lost: dict[str, str] | None = None,
) -> StepResult:
    return step(book or Book(), observations, Evidence(lost or {}), rules, T0 + at, CONTEXT)


def alarms(outgoing: list[Outgoing]) -> list[dict[str, Any]]:
    return [o.body["alarm"] for o in outgoing if o.notification_type == ALARM_NOTIFICATION]


def cleared_ids(outgoing: list[Outgoing]) -> list[str]:
    return [
        o.body["alarmId"] for o in outgoing if o.notification_type == ALARM_CLEARED_NOTIFICATION
    ]


def test_three_vnfs_on_a_host_raise_one_root_and_three_children() -> None:
    reports = [report(n, f"vnf{n}", at=n) for n in range(3)]
    result = run(reports, 2)
    root, *children = alarms(result.outgoing)
    assert root["isRootCause"] is True and root["managedObjectId"] == "cmp1"
    assert root["rootCauseFaultyResource"] == {
        "faultyResource": {
            "vimConnectionId": "vim-1",
            "resourceId": "cmp1",
            "vimLevelResourceType": "host",
        },
        "faultyResourceType": "COMPUTE",
    }
    assert root["probableCause"] == (
        "Suspected NFVI fault: 3 VNFs reported compute errors on host cmp1 within 60 s "
        "(rule compute-host)"
    )
    assert root["perceivedSeverity"] == "MAJOR" and root["eventType"] == "EQUIPMENT_ALARM"
    assert [c["managedObjectId"] for c in children] == ["vnf0", "vnf1", "vnf2"]
    assert all(c["isRootCause"] is False for c in children)
    assert all(c["correlatedAlarmIds"] == [root["id"]] for c in children)
    assert root["correlatedAlarmIds"] == [c["id"] for c in children]
    assert all(f"report r{n}" in c["faultDetails"] for n, c in enumerate(children))
    assert all(c["rootCauseFaultyResource"] == root["rootCauseFaultyResource"] for c in children)
    assert result.actions == [] and result.closed == []
    (corr,) = result.book.correlations.values()
    assert (corr.kind, corr.scope, corr.key, corr.id) == ("suspect", "host", "cmp1", root["id"])
    assert corr.vnfs == ["vnf0", "vnf1", "vnf2"] and corr.report_ids == ["r0", "r1", "r2"]


def test_one_vnf_three_times_or_three_hosts_raise_nothing() -> None:
    same_vnf = [report(n, "vnf0", at=n) for n in range(3)]
    assert run(same_vnf, 2).outgoing == []
    spread = [report(n, f"vnf{n}", host=f"cmp{n}", at=n) for n in range(3)]
    result = run(spread, 2)
    assert result.outgoing == [] and result.book.correlations == {}


def test_unresolved_reports_and_other_classes_never_count() -> None:
    unresolved = [report(n, f"vnf{n}", host=None, at=n) for n in range(3)]
    assert run(unresolved, 2).outgoing == []
    storage = [
        Observation(f"r{n}", f"vnf{n}", "storage", "MAJOR", T0 + n, {"host": "cmp1"})
        for n in range(3)
    ]
    assert run(storage, 2).outgoing == []


def test_later_reports_join_and_window_expiry_clears_children_then_root() -> None:
    reports = [report(n, f"vnf{n}", at=n) for n in range(3)]
    first = run(reports, 2)
    root_id = alarms(first.outgoing)[0]["id"]
    reports.append(report(3, "vnf0", at=30))
    joined = run(reports, 30, first.book)
    root, child = alarms(joined.outgoing)
    assert root["id"] == root_id and child["correlatedAlarmIds"] == [root_id]
    assert len(root["correlatedAlarmIds"]) == 4 and root["correlatedAlarmIds"][-1] == child["id"]
    assert root["alarmRaisedTime"] != root["alarmChangedTime"]
    assert run(reports, 59.5, joined.book).outgoing == []  # all three VNFs still in the window
    expired = run(reports, 61, joined.book)
    raised_ids = [a["id"] for a in alarms(first.outgoing + joined.outgoing)]
    assert cleared_ids(expired.outgoing) == [*raised_ids[1:4], child["id"], root_id]
    assert expired.book.correlations == {}
    (closed,) = expired.closed
    assert closed.cleared == T0 + 61 and closed.id == root_id


def test_a_lost_hosts_reports_become_children_of_its_root() -> None:
    reports = [report(n, f"vnf{n}", at=n) for n in range(3)]
    result = run(reports, 2, lost={"cmp1": "host-root"})
    children = alarms(result.outgoing)
    assert len(children) == 3 and all(c["isRootCause"] is False for c in children)
    assert all(c["correlatedAlarmIds"] == ["host-root"] for c in children)
    (corr,) = result.book.correlations.values()
    assert corr.kind == "fenced" and corr.root_alarm_id == "host-root"
    assert "host cmp1 lost (root alarm host-root)" in corr.evidence
    back = run(reports, 3, result.book)  # the host is back: its children clear, a suspect rises
    assert cleared_ids(back.outgoing) == [c["id"] for c in children]
    assert [c.kind for c in back.book.correlations.values()] == ["suspect"]


def test_a_suspicion_on_a_host_that_becomes_lost_moves_under_its_root() -> None:
    reports = [report(n, f"vnf{n}", at=n) for n in range(3)]
    suspect = run(reports, 2)
    raised = [a["id"] for a in alarms(suspect.outgoing)]
    lost = run(reports, 3, suspect.book, lost={"cmp1": "host-root"})
    assert cleared_ids(lost.outgoing) == [*raised[1:], raised[0]]
    moved = alarms(lost.outgoing)
    assert [a["managedObjectId"] for a in moved] == ["vnf0", "vnf1", "vnf2"]
    assert all(a["correlatedAlarmIds"] == ["host-root"] for a in moved)
    assert [c.kind for c in lost.closed] == ["suspect"]
    assert "lost (root alarm host-root)" in lost.closed[0].evidence[-1]


def test_a_lost_hosts_reports_count_for_no_other_scope() -> None:
    physnet_rule = {**HOST_RULE, "name": "net", "scope": "physnet"}
    rules = parse_rules({"rules": [physnet_rule]})
    reports = [report(n, f"vnf{n}", host=f"cmp{n}", at=n, physnet="p1") for n in range(3)]
    root = alarms(run(reports, 2, rules=rules).outgoing)[0]
    assert root["managedObjectId"] == "p1" and root["eventType"] == "COMMUNICATIONS_ALARM"
    result = run(reports, 2, rules=rules, lost={"cmp0": "root0"})
    (child,) = alarms(result.outgoing)
    assert child["managedObjectId"] == "vnf0" and child["correlatedAlarmIds"] == ["root0"]


def test_a_new_root_alarm_for_a_lost_host_takes_its_children() -> None:
    reports = [report(0, "vnf0")]
    first = run(reports, 1, lost={"cmp1": "root-a"})
    second = run(reports, 2, first.book, lost={"cmp1": "root-b"})
    (old,) = alarms(first.outgoing)
    (new,) = alarms(second.outgoing)
    assert cleared_ids(second.outgoing) == [old["id"]] and new["id"] != old["id"]
    assert new["correlatedAlarmIds"] == ["root-b"]
    assert run(reports, 61, second.book, lost={"cmp1": "root-b"}).book.correlations == {}


def four_suspect_hosts() -> list[Observation]:
    return [
        report(10 * h + n, f"vnf{h}-{n}", host=f"cmp{h}", at=h + n)
        for h in range(4)
        for n in range(3)
    ]


def test_the_mass_guard_raises_one_alarm_and_no_action() -> None:
    rules = parse_rules(
        {
            "rules": [HOST_RULE],
            "mass_event": {"max_suspects": 3, "window_s": 120},
            "disable_compute_service": True,
        }
    )
    reports = four_suspect_hosts()
    before = run(reports[:9], 4, rules=rules)  # three hosts: individual alarms and actions
    assert [a.host for a in before.actions] == ["cmp0", "cmp1", "cmp2"]
    result = run(reports, 5, before.book, rules=rules)
    assert len(cleared_ids(result.outgoing)) == 12  # three roots and their children
    (mass,) = alarms(result.outgoing)
    assert mass["managedObjectId"] == "nfvi" and mass["isRootCause"] is True
    assert mass["probableCause"] == (
        "Suspected mass NFVI event: 4 scopes suspect within 120 s "
        "(host cmp0, host cmp1, host cmp2, host cmp3)"
    )
    assert result.actions == []
    assert [c.kind for c in result.book.correlations.values()] == ["mass"]
    quiet = run(reports, 5 + 60 + 120, result.book, rules=rules)  # every window over
    assert cleared_ids(quiet.outgoing) == [mass["id"]] and quiet.book.correlations == {}


def test_disable_compute_service_only_for_raised_host_suspects() -> None:
    reports = [report(n, f"vnf{n}", at=n, physnet="physnet1", backend="ceph") for n in range(3)]
    physnet_rule = {**HOST_RULE, "name": "net", "scope": "physnet", "error_classes": []}
    backend_rule = {**physnet_rule, "name": "disk", "scope": "backend"}
    rules = parse_rules(
        {"rules": [HOST_RULE, physnet_rule, backend_rule], "disable_compute_service": True}
    )
    result = run(reports, 2, rules=rules)
    reason = (
        "Suspected NFVI fault: 3 VNFs reported compute errors on host cmp1 within 60 s "
        "(rule compute-host)"
    )
    assert result.actions == [DisableService("cmp1", reason)]
    roots = [a for a in alarms(result.outgoing) if a["isRootCause"]]
    resources = [r["rootCauseFaultyResource"]["faultyResource"] for r in roots]
    assert [(r["vimLevelResourceType"], r["resourceId"]) for r in resources] == [
        ("backend", "ceph"),
        ("host", "cmp1"),
        ("physnet", "physnet1"),
    ]
    types = [r["rootCauseFaultyResource"]["faultyResourceType"] for r in roots]
    assert types == ["STORAGE", "COMPUTE", "NETWORK"]
    assert run(reports, 3, result.book, rules=rules).actions == []  # once, at the raise
    assert run(reports, 2).actions == []  # not asked for


def test_the_same_inputs_give_the_same_notifications() -> None:
    reports = [report(n, f"vnf{n}", at=n) for n in range(4)]
    first = run(reports[:3], 2)
    snapshot = json.dumps(first.book.as_dict())
    again = run(list(reversed(reports[:3])), 2)
    assert first.outgoing == again.outgoing and first.book == again.book
    later = [run(reports, 5, first.book) for _ in range(2)]
    assert later[0].outgoing == later[1].outgoing
    assert json.dumps(first.book.as_dict()) == snapshot  # step changes nothing it is given
    ids = [o.notification_id for o in first.outgoing + later[0].outgoing]
    assert len(set(ids)) == len(ids)


def test_book_and_correlations_survive_json() -> None:
    result = run([report(n, f"vnf{n}", at=n) for n in range(3)], 2)
    stored = json.loads(json.dumps(result.book.as_dict()))
    assert Book.from_dict(stored) == result.book
    (corr,) = result.book.correlations.values()
    assert Correlation.from_dict(json.loads(json.dumps(corr.as_dict()))) == corr


def test_explain_names_the_rule_window_vnfs_reports_and_evidence() -> None:
    reports = [report(n, f"vnf{n}", at=n) for n in range(3)]
    (corr,) = run(reports, 61, run(reports, 2).book).closed
    lines = explain(corr)
    assert lines[0].startswith(f"suspect host cmp1: alarm {corr.id}, raised ")
    assert "cleared" in lines[0]
    assert (
        "rule compute-host: scope host, classes compute, unknown, at least 3 distinct VNFs "
        "within 60 s" in lines
    )
    assert (
        "window at the last change: (2027-01-15T07:59:02.000000Z, 2027-01-15T08:00:02.000000Z]"
        in lines
    )
    assert "VNFs counted (3): vnf0, vnf1, vnf2" in lines
    assert "reports counted (3): r0, r1, r2" in lines
    assert lines[-1] == "evidence: cleared 2027-01-15T08:01:01.000000Z: no rule holds any more"


def test_replay_reports_raises_and_clears_at_exact_moments() -> None:
    reports = [report(n, f"vnf{n}", at=10 * n) for n in range(3)]
    reports.append(report(9, "vnfX", host="cmp9", at=0))
    vnfs = ("vnf0", "vnf1", "vnf2")
    expected = [
        ReplayEvent(T0 + 20, "raised", "suspect", "host", "cmp1", "compute-host", vnfs),
        ReplayEvent(T0 + 60, "cleared", "suspect", "host", "cmp1", "compute-host", vnfs),
    ]
    assert replay(reports, RULES) == expected
    sampled = replay(reports, RULES, step_s=7)
    assert [(e.event, e.at - T0) for e in sampled] == [("raised", 21), ("cleared", 63)]
    fenced = replay(reports, RULES, Evidence({"cmp1": "root"}))
    assert [(e.event, e.kind, e.at - T0) for e in fenced] == [
        ("raised", "fenced", 0),
        ("cleared", "fenced", 80),
    ]


def test_rules_error_names_every_problem() -> None:
    text = json.dumps(
        {
            "rules": [
                HOST_RULE,
                {**HOST_RULE, "name": "b", "min_vnfs": 0},
                {**HOST_RULE, "name": "c", "scope": "rack", "error_classes": ["disk"]},
                {**HOST_RULE, "window_s": -1, "extra": 1},
                {"name": "-bad", "scope": "host", "min_vnfs": True, "window_s": "60"},
            ],
            "mass_event": {"max_suspects": 3},
            "disable_compute_service": "yes",
        }
    )
    with pytest.raises(RulesError) as caught:
        parse_rules(text)
    assert caught.value.problems == [
        "rules[1].min_vnfs: 0 is not >= 1",
        "rules[2].scope: 'rack' is not host, physnet or backend",
        "rules[2].error_classes[0]: 'disk' is not compute, network, storage or unknown",
        "rules[3]: unknown key 'extra'",
        "rules[3].window_s: -1 is not > 0",
        "rules[4].name: '-bad' does not match [A-Za-z0-9][A-Za-z0-9_.-]*",
        "rules[4].min_vnfs: true is not an integer",
        "rules[4].window_s: '60' is not a number",
        "mass_event.window_s: missing",
        "disable_compute_service: 'yes' is not true or false",
    ]
    assert str(caught.value) == "; ".join(caught.value.problems)
    with pytest.raises(RulesError, match="repeats rules\\[0\\]'s"):
        parse_rules({"rules": [HOST_RULE, HOST_RULE]})
    for bad in ("{", "[]", '{"rules": [{"window_s": NaN}]}', b"\xff"):
        with pytest.raises(RulesError):
            parse_rules(bad)


def test_rules_round_trip() -> None:
    rules = parse_rules({"rules": [HOST_RULE], "mass_event": {"max_suspects": 2, "window_s": 1.5}})
    assert parse_rules(json.dumps(rules.as_dict())) == rules
    assert rules.horizon_s == 61.5 and rules.longest_window_s == 60
    assert parse_rules('{"rules": []}') == Rules()


LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from([*CLASSES, "host", "physnet", "backend", "r1"])
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)
RULE_LIKE = st.dictionaries(
    st.sampled_from([*HOST_RULE, "other"]),
    LEAVES | st.lists(st.sampled_from([*CLASSES, "disk", 1]), max_size=3),
)
RULES_LIKE = st.dictionaries(
    st.sampled_from(["rules", "mass_event", "disable_compute_service", "other"]),
    st.lists(RULE_LIKE, max_size=3)
    | st.dictionaries(st.sampled_from(["max_suspects", "window_s", "x"]), LEAVES)
    | LEAVES,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES | RULES_LIKE)
def test_any_json_gives_rules_or_rules_error(value: object) -> None:
    for source in (value, json.dumps(value)):
        try:
            rules = parse_rules(source)  # type: ignore[arg-type]
        except RulesError as error:
            assert error.problems and str(error) == "; ".join(error.problems)
        else:
            assert parse_rules(json.loads(json.dumps(rules.as_dict()))) == rules


# The randomized property: alarms raised iff a brute-force oracle says a window held.


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[tuple[str, str, str, float]], dict[str, Any]]:
    hosts = [f"cmp{n}" for n in range(draw(st.integers(2, 4)))]
    vnfs = [f"vnf{n}" for n in range(draw(st.integers(1, 8)))]
    one = st.tuples(
        st.sampled_from(hosts),
        st.sampled_from(vnfs),
        st.sampled_from(CLASSES),
        st.integers(0, 600).map(lambda half: half / 2),  # 0 to 300 s, exact in binary
    )
    rule = {
        "name": "r",
        "scope": "host",
        "error_classes": draw(st.lists(st.sampled_from(CLASSES), unique=True, max_size=3)),
        "min_vnfs": draw(st.integers(1, 4)),
        "window_s": draw(st.integers(10, 240)) / 2,  # 5 to 120 s
    }
    return draw(st.lists(one, max_size=24)), rule


def oracle(reports: list[tuple[str, str, str, float]], rule: dict[str, Any]) -> set[str]:
    """Hosts for which, at some moment t, enough distinct VNFs reported in (t - window, t].

    A count only rises when a report arrives, so the report times are the moments to try."""
    found = set()
    for _, _, _, t in reports:
        for host in {r[0] for r in reports}:
            vnfs = {
                vnf
                for where, vnf, error, at in reports
                if where == host
                and (not rule["error_classes"] or error in rule["error_classes"])
                and t - rule["window_s"] < at <= t
            }
            if len(vnfs) >= rule["min_vnfs"]:
                found.add(host)
    return found


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(streams())
def test_host_alarms_are_raised_iff_the_oracle_says_so(
    stream: tuple[list[tuple[str, str, str, float]], dict[str, Any]],
) -> None:
    reports, rule = stream
    rules = parse_rules({"rules": [rule]})
    observations = [
        Observation(f"r{n}", vnf, error, "MINOR", at, {"host": host})
        for n, (host, vnf, error, at) in enumerate(reports)
    ]
    moments = sorted({at for *_, at in reports} | {at + rule["window_s"] for *_, at in reports})
    book = Book()
    open_roots: dict[str, str] = {}  # host → its open root alarm
    ended: set[str] = set()
    raised_for: set[str] = set()
    for now in moments:
        result = step(book, observations, Evidence(), rules, now, CONTEXT)
        for alarm_id in cleared_ids(result.outgoing):
            if alarm_id in open_roots.values():
                open_roots = {h: a for h, a in open_roots.items() if a != alarm_id}
                ended.add(alarm_id)
        for alarm in alarms(result.outgoing):
            if not alarm["isRootCause"]:
                continue
            host = alarm["managedObjectId"]
            assert alarm["id"] not in ended  # never raised again once cleared
            assert open_roots.setdefault(host, alarm["id"]) == alarm["id"]  # one per host
            raised_for.add(host)
        book = result.book
    assert raised_for == oracle(reports, rule)
    assert book.correlations == {} and open_roots == {}  # every window has ended
