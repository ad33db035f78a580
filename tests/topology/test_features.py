"""Rules, resource sets, tickets, bundles, tags, ACLs and default sets: rendered, checked
by Pacemaker, built the same by pcs and crmsh, imported back, and simulated."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from hakit.tools.topology import model, rules
from hakit.tools.topology.export import ExportError
from hakit.tools.topology.export_crm import crm_script
from hakit.tools.topology.importer import import_cib, to_yaml
from hakit.tools.topology.load import load, load_text
from hakit.tools.topology.render import render, to_text
from hakit.tools.topology.simulate import what_if
from hakit.tools.topology.validate import validate
from tests.conftest import REPO
from tests.topology.test_export import canonical, empty_cib, pcs_built
from tests.topology.test_topology import BASE, problems

FEATURES = REPO / "tests" / "topology" / "data" / "features.yaml"
ALL_SECTIONS = (
    "crm_config",
    "resources",
    "constraints",
    "rsc_defaults",
    "op_defaults",
    "tags",
    "acls",
)


def features() -> model.Topology:
    topology = load(FEATURES).topology
    assert topology is not None
    return topology


def sections(cib: etree._Element) -> dict[str, str]:
    """Every section, ids normalised away; cluster-name left out (pcs takes it from corosync)."""
    for pair in cib.iterfind(".//nvpair[@name='cluster-name']"):
        pair.getparent().remove(pair)  # type: ignore[union-attr]
    config = cib.find("configuration")
    assert config is not None
    return {
        name: canonical(config.find(name))  # type: ignore[arg-type]
        for name in ALL_SECTIONS
        if config.find(name) is not None
    }


def test_every_feature_passes_pacemakers_schema_and_crm_verify() -> None:
    loaded = validate(FEATURES, agents=False)
    assert loaded.problems == []


@pytest.fixture(scope="module")
def pcs_cib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """features.yaml built by its pcs export, once for the module (pcs takes ~20 s)."""
    return pcs_built(features(), tmp_path_factory.mktemp("pcs") / "cib.xml")


def test_pcs_builds_the_same_cib(pcs_cib: Path) -> None:
    built = etree.parse(str(pcs_cib)).getroot()
    ours = sections(render(features()))
    assert set(ours) == set(ALL_SECTIONS)
    assert sections(built) == ours


def test_import_of_the_pcs_built_cib_renders_the_same(pcs_cib: Path) -> None:
    imported = import_cib(pcs_cib.read_text())
    assert imported.skipped == []
    assert sections(render(imported.topology)) == sections(render(features()))


def test_import_then_render_is_exact() -> None:
    rendered = to_text(render(features()))
    imported = import_cib(rendered)
    assert imported.skipped == []
    again = load_text(to_yaml(imported.topology), "again.yaml")
    assert again.problems == [] and again.topology is not None
    assert to_text(render(again.topology)) == rendered


def crm_compatible() -> model.Topology:
    """What crmsh 4.4 can say: flat rules, docker bundles, bracket-shaped sets."""
    topology = features()
    topology.defaults = model.Defaults()
    topology.constraints.locations = [
        loc for loc in topology.constraints.locations if "(" not in (loc.rule or "")
    ]
    first = topology.constraints.order_sets[0].sets[0]
    first.action, first.sequential = None, False
    topology.bundles[0].runtime = "docker"
    topology.acls.roles[0].description = None
    return topology


def test_crmsh_loads_the_same_cib(tmp_path: Path) -> None:
    topology = crm_compatible()
    script = tmp_path / "config.crm"
    script.write_text(crm_script(topology))
    cib = empty_cib(tmp_path / "cib.xml")
    done = subprocess.run(
        ["crm", "-F", "configure", "load", "update", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CIB_file": str(cib)},
    )
    assert done.returncode == 0, done.stderr
    theirs = sections(etree.parse(str(cib)).getroot())
    ours = sections(render(topology))
    for name in ("constraints", "resources", "tags", "acls"):
        assert theirs[name] == ours[name], name


def test_crm_export_refuses_what_crmsh_cannot_say() -> None:
    with pytest.raises(ExportError, match="nested rules"):
        crm_script(
            features().__class__(
                **{
                    **vars(crm_compatible()),
                    "constraints": model.Constraints(locations=features().constraints.locations),
                }
            )
        )
    with pytest.raises(ExportError, match="default sets"):
        topology = crm_compatible()
        topology.defaults = features().defaults
        crm_script(topology)


@pytest.mark.parametrize(
    "text",
    [
        "defined pingd",
        "#uname eq node1 and pingd gt integer 0",
        "not_defined foo or (a eq integer 3 and b lt version 1.2)",
        "date in_range 2026-01-01 to 2026-02-01",
        "date in_range 2026-01-01 to duration months=2",
        "date lt 2027-01-01",
        "date-spec hours=9-16 weekdays=1-5",
        "resource ocf:hakit:cinder-volume and op monitor interval=10s",
        "resource ocf::Dummy",
    ],
)
def test_rule_text_survives_parse_render_and_import(text: str) -> None:
    rule = rules.parse(text)
    assert rules.to_text(rule) == text
    element = rules.to_element(etree.Element("x"), rule, "r", {})
    assert rules.to_text(rules.from_element(element)) == text


RULE_ERRORS = [
    ("defined", 7, "ends where an attribute name should follow"),
    ("pingd is 3", 6, "'is' is not a comparison"),
    ("a eq 1 and b eq 2 or c eq 3", 18, "'or' after 'and'"),
    ("(a eq 1", 7, "`)`"),
    ("date after 2026", 5, "not a date test"),
    ("date-spec hour=1", 10, "date-spec has no option 'hour'"),
    ("a eq 1 b", 7, "unexpected 'b'"),
    ("and a eq 1", 0, "a test is missing before 'and'"),
]


@pytest.mark.parametrize(("text", "column", "message"), RULE_ERRORS)
def test_rule_errors_point_at_the_word(text: str, column: int, message: str) -> None:
    with pytest.raises(rules.RuleError, match=re.escape(message)) as caught:
        rules.parse(text)
    assert caught.value.column == column


RESOURCES = (
    BASE
    + """resources:
  - {name: a, agent: x}
  - {name: b, agent: x}
