"""ocf:hakit:service as Pacemaker's own tools see it, without a running cluster:
ocf-tester, crm_resource (metadata, validate, force-start/check/stop), pcs and crmsh."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hakit.ocf import proc
from tests.agents.test_service_agent import free_port
from tests.conftest import SYSTEM_PYTHON

pytestmark = pytest.mark.usefixtures("installed_agents")


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)


def http_options(port: int) -> list[str]:
    return [
        f"binary={SYSTEM_PYTHON}",
        f"arguments=-m http.server --bind 127.0.0.1 {port}",
        f"ready_port={port}",
        "log_file=/var/log/hakit/test-pcmk-tools.log",
    ]


def test_ocf_tester_passes_against_a_real_daemon(installed_agents: Path) -> None:
    args = ["ocf-tester", "-n", "hakit-ocf-tester"]
    for option in http_options(free_port()):
        args += ["-o", option]
    done = run(*args, str(installed_agents / "service"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed all tests" in done.stdout


def test_crm_resource_show_metadata() -> None:
    done = run("crm_resource", "--show-metadata", "ocf:hakit:service")
    assert done.returncode == 0, done.stderr
    assert '<resource-agent name="service"' in done.stdout


def test_crm_resource_force_start_check_stop() -> None:
    port = free_port()
    base = ["crm_resource", "--class", "ocf", "--provider", "hakit", "--agent", "service"]
    for option in http_options(port):
        name, _, value = option.partition("=")
        base += ["--option", f"{name}={value}"]
    assert run(*base, "--validate").returncode == 0
    started = run(*base, "--force-start")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        assert proc.listening_on(_listener_pid(port), port)
        assert run(*base, "--force-check").returncode == 0
    finally:
        assert run(*base, "--force-stop").returncode == 0
    checked = run(*base, "--force-check")
    assert checked.returncode == 7, checked.stdout + checked.stderr  # not running


def test_crm_resource_validate_reports_bad_parameters() -> None:
    done = run(
        "crm_resource",
        "--validate",
        "--class",
        "ocf",
        "--provider",
        "hakit",
        "--agent",
        "service",
        "--option",
        "binary=/nonexistent",
    )
    assert done.returncode == 5
    assert "binary: program /nonexistent is not installed here" in done.stdout + done.stderr


def test_pcs_resource_describe() -> None:
    done = run("pcs", "resource", "describe", "ocf:hakit:service")
    assert done.returncode == 0, done.stderr
    assert "binary (required)" in done.stdout and "ready_port" in done.stdout


def test_crm_ra_info() -> None:
    done = run("crm", "ra", "info", "ocf:hakit:service")
    assert done.returncode == 0, done.stderr
    assert "binary*" in done.stdout and "ready_port" in done.stdout


def _listener_pid(port: int) -> int:
    for info in proc.all_processes():
        if info.comm.startswith("python") and proc.listening_on(info.pid, port):
            return info.pid
    raise AssertionError(f"nothing listens on {port}")
