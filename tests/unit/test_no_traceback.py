"""Whatever the environment, an agent answers with an OCF code and no traceback."""

from __future__ import annotations

import string
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hakit.ocf.codes import EXIT_NAMES
from hakit.resource_agents.service import AGENT as SERVICE
from tests.conftest import REPO, run_in_process
from tests.support.example_agent import AGENT as EXAMPLE

ACTIONS = st.sampled_from(
    [
        "start",
        "stop",
        "monitor",
        "validate-all",
        "notify",
        "promote",
        "demote",
        "reload",
        "reload-agent",
        "migrate_to",
        "migrate_from",
        "meta-data",
        "status",
        "",
        "☃",
    ]
)
TEXT = st.text(alphabet=string.printable + "é☃\x00", max_size=30)
META = st.sampled_from(
    [
        "interval",
        "timeout",
        "clone",
        "clone_max",
        "clone_node_max",
        "globally_unique",
        "notify_type",
        "notify_start_resource",
    ]
)


def environments(param_names: list[str]) -> st.SearchStrategy[dict[str, str]]:
    keys = st.one_of(
        st.sampled_from([f"OCF_RESKEY_{n}" for n in param_names]),
        META.map(lambda m: f"OCF_RESKEY_CRM_meta_{m}"),
        st.sampled_from(["OCF_CHECK_LEVEL", "HA_debug", "OCF_RESOURCE_INSTANCE", "HA_LOGTAG"]),
    )
    values = st.one_of(TEXT, st.integers(-(2**70), 2**70).map(str))
    return st.dictionaries(keys, values.map(lambda v: v.replace("\x00", "")), max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(action=ACTIONS, env=environments([p.name for p in EXAMPLE.parameters]))
def test_example_agent_always_answers_with_an_ocf_code(action: str, env: dict[str, str]) -> None:
    env.pop("OCF_RESKEY_state", None)  # never let random input write a file
    env.pop("HA_LOGFILE", None)
    result = run_in_process(EXAMPLE, action, env)
    assert result.code in EXIT_NAMES
    assert "Traceback" not in result.stderr
    if result.code not in (0, 7, 8, 190, 191):
        assert result.exit_reason, (action, env, result)


@settings(max_examples=150, deadline=None)
@given(
    action=st.sampled_from(["stop", "monitor", "validate-all", "notify", "reload", "x"]),
    env=environments([p.name for p in SERVICE.parameters]),
)
def test_service_agent_always_answers_with_an_ocf_code(
    action: str, env: dict[str, str], tmp_path_factory: object
) -> None:
    env["HAKIT_RUN_DIR"] = "/nonexistent/hakit-test"
    result = run_in_process(SERVICE, action, env)
    assert result.code in EXIT_NAMES
    assert "Traceback" not in result.stderr


def test_a_crashing_agent_process_prints_no_traceback(tmp_path: Path) -> None:
    """The real executable, not just `run()`: stderr holds only the exit reason."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.example_agent", "start"],
        env={
            "OCF_RESKEY_state": str(tmp_path / "s"),
            "OCF_RESKEY_behaviour": "crash",
            "HA_LOGFILE": str(tmp_path / "log"),
            "PATH": "/usr/bin:/bin",
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "ocf-exit-reason:internal error in agent example: RuntimeError" in done.stderr
    assert "Traceback" in (tmp_path / "log").read_text()
