"""The `hakit` command: answers, and errors as one-line messages, never tracebacks."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hakit.ocf import exits


def hakit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hakit.tools.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def test_agents_list() -> None:
    done = hakit("agents", "list")
    assert done.returncode == 0 and "ocf:hakit:service" in done.stdout


def test_a_corrupt_lab_state_is_a_message(tmp_path: Path) -> None:
    (tmp_path / "lab.json").write_text("{not json")
    done = hakit("lab", "status", env={"HAKIT_LAB_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == exits.ENVIRONMENT
    assert "Traceback" not in done.stderr
    assert f"{tmp_path / 'lab.json'} is unreadable" in done.stderr


def test_an_internal_error_goes_to_a_report(capsys: pytest.CaptureFixture[str]) -> None:
    def crash(_: object) -> int:
        raise RuntimeError("boom")

    assert exits.run(crash, argparse.Namespace(), "hakit") == exits.SOFTWARE
    message = capsys.readouterr().err
    assert message.startswith("hakit: internal error: RuntimeError: boom (details: ")
    report = Path(message.split("details: ")[1].split(";")[0])
    assert "Traceback" in report.read_text()
    report.unlink()


EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "openstack.yaml")


def _bad_inputs(tmp: Path) -> list[tuple[list[str], int]]:
    """(arguments, the exit code the README's table gives them)."""
    (tmp / "empty.xml").write_text("")
    (tmp / "text.xml").write_text("not xml at all")
    (tmp / "notcib.xml").write_text("<html><body/></html>")
    (tmp / "deep.yaml").write_text("cluster: " + "[" * 3000 + "]" * 3000 + "\n")
    (tmp / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    (tmp / "notadb").write_text("hello")
    no_agents = ["--no-agents"]
    return [
        (["topology", "validate", str(tmp / "missing.yaml")], exits.NO),
        (["topology", "validate", str(tmp / "deep.yaml")], exits.NO),
        (["topology", "validate", str(tmp / "binary.yaml")], exits.NO),
        (["topology", "validate", str(tmp)], exits.NO),
        (["topology", "diff", *no_agents, EXAMPLE, "--cib", str(tmp / "empty.xml")], exits.USAGE),
        (["topology", "diff", *no_agents, EXAMPLE, "--cib", str(tmp / "text.xml")], exits.USAGE),
        (["topology", "diff", *no_agents, EXAMPLE, "--cib", str(tmp / "notcib.xml")], exits.USAGE),
        (["topology", "diff", *no_agents, EXAMPLE, "--cib", str(tmp / "none.xml")], exits.USAGE),
        (["topology", "simulate", *no_agents, EXAMPLE, "--fail-node", "node9"], exits.USAGE),
        (["topology", "simulate", *no_agents, EXAMPLE, "--fail-op", "nope:monitor:node1"], 2),
        (["topology", "simulate", *no_agents, EXAMPLE, "--fail-op", "x"], exits.USAGE),
        (["topology", "simulate", *no_agents, EXAMPLE, "--ticket", "revoke:nope"], exits.USAGE),
        (["topology", "simulate", *no_agents, EXAMPLE], exits.USAGE),
        (
            [
                "topology",
                "simulate",
                *no_agents,
                EXAMPLE,
                "--fail-node",
                "node1",
                "--cib",
                str(tmp / "text.xml"),
            ],
            exits.USAGE,
        ),
        (["topology", "import", "--cib", str(tmp / "text.xml")], exits.USAGE),
        (["topology", "import", "--cib", str(tmp / "empty.xml")], exits.USAGE),
        (["topology", "import", "--cib", str(tmp / "none.xml")], exits.USAGE),
        (["health", "serve", "--port", "70000"], exits.USAGE),
        (["health", "serve", "--port", "-1"], exits.USAGE),
        (["health", "serve", "--port", "0", "--subscriptions", str(tmp / "notadb")], exits.USAGE),
        (["health", "subscriptions", "list", "--subscriptions", str(tmp / "no/such.db")], 2),
        (["health", "tokens", "list", "--subscriptions", str(tmp / "notadb")], exits.USAGE),
        (["health", "--interval", "0", "--watch"], exits.USAGE),
        (["lab", "up", "--nodes", "0"], exits.USAGE),
        (["lab", "up", "--nodes", "many"], exits.USAGE),
        (["drill", "run", "node-crash", "--repeat", "0"], exits.USAGE),
        (["no-such-command"], exits.USAGE),
    ]


def test_bad_input_is_a_documented_exit_code_never_an_internal_error(tmp_path: Path) -> None:
    """Every case: its code from the README's table, one message, no traceback, no crash
    log, and no file created by a command that only reads."""
    before = set(tmp_path.rglob("*"))
    for args, code in _bad_inputs(tmp_path):
        before = set(tmp_path.rglob("*"))
        done = hakit(*args)
        assert (done.returncode, args) == (code, args), done.stderr
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
        assert done.stderr.strip(), args
        assert set(tmp_path.rglob("*")) == before, args


def test_no_cluster_is_an_environment_error() -> None:
    """diff against a live CIB that does not answer: Pacemaker's remote-CIB variables
    point cibadmin at a closed loopback port (the discard port: nothing listens)."""
    env = {**os.environ, "CIB_server": "127.0.0.1", "CIB_port": "9"}
    done = hakit("topology", "diff", "--no-agents", EXAMPLE, env=env)
    assert done.returncode == exits.ENVIRONMENT, done.stderr
    assert "Traceback" not in done.stderr and "cibadmin" in done.stderr


def test_the_readme_documents_every_exit_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for code in (exits.OK, exits.NO, exits.USAGE, exits.ENVIRONMENT, exits.SOFTWARE):
        assert f"| {code} |" in readme, code
