"""Topology → CIB: located errors for broken files, a valid CIB for good ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from hakit.tools.topology import model
from hakit.tools.topology.agents import check_agents
from hakit.tools.topology.load import load_text
from hakit.tools.topology.render import render, to_text
from hakit.tools.topology.validate import check_names, validate
from hakit.tools.topology.verify import relaxng
from tests.conftest import REPO

EXAMPLE = REPO / "lab" / "demo.yaml"
BASE = """cluster: {name: t}
nodes: [{name: n1}, {name: n2}]
"""


def problems(text: str, *, agents: bool = False) -> list[str]:
    loaded = load_text(text, "t.yaml")
    if loaded.topology is not None:
        check_names(loaded, loaded.topology)
        if agents and not loaded.problems:
            check_agents(loaded, loaded.topology)
    return [str(p) for p in loaded.problems]


BROKEN = [
    ("cluster: {name: t\n", "t.yaml:2:1: (YAML): did not find expected ',' or '}'"),
    ("cluster: {name: t}\nresources: {a: 1}\n", "t.yaml:2:12: resources: expected a list"),
    (
        BASE + "resources:\n  - {name: a, agent: ocf:hakit:service, parmas: {}}\n",
        "t.yaml:4:41: resources[0] \"a\".parmas: unknown key 'parmas' (hint: did you mean 'params'?)",
    ),
    (
        BASE + "resources:\n  - {name: a, agent: x, ops: [{name: monitor, check_level: hi}]}\n",
        "check_level: 'hi' is not an integer",
    ),
    (
        BASE + "resources:\n  - {name: a, agent: x}\n  - {name: a, agent: y}\n",
        "t.yaml:5:12: resources[1] \"a\".name: the name 'a' is already used",
    ),
    (
        BASE
        + "resources:\n  - {name: web, agent: x}\nconstraints:\n  orders: [{first: wbe, then: web}]\n",
        "t.yaml:6:20: constraints.orders[0].first: no resource 'wbe' (hint: did you mean 'web'?)",
    ),
    (
        BASE
        + "resources:\n  - {name: web, agent: x}\nconstraints:\n  locations: [{resource: web, node: n3}]\n",
        "constraints.locations[0].node: no node 'n3'",
    ),
    (
        BASE
        + "resources:\n  - {name: web, agent: x}\nconstraints:\n  colocations: [{resource: web, with: web, score: lots}]\n",
        "'lots' is not a score",
    ),
    (BASE + "resources:\n  - {name: a, template: nope}\n", "no template named 'nope'"),
    (
        BASE
        + "resources:\n  - {name: a, agent: x, clone: {}}\ngroups:\n  - {name: g, members: [a, b]}\n",
        "no resource named 'b'",
    ),
    (
        BASE
        + "resources:\n  - {name: a, agent: x, clone: {}}\ngroups:\n  - {name: g, members: [a]}\n",
        "'a' is a clone; clone the group instead",
    ),
    (
        BASE + "fencing:\n  levels: [{index: 1, devices: [f1], target: n1}]\n",
        "no fencing device 'f1'",
    ),
    (
        BASE
        + "resources:\n  - name: a\n    agent: x\n    ops: [{name: monitor, interval: 5s}, {name: monitor, interval: 5s}]\n",
        "a second monitor every 5s",
    ),
    ("nodes: []\n", "t.yaml:1:1: cluster: missing cluster"),
    ("", "the file is empty"),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN)
def test_each_broken_topology_gives_a_located_error(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_all_problems_come_at_once() -> None:
    text = BASE + "resources:\n  - {name: a, agnt: x}\n  - {name: b, agent: x, ops: [{name: 1}]}\n"
    assert len(problems(text)) >= 2


AGENT_CASES = [
    (
        "{name: a, agent: 'ocf:hakit:service', params: {binary: sh, ready_prt: 1}}",
        "ocf:hakit:service has no parameter 'ready_prt' (hint: did you mean 'ready_port'?)",
    ),
    (
        "{name: a, agent: 'ocf:hakit:service', params: {arguments: x}}",
        "required parameter 'binary' is missing",
    ),
    (
        "{name: a, agent: 'ocf:heartbeat:IPaddr2', params: {ip: 10.0.0.1, arp_count: big}}",
        "'big' is not an integer",
    ),
    (
        "{name: a, agent: 'ocf:hakit:nonexistent'}",
        "agent ocf:hakit:nonexistent is not installed here",
    ),
]


@pytest.mark.usefixtures("installed_agents")
@pytest.mark.parametrize(("resource", "expected"), AGENT_CASES)
def test_agent_metadata_checks_what_crm_verify_misses(resource: str, expected: str) -> None:
    found = problems(BASE + f"resources:\n  - {resource}\n", agents=True)
    assert any(expected in p for p in found), found


def test_the_example_is_valid_and_renders_deterministically(lab: object) -> None:
    loaded = validate(EXAMPLE)  # agents (fence_hakit_lab: the lab runs), RNG, crm_verify
    assert loaded.problems == []
    assert loaded.topology is not None
    first, second = to_text(render(loaded.topology)), to_text(render(loaded.topology))
    assert first == second
    cib = etree.fromstring(first.encode())
    assert relaxng().validate(cib)
    ids = [e.get("id") for e in cib.iter() if e.get("id")]
    assert len(ids) == len(set(ids))
    assert cib.find(".//clone[@id='worker-clone']/primitive[@id='worker']") is not None
    assert cib.find(".//op[@id='web-monitor-interval-11s']") is not None
    assert cib.find(".//rsc_order[@id='order-worker-clone-web-Optional']") is not None
    level = cib.find(".//op[@id='web-monitor-interval-11s']//nvpair")
    assert level is not None and level.get("name") == "OCF_CHECK_LEVEL"


def test_cli_validate_and_render(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE + "resources:\n  - {name: a, agnt: x}\n")
    done = subprocess.run(
        [sys.executable, "-m", "hakit.tools.cli", "topology", "validate", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert f"{bad}:4:15: resources[0] \"a\".agnt: unknown key 'agnt'" in done.stderr
    assert "Traceback" not in done.stderr


SCALARS = st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.none())
KEYS = st.sampled_from(
    [
        "cluster",
        "name",
        "nodes",
        "resources",
        "agent",
        "params",
        "ops",
        "clone",
        "groups",
        "members",
        "constraints",
        "orders",
        "first",
        "then",
        "with",
        "fencing",
        "devices",
        "levels",
        "index",
        "x",
    ]
)
DOCS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=DOCS)
def test_no_document_makes_the_loader_raise(document: object) -> None:
    import yaml

    text = yaml.safe_dump(document)
    loaded = load_text(text, "fuzz.yaml")
    if loaded.topology is not None:
        assert isinstance(loaded.topology, model.Topology)
        check_names(loaded, loaded.topology)
    assert all(str(p).startswith("fuzz.yaml") for p in loaded.problems)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_no_text_makes_the_loader_raise(text: str) -> None:
    loaded = load_text(text, "fuzz.yaml")
    if loaded.topology is not None:
        check_names(loaded, loaded.topology)


def test_json_schema_describes_the_whole_model() -> None:
    import dataclasses

    from hakit.tools.topology.schema import json_schema

    schema = json_schema()
    defs = schema["$defs"]
    assert isinstance(defs, dict)
    for cls in (model.Topology, model.Resource, model.Op, model.Colocation, model.FenceLevel):
        entry = defs[cls.__name__]
        names = {f.name.rstrip("_") for f in dataclasses.fields(cls)}
        assert set(entry["properties"]) == names
        assert entry["additionalProperties"] is False
    assert defs["Colocation"]["required"] == ["resource", "with"]
    kind = defs["Order"]["properties"]["kind"]["anyOf"]
    assert kind[0]["enum"] == ["Mandatory", "Optional", "Serialize"] and kind[1] == {"type": "null"}


def test_simulate_a_node_failure_and_a_failed_monitor() -> None:
    from hakit.tools.topology.simulate import what_if

    topology = load_text(EXAMPLE.read_text(), str(EXAMPLE)).topology
    assert topology is not None
    placed, reaction = what_if(topology, fail_node="node2")
    web_node = next(a.to_node for a in placed if a.target == "web")
    assert {a.action for a in placed} == {"Start"}
    _, reaction = what_if(topology, fail_node=web_node or "")
    assert any(a.action == "Fence (reboot)" and a.target == web_node for a in reaction)
    move = next(a for a in reaction if a.target == "web")
    assert move.action == "Move" and move.from_node == web_node and move.to_node != web_node
    _, recovered = what_if(topology, fail_op=f"web:monitor:{web_node}")
    assert [(a.action, a.target) for a in recovered] == [("Recover", "web")]


def test_cli_simulate_json() -> None:
    import json

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hakit.tools.cli",
            "topology",
            "simulate",
            str(EXAMPLE),
            "--no-agents",
            "--fail-node",
            "node1",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert any(a["action"] == "Fence (reboot)" for a in result["reaction"])


def test_the_committed_reference_is_generated_from_the_model() -> None:
    from hakit.tools.topology.reference import markdown

    committed = (REPO / "docs" / "topology-reference.md").read_text()
    assert committed == markdown(), "run: hakit topology reference > docs/topology-reference.md"
    for cls in (model.Resource, model.Order):
        for f in dataclasses_fields(cls):
            assert f"`{f}`" in committed


def dataclasses_fields(cls: type) -> list[str]:
    import dataclasses

    return [f.name.rstrip("_") for f in dataclasses.fields(cls)]
