"""The broken-topology corpus (data/broken): each file says, in its first lines, the
problem `validate` must report and where (`# expect: LINE:COL WHERE: MESSAGE PART`); every
rejection is located at a YAML object. The ok-*.yaml files validate clean, and Pacemaker
schedules them (crm_simulate). Agents are the ones installed here (ocf:pacemaker:Dummy,
Stateful, ocf:heartbeat:IPaddr2, fence_ipmilan, fence_apc, ...)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hakit.ocf import cluster
from hakit.tools.topology import values
from hakit.tools.topology.agents import agent, check_agents
from hakit.tools.topology.load import load_text
from hakit.tools.topology.validate import validate
from hakit.tools.topology.values import milliseconds
from tests.topology.test_verify_corpus import load_and_render

DATA = Path(__file__).parent / "data" / "broken"
BROKEN = sorted(p for p in DATA.glob("*.yaml") if not p.name.startswith("ok-"))
VALID = sorted(DATA.glob("ok-*.yaml"))
EXPECT = re.compile(r"# expect: (\d+):(\d+) (.+?): (.+)")


def expectations(path: Path) -> list[tuple[int, int, str, str]]:
    """The `# expect:` lines at the top of a corpus file."""
    found = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if match := EXPECT.fullmatch(line):
            found.append((int(match[1]), int(match[2]), match[3], match[4]))
    return found


def test_the_corpus_is_large_enough() -> None:
    assert len(BROKEN) >= 80
    assert len(VALID) >= 5


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_each_broken_file_is_rejected_at_its_object(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no `# expect:` line"
    problems = validate(path).problems
    shown = "\n".join(map(str, problems))
    for line, column, where, part in expected:
        assert any(
            (p.line, p.column, p.where) == (line, column, where) and part in p.message
            for p in problems
        ), f"expected {line}:{column} {where}: {part}\ngot:\n{shown}"
    unlocated = [p for p in problems if not p.line or p.where == "(top)"]
    assert not unlocated, shown


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_files_validate_and_pacemaker_schedules_them(tmp_path: Path, path: Path) -> None:
    loaded = validate(path)
    assert loaded.problems == [], "\n".join(map(str, loaded.problems))
    assert loaded.skipped == []
    cib = load_and_render(tmp_path, path.read_text())
    assert cib is not None
    assert loaded.topology is not None
    nodes = [arg for node in loaded.topology.nodes for arg in ("--node-up", node.name)]
    args = ["crm_simulate", "--xml-file", str(cib), "--simulate", "--quorum", "true", *nodes]
    _, output = cluster.run(args, timeout=60, ok_codes=range(256), stderr=True)
    assert "Transition Summary:" in output, output
    assert "invalid transition" not in output, output


def test_every_installed_fence_agent_takes_its_current_and_its_old_names() -> None:
    """Giving the current name of each required parameter (ip, username) is never
    refused; giving the deprecated one it obsoletes (ipaddr, login) is accepted too."""
    names = cluster.run(["stonith_admin", "--list-installed"], timeout=30)[1].split()
    fence_agents = [f"stonith:{n}" for n in names if n.startswith("fence_")]
    with ThreadPoolExecutor(8) as pool:
        found = dict(zip(fence_agents, pool.map(agent, fence_agents), strict=True))
    devices: list[str] = []
    for name, facts in sorted(found.items()):
        if facts is None:
            continue
        current = {facts.current(p) for p, f in facts.parameters.items() if f.required}
        old = {facts.parameters[p].obsoletes or p for p in current}
        for suffix, params in (("new", current), ("old", old)):
            given = ", ".join(f"{p}: x" for p in sorted(params))
            device = f"{{name: {name[8:]}-{suffix}, agent: {name[8:]}, params: {{{given}}}}}"
            devices.append(f"    - {device}")
    renamed = sum(
        any(f.required and f.obsoletes for f in facts.parameters.values())
        for facts in found.values()
        if facts is not None
    )
    assert renamed >= 40, renamed  # 54 of 87 on Debian 12's fence-agents
    loaded = load_text(
        "cluster: {name: t}\nfencing:\n  devices:\n" + "\n".join(devices) + "\n", "f.yaml"
    )
    assert loaded.topology is not None and not loaded.problems
    check_agents(loaded, loaded.topology)
    refused = [str(p) for p in loaded.problems if "required" in p.message or "has no" in p.message]
    assert refused == []


@pytest.mark.parametrize(
    ("text", "meant", "as_pacemaker_2_1"),
    [
        ("10s", 10_000, 10_000),
        ("10000ms", 10_000, 10_000),
        ("1.5s", 1_500, 1_000),
        ("2min", 120_000, 120_000),
        ("1h", 3_600_000, 3_600_000),
        ("500us", 0, 0),
        ("PT1M30S", 90_000, 90_000),
        ("P1D", 86_400_000, 0),
        ("P1DT1H", 90_000_000, 3_600_000),
        ("P1W", 604_800_000, 518_400_000),
        ("ten seconds", None, None),
        ("P1", None, None),
    ],
)
def test_durations_read_as_pacemaker_reads_them(
    text: str, meant: int | None, as_pacemaker_2_1: int | None
) -> None:
    assert milliseconds(text) == meant
    assert milliseconds(text, as_pacemaker_2_1=True) == as_pacemaker_2_1


def test_property_checks_are_skipped_not_guessed_without_pacemakers_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(values, "cluster_options", dict)
    loaded = load_text("cluster: {name: t, properties: {stonith-enabeld: true}}\n", "t.yaml")
    assert loaded.topology is not None
    values.check(loaded, loaded.topology)
    assert loaded.problems == []
    assert any("cluster property" in note for note in loaded.skipped), loaded.skipped
