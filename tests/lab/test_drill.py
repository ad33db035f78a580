"""The drill scenarios on the real lab, with their invariants and timeline; and broken
setups (fencing disabled, a partition with quorum ignored) that make the drill fail
with the right invariant named — the checks can fail. The OpenStack outage scenarios
run in test_openstack.py, on the lab's shared cloud."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hakit.lab import demo
from hakit.lab.drill.environment import CommandEnvironment, LabEnvironment
from hakit.lab.drill.runner import Options, run_once, settled, wait_for
from hakit.lab.drill.scenarios import SCENARIOS
from hakit.lab.lab import INFRA_NETNS, Lab

ALWAYS = ("ap-never-twice", "placement-as-policy", "timeline-complete")


@pytest.fixture(scope="module")
def env(lab: Lab) -> Iterator[LabEnvironment]:
    demo.configure(lab)
    environment = LabEnvironment(lab)
    wait_for(lambda: settled(environment, Options()), 180, "the demo settled")
    yield environment
    _restore(lab)


def _restore(lab: Lab) -> None:
    for flag in lab.dir.glob("fence_fail*"):
        flag.unlink()
    lab.restore()
    lab.wait_until_online(timeout=180)
    crm_config(lab, "no-quorum-policy", None)
    crm_config(lab, "stonith-enabled", "true")


def crm_config(lab: Lab, name: str, value: str | None) -> None:
    """Set (or delete) a cluster property through whichever node answers."""
    action = ["--delete"] if value is None else ["--update", value]
    argv = ["crm_attribute", "--type", "crm_config", "--name", name, *action]
    deadline = time.monotonic() + 60
    while True:
        for node in lab.nodes:
            if lab.powered(node) and lab.run(node, argv, check=False).returncode in (0, 105):
                return
        assert time.monotonic() < deadline, f"{' '.join(argv)} failed on every node"
        time.sleep(1)


def drill(env: LabEnvironment, name: str, **options: Any) -> dict[str, Any]:
    return run_once(env, SCENARIOS[name], Options(**options), 1, "fast", lambda _: None)


def assert_passed(result: dict[str, Any]) -> None:
    assert result["passed"], result["violations"]
    for invariant in ALWAYS:
        assert result["invariants"][invariant] == "passed", invariant
    times = [e["at"] for e in result["timeline"]]
    assert times == sorted(times)
    if not SCENARIOS[result["scenario"]].openstack:
        assert result["figures"]["detection_s"] is not None
        assert result["figures"]["available_s"] is not None


def test_process_kill_through_the_cli_with_a_report(env: LabEnvironment, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hakit.tools.cli",
            "drill",
            "run",
            "process-kill",
            "--lab",
            "--yes",
            "--target",
            "web",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fault injected" in done.stdout and "PASS" in done.stdout
    result = json.loads((tmp_path / "result.json").read_text())["runs"][0]
    assert_passed(result)
    assert result["invariants"]["no-alarm-lost"] == "passed"  # demo.yaml runs the publisher
    assert (tmp_path / "index.html").exists() and (tmp_path / "run-1.png").exists()


def test_an_unknown_target_is_refused(env: LabEnvironment, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hakit.tools.cli",
            "drill",
            "run",
            "process-kill",
            "--lab",
            "--yes",
            "--target",
            "nosuch",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no resource 'nosuch'" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["process-hang", "power-cut", "isolation", "fence-device-failure"])
def test_scenario(env: LabEnvironment, name: str) -> None:
    result = drill(env, name)
    assert_passed(result)
    kinds = [e["kind"] for e in result["timeline"]]
    if SCENARIOS[name].node_loss:
        assert result["invariants"]["no-start-before-fencing"] == "passed"
        assert result["figures"]["fencing_s"] is not None
    if name == "fence-device-failure":
        assert kinds.index("fence-failed") < kinds.index("fenced")
        failed = next(e for e in result["timeline"] if e["kind"] == "fence-failed")
        assert "hakit-fence-primary" in failed["what"]


def test_fencing_disabled_fails_no_start_before_fencing(env: LabEnvironment) -> None:
    lab = env.lab
    crm_config(lab, "stonith-enabled", "false")
    try:
        result = drill(env, "power-cut", recovery_timeout=20)
    finally:
        _restore(lab)
    assert not result["passed"]
    violation = next(v for v in result["violations"] if v["invariant"] == "no-start-before-fencing")
    assert "never was" in violation["detail"] and violation["node"] in lab.nodes


def test_partition_without_quorum_policy_fails_ap_never_twice(env: LabEnvironment) -> None:
    lab = env.lab
    crm_config(lab, "stonith-enabled", "false")
    crm_config(lab, "no-quorum-policy", "ignore")
    partition = dataclasses.replace(SCENARIOS["isolation"], hold=15.0)
    try:
        result = run_once(env, partition, Options(recovery_timeout=30), 1, "fast", lambda _: None)
    finally:
        _restore(lab)
    assert not result["passed"]
    violation = next(v for v in result["violations"] if v["invariant"] == "ap-never-twice")
    assert " and " in violation["detail"]


def test_a_cluster_declared_by_shell_commands(env: LabEnvironment, tmp_path: Path) -> None:
    """The command environment, pointed at the lab through `hakit lab` and shell verbs only:
    status, logs, processes and the kill verb all go through the declared commands."""
    lab = env.lab
    lab.infra_network()
    hakit = f"{sys.executable} -I -m hakit.tools.cli"
    netns_pids = (
        "for p in $(ip netns pids {}); do grep -qaF -- {{needle}} /proc/$p/cmdline "
        "&& echo $p; done; true"
    )
    declared = {
        "name": "lab-by-commands",
        "nodes": list(lab.nodes),
        "run": f"{hakit} lab exec {{node}} -- sh -c {{command}}",
        "addresses": {node: lab.address(node) for node in lab.nodes},
        "processes": netns_pids.format("hakit-{node}"),
        "client_netns": INFRA_NETNS,
        "verbs": {"kill": "kill -{signal} {pid}", "power-cut": f"{hakit} lab cut --yes {{node}}"},
    }
    path = tmp_path / "environment.yaml"
    path.write_text(json.dumps(declared))  # JSON is YAML
    commands = CommandEnvironment(path)
    assert commands.status() is not None and set(commands.logs()) == set(lab.nodes)
    result = run_once(commands, SCENARIOS["process-kill"], Options(), 1, "fast", lambda _: None)
    assert_passed(result)
    where = result["target"]
    assert any(e["kind"] == "detected" and e["node"] == where for e in result["timeline"])
