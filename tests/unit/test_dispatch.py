"""Every exit-code path of the framework's dispatch, on the example agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from hakit.ocf import OCFExit
from tests.conftest import run_in_process
from tests.support.example_agent import AGENT


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"OCF_RESOURCE_INSTANCE": "ex", "OCF_RESKEY_state": str(tmp_path / "state")}


def test_start_monitor_stop_cycle(env: dict[str, str]) -> None:
    assert run_in_process(AGENT, "monitor", env).code == OCFExit.NOT_RUNNING
    assert run_in_process(AGENT, "start", env).code == OCFExit.SUCCESS
    assert run_in_process(AGENT, "monitor", env).code == OCFExit.SUCCESS
    assert run_in_process(AGENT, "stop", env).code == OCFExit.SUCCESS
    assert run_in_process(AGENT, "stop", env).code == OCFExit.SUCCESS
    assert run_in_process(AGENT, "monitor", env).code == OCFExit.NOT_RUNNING


def test_unknown_action_is_unimplemented_with_reason(env: dict[str, str]) -> None:
    result = run_in_process(AGENT, "dance", env)
    assert result.code == OCFExit.ERR_UNIMPLEMENTED == 3
    assert result.exit_reason == "example does not implement 'dance'"


def test_wrong_argument_count_is_err_args() -> None:
    result = AGENT.run(["example"], {})
    assert result == OCFExit.ERR_ARGS
    assert AGENT.run(["example", "start", "extra"], {}) == OCFExit.ERR_ARGS


@pytest.mark.parametrize(
    "action", ["notify", "promote", "demote", "reload", "migrate_to", "migrate_from"]
)
def test_optional_actions_dispatch(env: dict[str, str], action: str) -> None:
    assert run_in_process(AGENT, action, env).code == OCFExit.SUCCESS


def test_reload_agent_is_provided_for_reloadable_parameters(env: dict[str, str]) -> None:
    assert AGENT.action("reload-agent") is not None
    assert run_in_process(AGENT, "reload-agent", env).code == OCFExit.SUCCESS


def test_missing_required_parameter_is_err_configured_on_start() -> None:
    result = run_in_process(AGENT, "start", {})
    assert result.code == OCFExit.ERR_CONFIGURED
    assert result.exit_reason == "required parameter state is not set"


def test_missing_required_parameter_still_allows_stop_and_probe() -> None:
    assert run_in_process(AGENT, "stop", {}).code == OCFExit.SUCCESS
    probe = {"OCF_RESKEY_CRM_meta_interval": "0"}
    result = run_in_process(AGENT, "monitor", probe)
    # The probe runs; this agent then reads the missing parameter and reports 6 itself.
    assert result.code == OCFExit.ERR_CONFIGURED
    assert "WARNING: monitor continues despite" in result.stderr


def test_recurring_monitor_with_missing_required_parameter_fails(tmp_path: Path) -> None:
    result = run_in_process(AGENT, "monitor", {"OCF_RESKEY_CRM_meta_interval": "10000"})
    assert result.code == OCFExit.ERR_CONFIGURED


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("count", "three", "parameter count='three' is not an integer from 0 to 10"),
        ("count", "11", "parameter count='11' is not an integer from 0 to 10: out of range"),
        ("mode", "turbo", "parameter mode='turbo' is not one of fast, safe"),
        ("flag", "maybe", "parameter flag='maybe' is not a boolean (true/false, yes/no, 1/0)"),
        ("port", "0", "parameter port='0' is not a TCP/UDP port (1-65535): out of range"),
        ("state", "relative/path", "parameter state='relative/path' is not an absolute path"),
    ],
)
def test_bad_values_are_err_configured(
    env: dict[str, str], name: str, value: str, reason: str
) -> None:
    result = run_in_process(AGENT, "start", {**env, f"OCF_RESKEY_{name}": value})
    assert result.code == OCFExit.ERR_CONFIGURED
    assert result.exit_reason is not None and result.exit_reason.startswith(reason)


def test_all_problems_are_reported_at_once(env: dict[str, str]) -> None:
    bad = {**env, "OCF_RESKEY_count": "x", "OCF_RESKEY_mode": "y"}
    reason = run_in_process(AGENT, "validate-all", bad).exit_reason or ""
    assert "count='x'" in reason and "mode='y'" in reason


def test_missing_program_is_err_installed(env: dict[str, str]) -> None:
    result = run_in_process(AGENT, "start", {**env, "OCF_RESKEY_tool": "no-such-program-xyz"})
    assert result.code == OCFExit.ERR_INSTALLED
    assert result.exit_reason == "tool: program no-such-program-xyz is not installed here"


def test_configuration_error_outranks_installation_error(env: dict[str, str]) -> None:
    bad = {**env, "OCF_RESKEY_tool": "/nonexistent", "OCF_RESKEY_mode": "bad"}
    assert run_in_process(AGENT, "validate-all", bad).code == OCFExit.ERR_CONFIGURED


def test_missing_program_does_not_break_a_probe(env: dict[str, str]) -> None:
    probe = {**env, "OCF_RESKEY_tool": "/nonexistent", "OCF_RESKEY_CRM_meta_interval": "0"}
    assert run_in_process(AGENT, "monitor", probe).code == OCFExit.NOT_RUNNING


@pytest.mark.parametrize("code", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 190, 191])
def test_every_ocf_code_passes_through(env: dict[str, str], code: int) -> None:
    assert (
        run_in_process(AGENT, "monitor", {**env, "OCF_RESKEY_behaviour": f"exit:{code}"}).code
        == code
    )
    raised = run_in_process(AGENT, "monitor", {**env, "OCF_RESKEY_behaviour": f"fail:{code}"})
    assert raised.code == code
    assert raised.exit_reason is not None


def test_non_ocf_code_becomes_err_generic(env: dict[str, str]) -> None:
    result = run_in_process(AGENT, "monitor", {**env, "OCF_RESKEY_behaviour": "exit:42"})
    assert result.code == OCFExit.ERR_GENERIC
    assert result.exit_reason == "agent returned 42, not an OCF exit code"


def test_exception_becomes_err_generic_without_traceback(
    env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "agent.log"
    crash = {
        **env,
        "OCF_RESKEY_behaviour": "crash",
        "OCF_RESKEY_password": "s3cr3t!",
        "HA_LOGFILE": str(log),
    }
    result = run_in_process(AGENT, "start", crash)
    assert result.code == OCFExit.ERR_GENERIC
    assert result.exit_reason == "internal error in agent example: RuntimeError: boom with ******"
    assert "Traceback" not in result.stderr
    logged = log.read_text()
    assert "Traceback (most recent call last)" in logged and "RuntimeError" in logged
    assert "s3cr3t!" not in logged and "s3cr3t!" not in result.stderr


def test_validate_all_success(env: dict[str, str]) -> None:
    assert run_in_process(AGENT, "validate-all", env).code == OCFExit.SUCCESS


def test_meta_data_needs_no_parameters() -> None:
    result = run_in_process(AGENT, "meta-data", {})
    assert result.code == OCFExit.SUCCESS
    assert result.stdout.startswith('<?xml version="1.0"?>')
