"""The mini cloud drills' pieces that need no cloud: the command line's refusals, nova's
console URLs, fault counting. The drills themselves run in tests/lab/test_minicloud.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hakit.lab.drill.console import sha256, token_of
from hakit.lab.drill.scheduler import _fault


def drill(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hakit.tools.cli", "drill", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schedulers", "0"], "scheduler counts start at 1: '0'"),
        (["--schedulers", "1,two"], "not a list of numbers: '1,two'"),
        (["--boots", "0"], "not a positive number: '0'"),
        (["--boots", "-5"], "not a positive number: '-5'"),
    ],
)
def test_bad_burst_options_are_refused_with_the_reason(args: list[str], message: str) -> None:
    done = drill("run", "scheduler-burst", "--lab", *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("scenario", ["scheduler-burst", "console-tokens"])
def test_cloud_drills_refuse_another_cluster(scenario: str, tmp_path: Path) -> None:
    declared = tmp_path / "cluster.yaml"
    declared.write_text("nodes: [a]\nrun: 'true'\n")
    done = drill("run", scenario, "--environment", str(declared), "--out", str(tmp_path))
    assert (done.returncode, done.stderr.strip()) == (
        2,
        f"hakit: {scenario} runs on the lab's mini cloud only (--lab)",
    )


def test_a_drill_names_its_target_and_asks_before_it_injects(tmp_path: Path) -> None:
    """No target: refused; no --yes (and no terminal): refused before anything is done
    (no lab brought up, no report written); --dry-run says what and where."""
    nowhere = drill("run", "power-cut", "--out", str(tmp_path / "r"))
    assert (
        nowhere.returncode == 2 and "--lab" in nowhere.stderr and "--environment" in nowhere.stderr
    )
    unasked = drill("run", "power-cut", "--lab", "--out", str(tmp_path / "r"))
    assert unasked.returncode == 2 and "add --yes" in unasked.stderr
    assert not (tmp_path / "r").exists()
    plan = drill("run", "power-cut", "--lab", "--target", "node2", "--dry-run")
    assert plan.returncode == 0
    assert plan.stdout.startswith("would run drill power-cut on this machine's hakit lab")
    assert "node2" in plan.stdout


def test_the_list_names_the_cloud_drills_and_what_they_need() -> None:
    listed = drill("list").stdout
    for name in ("scheduler-burst", "console-tokens"):
        [line] = [line for line in listed.splitlines() if line.startswith(name)]
        assert line.endswith("[needs `hakit lab cloud up`]")


def test_token_of_nova_novnc_urls() -> None:
    token = "3c1f6d51-8a9e-4c27-b8a5-0b8b1f6b9d20"  # noqa: S105 (a made-up console token)
    encoded = f"http://127.0.0.1:6080/vnc_auto.html?path=%3Ftoken%3D{token}"  # nova ≥ 2023.1
    assert token_of(encoded) == token
    assert token_of(f"http://127.0.0.1:6080/vnc_auto.html?token={token}") == token
    # what nova stores in console_auth_tokens.token_hash
    assert sha256(token) == "c6e4ffe8f082a34b95dd8b6d7958eb2f7e90994dd897f26d447609bcdfc23129"


def test_faults_are_counted_without_their_ids() -> None:
    first = {
        "fault": {
            "message": "MessagingTimeout: Timed out waiting for a reply to message "
            "ID 0a1b2c3d4e5f60718293a4b5c6d7e8f9"
        }
    }
    second = {
        "fault": {
            "message": "MessagingTimeout: Timed out waiting for a reply to message "
            "ID ffffffffffffffffffffffffffffffff"
        }
    }
    assert _fault(first) == _fault(second)
    assert (
        _fault({"fault": {"message": "No valid host was found. "}}) == "No valid host was found. "
    )
    assert _fault({}) == "no fault recorded"
