"""The `hakit` command: answers, and errors as one-line messages, never tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hakit.tools import cli


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
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{tmp_path / 'lab.json'} is unreadable" in done.stderr


def test_an_internal_error_goes_to_a_report(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError as error:
        assert cli._crashed(error) == 70
    message = capsys.readouterr().err
    assert message.startswith("hakit: internal error: RuntimeError: boom (details: ")
    report = Path(message.split("details: ")[1].split(";")[0])
    assert "Traceback" in report.read_text()
    report.unlink()
