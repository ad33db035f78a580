"""Shared fixtures: in-process agent runs, the installed agents, a real single-node cluster."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from hakit.ocf import Agent

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hakit.lab.lab import Lab
    from tests.support.single_node import SingleNodeCluster

REPO = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"
OCF_ROOT = Path("/usr/lib/ocf")
HAKIT_AGENTS = OCF_ROOT / "resource.d" / "hakit"


@dataclass
class AgentResult:
    """What one agent run produced."""

    code: int
    stdout: str
    stderr: str

    @property
    def exit_reason(self) -> str | None:
        lines = [ln for ln in self.stderr.splitlines() if ln.startswith("ocf-exit-reason:")]
        return lines[-1][len("ocf-exit-reason:") :] if lines else None


def run_in_process(agent: Agent, action: str, env: Mapping[str, str]) -> AgentResult:
    """Run an action in this process, as Pacemaker would with `env` (no tty)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out):
        code = agent.run([agent.name, action], dict(env), stderr=err)
    return AgentResult(code, out.getvalue(), err.getvalue())


def run_installed(
    agent_type: str, action: str, env: Mapping[str, str], timeout: float = 120
) -> AgentResult:
    """Run an installed ocf:hakit agent as its own process, with only `env`."""
    full_env = {"OCF_ROOT": str(OCF_ROOT), "PATH": os.environ["PATH"], **env}
    done = subprocess.run(
        [str(HAKIT_AGENTS / agent_type), action],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return AgentResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="session")
def installed_agents() -> Path:
    """The agents, installed by `make install-agents` (reinstalled here if stale)."""
    done = subprocess.run(
        [sys.executable, "-m", "hakit.tools.cli", "agents", "install"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return HAKIT_AGENTS


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private HAKIT_RUN_DIR so agents' state files never collide between tests."""
    path = tmp_path / "run"
    monkeypatch.setenv("HAKIT_RUN_DIR", str(path))
    yield path


@pytest.fixture(scope="session")
def pcmk_cluster(
    tmp_path_factory: pytest.TempPathFactory, installed_agents: Path
) -> Iterator[SingleNodeCluster]:
    """One real single-node Pacemaker for every test that needs a cluster; torn down after."""
    from tests.support.single_node import SingleNodeCluster

    cluster = SingleNodeCluster(tmp_path_factory.mktemp("pcmk"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def lab(installed_agents: Path) -> Iterator[Lab]:
    """The 3-node lab (fast profile), up once for every test that needs it, down after."""
    from hakit.lab.lab import Lab

    the_lab = Lab()
    the_lab.up(nodes=3, profile="fast", remotes=0)  # what a run left: the tests add theirs
    try:
        yield the_lab
    finally:
        the_lab.down()
