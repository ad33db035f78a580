"""The install path of docs/install.md, on the lab: the hakit wheel (no lab in it) into a
fresh venv with its dependencies from the package index, that venv's `hakit agents
install` run on every node, a topology with one more ocf:hakit resource applied with that
venv's `hakit` (inside node1, where the cluster answers), and Pacemaker describing and
running hakit's agents. The demo topology and the dev checkout's agents are put back.

The nodes share the host's /usr, so each install writes the same /usr/lib/ocf: from a
wheel built from this checkout it rewrites nothing, and what is checked is that the
wheel alone carries what a node needs."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hakit.lab.lab import Lab
from tests.topology.test_topology import EXAMPLE as DEMO
from tests.unit.test_packaging import SYSTEM_PYTHON, build_wheel

#: The resource the test adds to the demo topology (the demo's own stay as they are).
ADDED = {
    "name": "install-path-web",
    "agent": "ocf:hakit:service",
    "params": {
        "binary": "/usr/bin/python3",
        "arguments": "-m http.server --bind 127.0.0.1 8097",
        "ready_port": 8097,
    },
    "ops": [{"name": "monitor", "interval": "10s", "timeout": "20s"}],
}


@pytest.fixture(scope="module")
def operator_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv, as an operator makes one on a node: the wheel and its dependencies."""
    out = tmp_path_factory.mktemp("install-path")
    wheel = build_wheel(out)
    venv = out / "venv"
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return venv


@pytest.fixture
def restored(lab: Lab) -> Iterator[None]:
    """After the test: the demo topology applied again, the checkout's agents installed."""
    yield
    dev = [sys.executable, "-I", "-m", "hakit.tools.cli"]
    lab.run("node1", [*dev, "topology", "apply", str(DEMO), "--yes"], timeout=180)
    subprocess.run([*dev, "agents", "install"], capture_output=True, check=True, timeout=300)


def wait_running(lab: Lab, resource: str, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = lab.cluster_status("node1")
        if status is not None and (nodes := status.running_on(resource)):
            return sorted(nodes)
        time.sleep(0.5)
    raise AssertionError(f"{resource} not running after {timeout}s")


@pytest.mark.usefixtures("restored")
def test_the_wheel_installs_agents_and_applies_a_topology(
    lab: Lab, operator_venv: Path, tmp_path: Path
) -> None:
    hakit = str(operator_venv / "bin" / "hakit")
    absent = subprocess.run(
        [str(operator_venv / "bin" / "python"), "-c", "import hakit.lab"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "No module named 'hakit.lab'" in absent.stderr
    for node in lab.nodes:  # fails (LabError) unless it exits 0
        installed = lab.run(node, [hakit, "agents", "install"], timeout=300)
        assert re.search(r"\d+ written, \d+ removed, \d+ unchanged", installed.stdout)
    described = lab.run(
        "node1", ["pcs", "resource", "describe", "ocf:hakit:nova-scheduler"], timeout=60
    )
    assert "binary" in described.stdout and "config" in described.stdout

    topology = yaml.safe_load(DEMO.read_text())
    topology["resources"].append(ADDED)
    path = tmp_path / "install-path.yaml"
    path.write_text(yaml.safe_dump(topology, sort_keys=False))
    valid = lab.run("node1", [hakit, "topology", "validate", str(path)], timeout=120)
    assert valid.stdout.startswith(f"{path}: valid (")
    applied = lab.run("node1", [hakit, "topology", "apply", str(path), "--yes"], timeout=180)
    assert applied.stdout.startswith("applied: ") and "install-path-web" in applied.stdout
    assert wait_running(lab, "install-path-web")
    again = lab.run("node1", [hakit, "topology", "apply", str(path), "--yes"], timeout=180)
    assert again.stdout.startswith("no change")
