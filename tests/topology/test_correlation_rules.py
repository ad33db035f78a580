"""VNF error-report correlation rules in the topology: every ocf:hakit:publisher gets
them as its `correlation` parameter (compact JSON, the node side parses it), every
problem is located, import recovers the section, and export and diff carry it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from hakit.tools.topology import roundtrip
from hakit.tools.topology.export import pcs_script
from hakit.tools.topology.export_crm import crm_script
from hakit.tools.topology.importer import import_cib, to_yaml
from hakit.tools.topology.load import load, load_text
from hakit.tools.topology.render import render, to_text
from hakit.tools.topology.schema import json_schema
from hakit.tools.topology.validate import check, validate
from tests.topology.test_export import empty_cib, pcs_built

DATA = Path(__file__).parent / "data" / "correlation.yaml"
HEAD = """cluster: {name: t, properties: {stonith-enabled: false}}
nodes: [{name: n1}]
resources:
  - {name: pub, agent: ocf:hakit:publisher}
"""
SAMPLE = """correlation:
  rules:
    - name: compute-host
      scope: host
      error_classes: [compute, unknown]
      min_vnfs: 3
      window: 60s
  mass_event: {max_suspects: 3, window: 120s}
  disable_compute_service: false
"""
SAMPLE_JSON = (
    '{"disable_compute_service":false,"mass_event":{"max_suspects":3,"window_s":120},'
    '"rules":[{"error_classes":["compute","unknown"],"min_vnfs":3,"name":"compute-host",'
    '"scope":"host","window_s":60}]}'
)


def value(cib: etree._Element, resource: str = "pub") -> str | None:
    pair = cib.find(
        f".//primitive[@id='{resource}']/instance_attributes/nvpair[@name='correlation']"
    )
    return None if pair is None else pair.get("value")


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return [str(p) for p in validate(path, agents=False, pacemaker=False).problems]


def test_the_publisher_gets_the_rules_as_compact_json() -> None:
    topology = load_text(HEAD + SAMPLE).topology
    assert topology is not None
    assert value(render(topology)) == SAMPLE_JSON
    assert json.loads(SAMPLE_JSON) == {
        "rules": [
            {
                "name": "compute-host",
                "scope": "host",
                "error_classes": ["compute", "unknown"],
                "min_vnfs": 3,
                "window_s": 60,
            }
        ],
        "mass_event": {"max_suspects": 3, "window_s": 120},
        "disable_compute_service": False,
    }


def test_through_a_template_and_a_clone_windows_in_seconds() -> None:
    loaded = check(load(DATA), agents=False)
    assert not loaded.problems, loaded.problems
    assert loaded.topology is not None
    text = value(render(loaded.topology), "health-publisher")
    assert text is not None
    rules = json.loads(text)["rules"]
    assert [r["window_s"] for r in rules] == [60, 90, 2.5]  # 60s, 1.5min, 2500ms
    assert rules[2]["error_classes"] == []  # every class
    assert "mass_event" in text and '"disable_compute_service":true' in text


def test_no_rules_no_attribute() -> None:
    for section in ("", "correlation: {rules: [], mass_event: {max_suspects: 2, window: 1m}}\n"):
        topology = load_text(HEAD + section).topology
        assert topology is not None
        assert value(render(topology)) is None


def test_every_problem_is_located_in_one_run(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        HEAD
        + """correlation:
  rules:
    - name: b
      scope: host
      min_vnfs: 0
      window: 60s
    - name: c
      scope: physnet
      min_vnfs: 1
      window: soon
    - name: b
      scope: backend
      min_vnfs: 1
      window: 0s
    - name: a
      scope: hots
      min_vnfs: 1
      window: 60s
""",
    )
    file = tmp_path / "t.yaml"
    # the loader's problem first, then the section's
    assert found == [
        f"{file}:20:14: correlation.rules[3] \"a\".scope: 'hots' is not one of host, physnet, "
        "backend (hint: did you mean 'host'?)",
        f'{file}:9:17: correlation.rules[0] "b".min_vnfs: min_vnfs is 0 (hint: at least 1: '
        "the distinct VNFs whose reports make a suspect)",
        f"{file}:14:15: correlation.rules[1] \"c\".window: 'soon' is not a duration "
        "(hint: e.g. 60s, 2min or 1h)",
        f"{file}:15:13: correlation.rules[2] \"b\".name: a second rule named 'b' "
        "(hint: rename one of them)",
        f"{file}:18:15: correlation.rules[2] \"b\".window: '0s' is no time at all "
        "(hint: a window longer than 0, e.g. 60s)",
    ]


def test_rules_need_a_publisher_and_are_their_one_source(tmp_path: Path) -> None:
    rule = "  rules: [{name: net, scope: physnet, min_vnfs: 2, window: 1min}]\n"
    nowhere = "cluster: {name: t}\nresources: [{name: d, agent: ocf:pacemaker:Dummy}]\n"
    found = problems(tmp_path, nowhere + "correlation:\n" + rule)
    assert len(found) == 1 and ":4:10: correlation.rules: no ocf:hakit:publisher" in found[0]
    twice = """cluster: {name: t}
templates:
  p: {agent: ocf:hakit:publisher, params: {correlation: "{}"}}
resources:
  - {name: pub, agent: ocf:hakit:publisher, params: {correlation: "{}"}}
  - {name: pub2, template: p}
  - {name: pub3, template: p}
correlation:
  disable_compute_service: true
  mass_event: {max_suspects: 0, window: 1min}
