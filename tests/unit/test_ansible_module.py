"""The role's `hakit_topology` module run by Ansible (ad hoc, on localhost) in check mode
against a CIB file: a converged CIB is no change, a drifted one is a change whose diff
names the drifted object and hides secret values, a broken topology is hakit's message.
The same module against a live cluster: tests/ansible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).parents[2]
LIBRARY = REPO / "playbooks" / "roles" / "hakit" / "library"
DEMO = REPO / "lab" / "demo.yaml"
BIN = Path(sys.executable).parent
ANSIBLE = [str(BIN / "ansible"), "localhost", "-M", str(LIBRARY), "-m", "hakit_topology"]
#: A parameter whose name says it is a secret: its value never shows in a diff.
SECRET = "s3cret-value"  # noqa: S105 — a test value


def module(tmp_path: Path, topology: Path, cib: Path) -> tuple[dict[str, object], str]:
    """Run it with --check --diff; its result ({} if it failed) and all Ansible printed."""
    args = f"src={topology} cib={cib} hakit={BIN / 'hakit'} agents=false"
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "ansible-home")}
    env["ANSIBLE_LOCALHOST_WARNING"] = "false"
    done = subprocess.run(
        [*ANSIBLE, "-a", args, "--check", "--diff"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    if done.returncode != 0:
        return {}, output
    return json.loads(done.stdout[done.stdout.index("=> {") + 3 :]), output


def rendered(tmp_path: Path, topology: Path) -> Path:
    cib = tmp_path / "cib.xml"
    render = [str(BIN / "hakit"), "topology", "render", "--no-agents", str(topology)]
    subprocess.run([*render, "-o", str(cib)], check=True, capture_output=True, timeout=120)
    return cib


def test_a_converged_cib_is_no_change(tmp_path: Path) -> None:
    result, _ = module(tmp_path, DEMO, rendered(tmp_path, DEMO))
    assert result["changed"] is False and result["changes"] == []


def test_a_drift_is_one_change_named_with_its_secrets_hidden(tmp_path: Path) -> None:
    cib = rendered(tmp_path, DEMO)
    wanted = yaml.safe_load(DEMO.read_text())
    wanted["resources"][0]["meta"]["resource-stickiness"] = 7
    wanted["resources"][0]["params"]["password"] = SECRET
    topology = tmp_path / "drifted.yaml"
    topology.write_text(yaml.safe_dump(wanted, sort_keys=False))
    result, output = module(tmp_path, topology, cib)
    assert result["changed"] is True, output
    assert "web" in output and "resource-stickiness" in output
    assert "worker" not in json.dumps(result["changes"])
    assert SECRET not in output


def test_a_broken_topology_fails_with_hakits_message(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("cluster: {name: x}\nresources:\n  - {name: web, agnt: x}\n")
    result, output = module(tmp_path, broken, rendered(tmp_path, DEMO))
    assert result == {} and "the topology is not valid" in output, output
    assert f"{broken}:3:" in output and "agnt" in output, output
