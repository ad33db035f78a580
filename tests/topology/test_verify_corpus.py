"""Broken topologies `validate` must reject, each with the object it names; and whatever
crm_verify rejects in a rendered CIB, `validate` rejects too (real Pacemaker tools)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hakit.ocf import cluster
from hakit.tools.topology.load import load
from hakit.tools.topology.render import render, to_text
from hakit.tools.topology.validate import validate

HEAD = """cluster:
  name: t
  properties: {stonith-enabled: false}
nodes: [{name: n1}, {name: n2}]
"""
DUMMY = "ocf:pacemaker:Dummy"


def res(extra: str = "", name: str = "a") -> str:
    return f"resources:\n  - {{name: {name}, agent: {DUMMY}{', ' + extra if extra else ''}}}\n"


def fenced(extra: str = "") -> str:
    return (
        "cluster: {name: t, properties: {stonith-enabled: true}}\n"
        "nodes: [{name: n1}, {name: n2}]\n"
        "fencing:\n  devices:\n"
        f"    - {{name: f1, agent: fence_dummy{', ' + extra if extra else ''}}}\n"
    )


# (what is wrong, the topology, a part of the problem expected, the object it names)
CORPUS: list[tuple[str, str, str, str]] = [
    ("yaml syntax", "cluster: {name: t\n", "expected ','", "(YAML)"),
    ("tab indentation", "cluster:\n\tname: t\n", "", "(YAML)"),
    ("empty file", "", "the file is empty", "(top)"),
    ("not a mapping", "- a\n- b\n", "expected a mapping", "(top)"),
    ("no cluster", "nodes: [{name: n1}]\n", "missing cluster", "cluster"),
    ("cluster name missing", "cluster: {}\n", "missing name", "cluster"),
    ("unknown top key", HEAD + "resorces: []\n", "unknown key 'resorces'", "resorces"),
    ("resources not a list", HEAD + "resources: {a: 1}\n", "expected a list", "resources"),
    ("unknown resource key", HEAD + res("parmas: {}"), "unknown key 'parmas'", "parmas"),
    ("resource without name", HEAD + f"resources: [{{agent: {DUMMY}}}]\n", "missing name", ""),
    ("duplicate name", HEAD + res() + f"  - {{name: a, agent: {DUMMY}}}\n", "already used", "a"),
    (
        "check_level text",
        HEAD + res("ops: [{name: monitor, check_level: hi}]"),
        "not an integer",
        "check_level",
    ),
    (
        "op timeout text",
        HEAD + res("ops: [{name: monitor, interval: 10s, timeout: abc}]"),
        "not a duration",
        "timeout",
    ),
    (
        "op interval text",
        HEAD + res("ops: [{name: monitor, interval: often}]"),
        "not a duration",
        "interval",
    ),
    (
        "op on_fail",
        HEAD + res("ops: [{name: monitor, interval: 10s, on_fail: explode}]"),
        "not one of",
        "on_fail",
    ),
    (
        "op role",
        HEAD + res("ops: [{name: monitor, interval: 10s, role: Boss}]"),
        "not one of",
        "role",
    ),
    (
        "two monitors same interval",
        HEAD + res("ops: [{name: monitor, interval: 10s}, {name: monitor, interval: 10s}]"),
        "a second monitor",
        "ops",
    ),
    ("target-role", HEAD + res("meta: {target-role: Running}"), "not one of", "target-role"),
    ("is-managed", HEAD + res("meta: {is-managed: maybe}"), "not a boolean", "is-managed"),
    (
        "migration-threshold",
        HEAD + res("meta: {migration-threshold: lots}"),
        "not a score",
        "migration-threshold",
    ),
    (
        "failure-timeout",
        HEAD + res("meta: {failure-timeout: soon}"),
        "not a duration",
        "failure-timeout",
    ),
    (
        "resource-stickiness",
        HEAD + res("meta: {resource-stickiness: high}"),
        "not a score",
        "resource-stickiness",
    ),
    ("priority", HEAD + res("meta: {priority: top}"), "not an integer", "priority"),
    (
        "clone meta",
        HEAD + res("clone: {meta: {interleave: perhaps}}"),
        "not a boolean",
        "interleave",
    ),
    ("clone max text", HEAD + res("clone: {max: all}"), "not an integer", "max"),
    (
        "no-quorum-policy",
        HEAD.replace("stonith-enabled: false", "stonith-enabled: false, no-quorum-policy: panic"),
        "not one of",
        "no-quorum-policy",
    ),
    (
        "stonith-enabled",
        HEAD.replace("stonith-enabled: false", "stonith-enabled: sometimes"),
        "not a boolean",
        "stonith-enabled",
    ),
    (
        "stonith-timeout",
        fenced().replace("stonith-enabled: true", "stonith-enabled: true, stonith-timeout: long"),
        "not a duration",
        "stonith-timeout",
    ),
    (
        "cluster-recheck-interval",
        HEAD.replace(
            "stonith-enabled: false", "stonith-enabled: false, cluster-recheck-interval: 15 weeks"
        ),
        "",
        "cluster-recheck-interval",
    ),
    (
        "property typo",
        HEAD.replace("stonith-enabled: false", "stonith-enabled: false, no-quorum-polcy: stop"),
        "no cluster property",
        "no-quorum-polcy",
    ),
    (
        "batch-limit",
        HEAD.replace("stonith-enabled: false", "stonith-enabled: false, batch-limit: many"),
        "not an integer",
        "batch-limit",
    ),
    (
        "rsc defaults",
        HEAD + "defaults: {resources: {resource-stickiness: sticky}}\n",
        "not a score",
        "resource-stickiness",
    ),
    (
        "op defaults",
        HEAD + "defaults: {operations: {timeout: forever}}\n",
        "not a duration",
        "timeout",
    ),
    (
        "no such agent",
        HEAD + "resources: [{name: a, agent: 'ocf:heartbeat:NoSuchAgent'}]\n",
        "not installed",
        "agent",
    ),
    (
        "unknown agent parameter",
        HEAD + res("params: {stat: /tmp/x}"),
        "no parameter 'stat'",
        "stat",
    ),
    (
        "missing required parameter",
        HEAD + "resources: [{name: ip, agent: 'ocf:heartbeat:IPaddr2'}]\n",
        "required parameter 'ip'",
        "params",
    ),
    (
        "integer parameter",
        HEAD
        + "resources: [{name: ip, agent: 'ocf:heartbeat:IPaddr2', params: {ip: 192.0.2.1, arp_count: lots}}]\n",
        "not an integer",
        "arp_count",
    ),
    ("no template", HEAD + "resources: [{name: a, template: tmpl}]\n", "", "template"),
    (
        "group member missing",
        HEAD + res() + "groups: [{name: g, members: [a, b]}]\n",
        "no resource named 'b'",
        "members",
    ),
    (
        "order to nothing",
        HEAD + res() + "constraints: {orders: [{first: a, then: b}]}\n",
        "no resource 'b'",
        "then",
    ),
    (
        "location on unknown node",
        HEAD + res() + "constraints: {locations: [{resource: a, node: n9, score: 10}]}\n",
        "no node 'n9'",
        "node",
    ),
    (
        "location score text",
        HEAD + res() + "constraints: {locations: [{resource: a, node: n1, score: lots}]}\n",
        "",
        "score",
    ),
    (
        "colocation unknown",
        HEAD + res() + "constraints: {colocations: [{resource: a, with: zz}]}\n",
        "",
        "with",
    ),
    (
        "rule syntax",
        HEAD
        + res()
        + "constraints: {locations: [{resource: a, rule: 'openstack-role eq', score: 10}]}\n",
        "rule",
        "rule",
    ),
    (
        "ticket unknown resource",
        HEAD + res() + "constraints: {tickets: [{ticket: t1, resource: zz}]}\n",
        "",
        "resource",
    ),
    (
        "tag unknown resource",
        HEAD + res() + "tags: [{name: tg, resources: [a, zz]}]\n",
        "",
        "resources",
    ),
    (
        "fence agent unknown",
        fenced().replace("fence_dummy", "fence_nonesuch"),
        "not installed",
        "agent",
    ),
    (
        "fence pcmk_delay_max",
        fenced("params: {pcmk_delay_max: later}"),
        "not a duration",
        "pcmk_delay_max",
    ),
    (
        "fence level unknown device",
        fenced() + "  levels: [{index: 1, target: n1, devices: [f2]}]\n",
        "no fencing device 'f2'",
        "devices",
    ),
    (
        "fence level unknown node",
        fenced() + "  levels: [{index: 1, target: n7, devices: [f1]}]\n",
        "",
        "target",
    ),
    (
        "stonith without devices",
        "cluster: {name: t, properties: {stonith-enabled: true}}\nnodes: [{name: n1}]\n",
        "STONITH",
        "stonith-enabled",
    ),
    ("stonith by default", "cluster: {name: t}\nnodes: [{name: n1}]\n", "STONITH", "cluster"),
    ("acl unknown role", HEAD + "acls: {users: [{name: bob, roles: [admin]}]}\n", "", "roles"),
    (
        "alert select",
        HEAD + "alerts: [{name: al, path: /bin/true, select: [everything]}]\n",
        "not one of",
        "select",
    ),
    (
        "bundle runtime",
        HEAD + "bundles: [{name: b, image: img, runtime: lxc}]\n",
        "not one of",
        "runtime",
    ),
    (
        "node utilization text",
        HEAD.replace("{name: n2}", "{name: n2, utilization: {cpu: many}}"),
        "not an integer",
        "cpu",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "where"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_validate_rejects_and_names_the_object(
    tmp_path: Path, text: str, expected: str, where: str
) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    problems = [str(p) for p in validate(path).problems]
    assert problems, f"accepted:\n{text}"
    assert any(expected in p and where in p for p in problems), problems


def test_every_problem_of_a_file_comes_in_one_pass(tmp_path: Path) -> None:
    """Problems of different kinds (types, names, values, agents) in one report; fixing
    exactly those leaves a valid file."""
    broken = HEAD + (
        f"resources:\n"
        f"  - {{name: a, agent: {DUMMY}, ops: [{{name: monitor, interval: 10s, timeout: x}}]}}\n"
        f"  - {{name: b, agent: {DUMMY}, params: {{stat: 1}}, meta: {{target-role: Up}}}}\n"
        f"  - {{name: c, agent: {DUMMY}, ops: 3}}\n"
        "groups: [{name: g, members: [a, zz]}]\n"
        "constraints: {orders: [{first: a, then: c}]}\n"
    )
    fixed = HEAD + (
        f"resources:\n"
        f"  - {{name: a, agent: {DUMMY}, ops: [{{name: monitor, interval: 10s, timeout: 20s}}]}}\n"
        f"  - {{name: b, agent: {DUMMY}, params: {{state: 1}}, meta: {{target-role: Started}}}}\n"
        f"  - {{name: c, agent: {DUMMY}, ops: []}}\n"
        "groups: [{name: g, members: [a]}]\n"
        "constraints: {orders: [{first: a, then: c}]}\n"
    )
    path = tmp_path / "t.yaml"
    path.write_text(broken)
    loaded = validate(path)
    found = sorted(p.where for p in loaded.problems)
    assert len(found) == 5, found
    for part in ("timeout", "stat", "target-role", "ops", "members"):
        assert any(part in where for where in found), (part, found)
    assert any("crm_verify" in s for s in loaded.skipped)  # said, not silently dropped
    path.write_text(fixed)
    assert validate(path).problems == []


@pytest.mark.parametrize(("text"), [c[1] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_what_crm_verify_rejects_validate_rejects(tmp_path: Path, text: str) -> None:
    """The invariant, on every corpus file whose CIB can be rendered at all."""
    loaded = load_and_render(tmp_path, text)
    if loaded is None:
        return
    code, messages = cluster.verify_cib_file(str(loaded))
    if code not in (0, 1) or "error:" in messages:
        path = tmp_path / "t.yaml"
        path.write_text(text)
        assert validate(path).problems, messages


def load_and_render(tmp_path: Path, text: str) -> Path | None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    loaded = load(path)
    if loaded.topology is None or loaded.problems:
        return None
    try:
        cib = to_text(render(loaded.topology))
    except (KeyError, ValueError):
        return None
    out = tmp_path / "cib.xml"
    out.write_text(cib)
    return out
