"""Apply against the lab's live cluster: idempotent, one change changes only itself,
and the dry run predicts the restarts."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from hakit.lab.lab import Lab
from tests.topology.test_topology import EXAMPLE


def topology(lab: Lab, verb: str, path: Path, *flags: str) -> str:
    done = lab.run(
        "node1",
        [sys.executable, "-I", "-m", "hakit.tools.cli", "topology", verb, str(path), *flags],
        timeout=180,
        check=False,
    )
    assert done.returncode == (1 if verb == "diff" else 0), done.stderr  # diff: it differs
    return done.stdout


def settled(lab: Lab) -> bool:
    status = lab.cluster_status("node1")
    return bool(status and status.running_on("web") and len(status.running_on("worker-clone")) == 3)


def test_apply_is_idempotent_and_changes_only_what_changed(lab: Lab, tmp_path: Path) -> None:
    topology(lab, "apply", EXAMPLE, "--yes")
    assert topology(lab, "apply", EXAMPLE, "--yes").strip() == "no change"
    deadline = time.monotonic() + 60
    while not settled(lab) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert settled(lab)
    changed = tmp_path / "changed.yaml"
    changed.write_text(EXAMPLE.read_text().replace("arguments: infinity", "arguments: '100000'"))
    diff = topology(lab, "diff", changed, "--patch")
    assert 'name="arguments"' in diff and "100000" in diff
    assert "web-instance_attributes" not in diff
    predicted = [
        ln
        for ln in topology(lab, "apply", changed, "--dry-run").splitlines()
        if ln.startswith("  would ")
    ]
    assert predicted and all("worker" in ln for ln in predicted), predicted
    assert any("Restart" in ln for ln in predicted)
    applied = topology(lab, "apply", changed, "--yes")
    assert applied.startswith("applied: 0 added, 1 changed, 0 removed"), applied
    assert topology(lab, "apply", changed, "--yes").strip() == "no change"
    topology(lab, "apply", EXAMPLE, "--yes")  # leave the lab as the example says


def test_import_the_live_cluster(lab: Lab) -> None:
    from hakit.tools.topology.load import load, load_text
    from hakit.tools.topology.render import render
    from tests.topology.test_export import sections

    topology(lab, "apply", EXAMPLE, "--yes")
    done = lab.run(
        "node1", [sys.executable, "-I", "-m", "hakit.tools.cli", "topology", "import"], timeout=60
    )
    imported = load_text(done.stdout, "live.yaml")
    assert imported.problems == [] and imported.topology is not None
    expected = load(EXAMPLE).topology
    assert expected is not None
    ours, live = sections(render(expected)), sections(render(imported.topology))
    assert ours["resources"] == live["resources"]
    assert ours["constraints"] == live["constraints"]


def test_apply_keeps_what_a_topology_cannot_express(lab: Lab) -> None:
    """A live location with two rules (no topology can say it) survives apply of a file
    that does not name it, and goes only with --replace-unexpressed."""
    topology(lab, "apply", EXAMPLE, "--yes")
    two_rules = (
        '<rsc_location id="two-rules" rsc="web"><rule id="two-rules-a" score="5">'
        '<expression id="two-rules-a-e" attribute="a" operation="defined"/></rule>'
        '<rule id="two-rules-b" score="7"><expression id="two-rules-b-e" attribute="b" '
        'operation="defined"/></rule></rsc_location>'
    )
    lab.run("node1", ["cibadmin", "--create", "--scope", "constraints", "--xml-text", two_rules])
    query = ["cibadmin", "--query", "--xpath", "//rsc_location[@id='two-rules']"]
    kept = topology(lab, "apply", EXAMPLE, "--yes")
    assert "= rsc_location two-rules" in kept, kept
    assert lab.run("node1", query, check=False).returncode == 0
    imported = lab.run(
        "node1", [sys.executable, "-I", "-m", "hakit.tools.cli", "topology", "import"], check=False
    )
    assert imported.returncode == 1 and "rsc_location two-rules" in imported.stderr
    replaced = topology(lab, "apply", EXAMPLE, "--yes", "--replace-unexpressed")
    assert "- rsc_location two-rules" in replaced, replaced
    assert lab.run("node1", query, check=False).returncode != 0