"""
)

BROKEN = [
    (
        RESOURCES + "constraints:\n  locations:\n    - {resource: a, rule: 'pingd is 3'}\n",
        "t.yaml:8:34: constraints.locations[0].rule: rule: 'is' is not a comparison",
    ),
    (
        RESOURCES
        + "constraints:\n  locations:\n    - resource: a\n      rule: defined p and q eq 1 or r eq 2\n",
        "t.yaml:9:34: constraints.locations[0].rule: rule: 'or' after 'and' (hint: pcs reads "
        "and/or left to right: `(defined p and q eq 1) or r eq 2`",
    ),
    (
        RESOURCES + "constraints:\n  locations: [{resource: a, node: n1, rule: defined p}]\n",
        "a location needs node or rule (one of them)",
    ),
    (
        RESOURCES + "constraints:\n  colocation_sets: [{sets: [{resources: [a, c]}]}]\n",
        "constraints.colocation_sets[0].sets[0].resources[1]: no resource 'c'",
    ),
    (
        RESOURCES + "constraints:\n  order_sets: [{sets: []}]\n",
        "constraints.order_sets[0]: no sets",
    ),
    (RESOURCES + "constraints:\n  tickets: [{ticket: t}]\n", "needs resource or sets"),
    (
        RESOURCES + "constraints:\n  tickets: [{ticket: t, resource: a, loss_policy: explode}]\n",
        "'explode' is not one of stop, demote, fence, freeze",
    ),
    (
        RESOURCES + "defaults:\n  resource_sets: [{name: s, meta: {a: 1}, rule: op monitor}]\n",
        "`op` tests apply to operation defaults only",
    ),
    (
        RESOURCES
        + "defaults:\n  operation_sets: [{name: s, meta: {a: 1}, rule: 'date-spec hour=9'}]\n",
        "date-spec has no option 'hour'",
    ),
    (
        RESOURCES + "bundles: [{name: bb, image: i, resource: c}]\n",
        "bundles[0] \"bb\".resource: no resource named 'c'",
    ),
    (
        RESOURCES + "bundles: [{name: bb, image: i, ports: [{port: 1, range: 2-3}]}]\n",
        "give port or range",
    ),
    (
        RESOURCES + "tags: [{name: tg, resources: [a, zz]}]\n",
        "tags[0] \"tg\".resources[1]: no resource 'zz'",
    ),
    (
        RESOURCES + "acls:\n  roles: [{name: r, permissions: [{kind: read}]}]\n",
        "needs xpath or reference",
    ),
    (
        RESOURCES + "acls:\n  roles: [{name: reader}]\n  users: [{name: u, roles: [raeder]}]\n",
        "no role 'raeder' (hint: did you mean 'reader'?)",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN)
def test_broken_features_give_located_errors(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_simulate_a_revoked_ticket_stops_what_depends_on_it() -> None:
    text = """cluster: {name: t, properties: {stonith-enabled: false}}
nodes: [{name: n1}, {name: n2}]
resources:
  - {name: db, agent: "ocf:pacemaker:Dummy", ops: [{name: monitor, interval: 10s}]}
  - {name: web, agent: "ocf:pacemaker:Dummy", ops: [{name: monitor, interval: 10s}]}
constraints:
  tickets: [{ticket: site-a, resource: db, loss_policy: stop}]
"""
    topology = load_text(text, "t.yaml").topology
    assert topology is not None
    placed, reaction = what_if(topology, tickets=["revoke:site-a"])
    assert {a.target for a in placed if a.action == "Start"} == {"db", "web"}
    assert [(a.action, a.target) for a in reaction] == [("Stop", "db")]
    with pytest.raises(ValueError, match="ACTION:TICKET"):
        what_if(topology, tickets=["drop:site-a"])
