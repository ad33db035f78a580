"""The command environment: a cluster declared by shell commands (no lab needed here;
`tests/lab/test_drill.py` drives a whole drill through one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hakit.lab.drill.environment import CommandEnvironment, DrillError


def declare(tmp_path: Path, text: str) -> CommandEnvironment:
    path = tmp_path / "env.yaml"
    path.write_text(text)
    return CommandEnvironment(path)


def test_unknown_verbs_are_named_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(DrillError, match="unknown verbs reboot; known: power-cut"):
        declare(tmp_path, "nodes: [a]\nverbs: {reboot: 'true'}\n")


def test_not_a_mapping_with_nodes(tmp_path: Path) -> None:
    with pytest.raises(DrillError, match="expected a mapping with `nodes`"):
        declare(tmp_path, "- a\n")


def test_verbs_run_with_their_values_and_failures_say_which(tmp_path: Path) -> None:
    marker = tmp_path / "cut"
    env = declare(
        tmp_path,
        f"nodes: [a, b]\nverbs:\n  power-cut: echo {{node}} > {marker}\n" "  heal: 'false'\n",
    )
    env.verb("power-cut", node="b")
    assert marker.read_text() == "b\n"
    with pytest.raises(DrillError, match="heal: false"):
        env.verb("heal")
    with pytest.raises(DrillError, match="declares no 'isolate' verb"):
        env.verb("isolate", node="a")


def test_processes_addresses_and_logs_through_the_declared_commands(tmp_path: Path) -> None:
    log = tmp_path / "pacemaker.log"
    log.write_text("line\n")
    env = declare(
        tmp_path, f"nodes: [a]\nrun: sh -c {{command}}\nlog: {log}\n" "addresses: {a: 127.0.0.1}\n"
    )
    sleeper = subprocess.Popen(["sleep", "3217.5"])
    try:
        assert sleeper.pid in env.processes("a", "sleep 3217.5")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sleeper.pid not in env.processes("a", "sleep 3217.5")
    assert env.address("a") == "127.0.0.1" and env.address("z") == "z"
    assert env.logs()["a"].read_text() == "line\n"
    assert env.status() is None  # no cluster answers here