"""
    found = problems(tmp_path, twice + rule)
    assert [line.split(": ", 2)[1:] for line in found] == [
        [
            "correlation.mass_event.max_suspects",
            "max_suspects is 0 (hint: at least 1: the "
            "suspects tolerated in the window before one alarm)",
        ],
        [
            "correlation.disable_compute_service",
            "no rule of scope host: no compute service "
            "would ever be disabled (hint: add a rule with `scope: host`, or drop "
            "disable_compute_service)",
        ],
        [
            'resources[0] "pub".params.correlation',
            "set here and by `correlation:` (hint: drop "
            "it: hakit writes it from the topology's `correlation:` section)",
        ],
        [
            "templates.p.params.correlation",
            "set here and by `correlation:` (hint: drop it: "
            "hakit writes it from the topology's `correlation:` section)",
        ],
    ]
    assert found[2].startswith(f"{tmp_path / 't.yaml'}:5:")


def test_import_recovers_the_section_and_renders_it_back() -> None:
    topology = load(DATA).topology
    assert topology is not None
    cib = render(topology)
    imported = import_cib(etree.tostring(cib))
    assert imported.lossless, imported.skipped
    assert imported.topology.correlation.rules[1].window == "90s"
    publisher = next(r for r in imported.topology.resources if r.name == "health-publisher")
    assert "correlation" not in publisher.params
    text = to_yaml(imported.topology)
    assert "correlation:\n  rules:\n  - name: compute-host\n" in text
    again = load_text(text).topology
    assert again is not None
    assert not roundtrip.losses(cib, render(again))
    assert value(render(again), "health-publisher") == value(cib, "health-publisher")


def test_import_keeps_a_value_it_cannot_say_as_the_parameter() -> None:
    topology = load_text(HEAD + SAMPLE).topology
    assert topology is not None
    cib = render(topology)
    pair = cib.find(".//nvpair[@name='correlation']")
    assert pair is not None
    pair.set("value", json.dumps(json.loads(SAMPLE_JSON)))  # with spaces: not as hakit writes
    imported = import_cib(etree.tostring(cib))
    assert imported.lossless, imported.skipped
    assert not imported.topology.correlation.rules
    assert imported.topology.resources[0].params["correlation"] == pair.get("value")


def test_the_json_schema_has_the_section() -> None:
    defs = json_schema()["$defs"]
    assert isinstance(defs, dict)
    assert defs["Topology"]["properties"]["correlation"]["$ref"] == "#/$defs/Correlation"
    rule = defs["CorrelationRule"]
    assert rule["properties"]["scope"]["enum"] == ["host", "physnet", "backend"]
    assert rule["properties"]["error_classes"]["items"]["enum"] == [
        "compute",
        "network",
        "storage",
        "unknown",
    ]
    assert rule["required"] == ["name", "scope", "min_vnfs", "window"]
    assert defs["MassEvent"]["required"] == ["max_suspects", "window"]


def test_both_exports_carry_the_value(installed_agents: Path, tmp_path: Path) -> None:
    topology = load(DATA).topology
    assert topology is not None
    expected = value(render(topology), "health-publisher")
    assert expected is not None
    built = etree.parse(str(pcs_built(topology, tmp_path / "pcs.xml"))).getroot()
    assert value(built, "health-publisher") == expected
    (tmp_path / "config.crm").write_text(crm_script(topology))
    cib = empty_cib(tmp_path / "crm.xml")
    done = subprocess.run(
        ["crm", "-F", "configure", "load", "update", str(tmp_path / "config.crm")],
        env={"CIB_file": str(cib), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert value(etree.parse(str(cib)).getroot(), "health-publisher") == expected
    assert "correlation=" in pcs_script(topology)


def test_diff_shows_a_rule_change_as_the_changed_attribute(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + SAMPLE)
    live = tmp_path / "live.xml"
    before = load_text(HEAD + SAMPLE.replace("min_vnfs: 3", "min_vnfs: 2")).topology
    assert before is not None
    live.write_text(to_text(render(before)))

    def diff(*flags: str) -> subprocess.CompletedProcess[str]:
        command = ["topology", "diff", "--no-agents", str(path), "--cib", str(live), *flags]
        return subprocess.run(
            [sys.executable, "-m", "hakit.tools.cli", *command],
            capture_output=True,
            text=True,
            check=False,
        )

    done = diff()
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[:2] == [
        "would apply: 0 added, 1 changed, 0 removed",
        "  ~ primitive pub",
    ]
    patch = etree.fromstring(diff("--patch").stdout.encode())  # crm_diff: removed, added
    for part, number in (("removed", 2), ("added", 3)):
        pairs = patch.findall(f"diff-{part}//nvpair")
        assert [p.get("id") for p in pairs] == ["pub-instance_attributes-correlation"]
        assert f'"min_vnfs":{number},' in str(pairs[0].get("value"))


@pytest.mark.parametrize("window", ["60", "1min", "PT1M", "60000ms"])
def test_a_window_is_a_duration_like_the_rest(window: str) -> None:
    topology = load_text(HEAD + SAMPLE.replace("window: 60s", f"window: {window}")).topology
    assert topology is not None
    assert value(render(topology)) == SAMPLE_JSON


def test_counts_stay_within_what_the_publisher_takes(tmp_path: Path) -> None:
    found = problems(tmp_path, HEAD + SAMPLE.replace("min_vnfs: 3", "min_vnfs: 1000001"))
    assert [line.split(": ", 1)[1] for line in found] == [
        'correlation.rules[0] "compute-host".min_vnfs: min_vnfs is 1000001 '
        "(hint: at most 1,000,000)"
    ]
