"""ocf:hakit:publisher's evacuation parameters, in process: validate-all refuses values out
of range (6, with the parameter's own words), and the daemon's command line carries them
to `hakit health publish`, whose parser reads them back (and refuses the same values)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from hakit.ocf.context import Context
from hakit.ocf.log import Logger
from hakit.ocf.params import ParameterValues
from hakit.resource_agents import publisher as agent
from hakit.resource_agents.health.cli import add_parser
from tests.conftest import run_in_process


def env_of(tmp_path: Path, **params: str) -> dict[str, str]:
    return {
        "OCF_RESOURCE_INSTANCE": "health-publisher",
        "HAKIT_RUN_DIR": str(tmp_path / "run"),
        "OCF_RESKEY_program": "/bin/true",
        "OCF_RESKEY_outbox": str(tmp_path / "outbox.db"),
        **{f"OCF_RESKEY_{k}": v for k, v in params.items()},
    }


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (
            {"evacuate_guard": "0"},
            "parameter evacuate_guard='0' is not an integer from 1 to 100: out of range",
        ),
        (
            {"evacuate_workers": "65"},
            "parameter evacuate_workers='65' is not an integer from 1 to 64: out of range",
        ),
        (
            {"evacuate_guard_hold": "-1"},
            "parameter evacuate_guard_hold='-1' is not an integer from 0 to 3600: out of range",
        ),
        (
            {"evacuate_deadline": "soon"},
            "parameter evacuate_deadline='soon' is not an integer from 1 to 86400",
        ),
        ({"evacuate": "true", "evacuate_guard": "30"}, "evacuate=true needs cloud"),
    ],
)
def test_bad_evacuation_parameters_are_6_with_the_reason(
    tmp_path: Path, params: dict[str, str], reason: str
) -> None:
    result = run_in_process(agent.AGENT, "validate-all", env_of(tmp_path, **params))
    assert (result.code, result.exit_reason) == (6, reason)


def publish_args(argv: list[str]) -> argparse.Namespace:
    """`hakit health ARGV` as the CLI parses it (the agent's program is its entry point)."""
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(["health", *argv])


def test_the_daemon_gets_the_evacuation_settings(tmp_path: Path) -> None:
    env = env_of(
        tmp_path,
        cloud="hakit",
        evacuate="true",
        evacuate_guard="30",
        evacuate_guard_hold="0",
        evacuate_deadline="300",
    )
    ctx = Context(
        "start", env, params=ParameterValues(agent.AGENT.parameters, env), log=Logger("t", env)
    )
    argv = agent.argv(ctx)
    flags = ["--evacuate", "--evacuate-workers", "8", "--evacuate-guard", "30"]
    flags += ["--evacuate-guard-hold", "0", "--evacuate-deadline", "300"]
    assert argv[argv.index("--evacuate") :][:9] == flags
    args = publish_args(argv[1:])
    settings = (args.evacuate_workers, args.evacuate_guard, args.evacuate_guard_hold)
    assert (*settings, args.evacuate_deadline) == (8, 30, 0, 300)
    defaults = publish_args(["publish"])
    assert (defaults.evacuate_workers, defaults.evacuate_guard) == (8, 50)
    assert (defaults.evacuate_guard_hold, defaults.evacuate_deadline) == (60, 120)


def test_the_daemon_refuses_a_guard_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        publish_args(["publish", "--evacuate-guard", "0"])
    assert refused.value.code == 2
    assert "--evacuate-guard: 0 is not from 1 to 100" in capsys.readouterr().err
