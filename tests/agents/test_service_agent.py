"""ocf:hakit:service, installed, driving real daemons as separate processes."""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakit.ocf import OCFExit, proc
from tests.conftest import SYSTEM_PYTHON, AgentResult, run_installed

pytestmark = pytest.mark.usefixtures("installed_agents")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """One resource instance of ocf:hakit:service with its own state directory."""

    def __init__(self, tmp: Path, **params: str) -> None:
        self.tmp = tmp
        self.env = {
            "OCF_RESOURCE_INSTANCE": "svc",
            "HAKIT_RUN_DIR": str(tmp / "run"),
            "OCF_RESKEY_log_file": str(tmp / "daemon.log"),
            "OCF_RESKEY_CRM_meta_timeout": "20000",
            **{f"OCF_RESKEY_{k}": v for k, v in params.items()},
        }

    def __call__(self, action: str, **extra: str) -> AgentResult:
        return run_installed("service", action, {**self.env, **extra})

    def monitor(self, depth: int = 0, interval_ms: int = 10000) -> AgentResult:
        return self(
            "monitor", OCF_CHECK_LEVEL=str(depth), OCF_RESKEY_CRM_meta_interval=str(interval_ms)
        )

    @property
    def pid(self) -> int:
        state = (self.tmp / "run" / "service" / "svc.state").read_text()
        return int(state.split()[0].split("=")[1])


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[Service]]:
    """Services created by a test; stopped afterwards whatever happened."""
    created: list[Service] = []
    yield created
    for service in created:
        service("stop")


@pytest.fixture
def http(tmp_path: Path, services: list[Service]) -> tuple[Service, int]:
    port = free_port()
    service = Service(
        tmp_path,
        binary=SYSTEM_PYTHON,
        ready_port=str(port),
        arguments=f"-m http.server --bind 127.0.0.1 {port}",
    )
    services.append(service)
    return service, port


def script(tmp: Path, name: str, body: str) -> str:
    path = tmp / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_start_returns_only_when_ready_then_monitor_and_stop(http: tuple[Service, int]) -> None:
    service, port = http
    assert service.monitor(interval_ms=0).code == OCFExit.NOT_RUNNING  # probe
    assert service("start").code == OCFExit.SUCCESS
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
        assert reply.status == 200  # ready means ready: no retry needed
    assert service.monitor(0).code == OCFExit.SUCCESS
    assert service.monitor(10).code == OCFExit.SUCCESS
    pid = service.pid
    assert service("start").code == OCFExit.SUCCESS  # idempotent
    assert service.pid == pid
    assert service("stop").code == OCFExit.SUCCESS
    assert not proc.is_alive(pid)
    assert service("stop").code == OCFExit.SUCCESS  # idempotent
    assert service.monitor(0).code == OCFExit.NOT_RUNNING


def test_killed_daemon_is_not_running_with_a_reason(http: tuple[Service, int]) -> None:
    service, _ = http
    assert service("start").code == OCFExit.SUCCESS
    os.kill(service.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while proc.is_alive(service.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    result = service.monitor(0)
    assert result.code == OCFExit.NOT_RUNNING
    assert result.exit_reason and f"daemon pid {service.pid} is gone" in result.exit_reason


def test_stopped_daemon_is_a_failure_not_running(http: tuple[Service, int]) -> None:
    """SIGSTOP keeps the process and its listening socket: only its state tells."""
    service, _ = http
    assert service("start").code == OCFExit.SUCCESS
    os.kill(service.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 5
        while (info := proc.stat(service.pid)) and info.state != "T":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        result = service.monitor(0)
        assert result.code == OCFExit.ERR_GENERIC
        assert result.exit_reason and f"daemon pid {service.pid} is stopped" in result.exit_reason
    finally:
        os.kill(service.pid, signal.SIGCONT)
    assert service.monitor(10).code == OCFExit.SUCCESS


def test_running_but_unready_is_a_failure_never_not_running(
    tmp_path: Path, services: list[Service]
) -> None:
    ready = tmp_path / "ready"
    ready.touch()
    service = Service(tmp_path, binary="sleep", arguments="1000", ready_file=str(ready))
    services.append(service)
    assert service("start").code == OCFExit.SUCCESS
    ready.unlink()
    assert service.monitor(0).code == OCFExit.SUCCESS  # depth 0: the process is fine
    result = service.monitor(10)
    assert result.code == OCFExit.ERR_GENERIC
    assert result.exit_reason == f"running but not ready: ready file {ready} does not exist"
    assert service.monitor(20).code == OCFExit.ERR_GENERIC  # 20 falls back to 10


def test_ready_command(tmp_path: Path, services: list[Service]) -> None:
    flag = tmp_path / "flag"
    service = Service(tmp_path, binary="sleep", arguments="1000", ready_command=f"test -e {flag}")
    services.append(service)
    flag.touch()
    assert service("start").code == OCFExit.SUCCESS
    flag.unlink()
    assert service.monitor(10).exit_reason == "running but not ready: ready_command exited 1"


def test_start_that_never_gets_ready_fails_within_the_deadline(
    tmp_path: Path, services: list[Service]
) -> None:
    service = Service(tmp_path, binary="sleep", arguments="1000", ready_port=str(free_port()))
    services.append(service)
    began = time.monotonic()
    result = service("start", OCF_RESKEY_CRM_meta_timeout="3000")
    assert result.code == OCFExit.ERR_GENERIC
    assert time.monotonic() - began < 3.5
    assert result.exit_reason and "not ready within the start timeout" in result.exit_reason


def test_daemon_that_exits_during_start_reports_its_last_words(
    tmp_path: Path, services: list[Service]
) -> None:
    binary = script(tmp_path, "bad", "echo 'config file missing' >&2; exit 3\n")
    service = Service(tmp_path, binary=binary)
    services.append(service)
    result = service("start")
    assert result.code == OCFExit.ERR_GENERIC
    assert result.exit_reason == "daemon exited during start; last output: config file missing"


def test_stop_kills_a_daemon_that_ignores_term_before_the_deadline(
    tmp_path: Path, services: list[Service]
) -> None:
    binary = script(tmp_path, "stubborn", "trap '' TERM\nsleep 1000 &\nsleep 1000 &\nwait\n")
    service = Service(tmp_path, binary=binary)
    services.append(service)
    assert service("start").code == OCFExit.SUCCESS
    tree = proc.tree(service.pid)
    assert len(tree) == 3
    began = time.monotonic()
    assert service("stop", OCF_RESKEY_CRM_meta_timeout="4000").code == OCFExit.SUCCESS
    assert time.monotonic() - began < 4.0
    assert not any(proc.is_alive(pid) for pid in tree)


def test_stop_reaches_processes_that_left_the_parent_chain(
    tmp_path: Path, services: list[Service]
) -> None:
    """A grandchild that double-forked (reparented) is found by its session."""
    pids = tmp_path / "pids"
    binary = script(tmp_path, "forker", f"(sleep 1000 & echo $! > {pids}) &\nexec sleep 1000\n")
    service = Service(tmp_path, binary=binary)
    services.append(service)
    assert service("start").code == OCFExit.SUCCESS
    orphan = int(pids.read_text())
    assert proc.is_alive(orphan)
    assert service("stop").code == OCFExit.SUCCESS
    assert not proc.is_alive(orphan)


def test_stop_reaches_workers_whose_master_was_killed(
    tmp_path: Path, services: list[Service]
) -> None:
    """A master killed with SIGKILL leaves its workers running: monitor says not running
    (7), and stop still ends the workers (found in the dead master's session)."""
    binary = script(tmp_path, "master", "sleep 1000 &\nsleep 1000 &\nwait\n")
    service = Service(tmp_path, binary=binary)
    services.append(service)
    assert service("start").code == OCFExit.SUCCESS
    master = service.pid
    workers = [pid for pid in proc.tree(master) if pid != master]
    assert len(workers) == 2
    os.kill(master, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while proc.is_alive(master) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.monitor(0).code == OCFExit.NOT_RUNNING
    assert all(proc.is_alive(pid) for pid in workers)
    assert service("stop").code == OCFExit.SUCCESS
    assert not any(proc.is_alive(pid) for pid in workers)


def test_forking_daemon_with_pidfile(tmp_path: Path, services: list[Service]) -> None:
    pidfile = tmp_path / "d.pid"
    binary = script(tmp_path, "forking", f"sleep 1000 &\necho $! > {pidfile}\n")
    service = Service(tmp_path, binary=binary, pidfile=str(pidfile))
    services.append(service)
    assert service("start").code == OCFExit.SUCCESS
    assert service.pid == int(pidfile.read_text())
    assert service.monitor(0).code == OCFExit.SUCCESS
    assert service("stop").code == OCFExit.SUCCESS


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory other users can enter (pytest's tmp_path is private to root)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="hakit-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_user_environment_file_and_no_secret_on_the_command_line(
    shared_tmp: Path, services: list[Service]
) -> None:
    tmp_path = shared_tmp
    out = tmp_path / "out"
    out.touch()
    out.chmod(0o666)
    env_file = tmp_path / "env"
    env_file.write_text("# credentials\nDB_PASSWORD='s3cret'\nexport REGION=one\n")
    binary = script(
        tmp_path, "show", f'echo "$DB_PASSWORD $REGION $(id -un)" > {out}\n' "exec sleep 1000\n"
    )
    service = Service(tmp_path, binary=binary, user="nobody", environment_file=str(env_file))
    services.append(service)
    result = service("start")
    assert result.code == OCFExit.SUCCESS, result.stderr
    assert out.read_text().split() == ["s3cret", "one", "nobody"]
    cmdline = Path(f"/proc/{service.pid}/cmdline").read_bytes()
    assert b"s3cret" not in cmdline
    environ = Path(f"/proc/{service.pid}/environ").read_bytes()
    assert b"OCF_RESKEY" not in environ


@pytest.mark.parametrize(
    ("params", "code", "reason"),
    [
        (
            {"binary": "/nonexistent/daemon"},
            5,
            "binary: program /nonexistent/daemon is not installed here",
        ),
        ({"binary": "sleep", "user": "no-such-user"}, 5, "user no-such-user does not exist here"),
        (
            {"binary": "sleep", "ready_port": "http"},
            6,
            "parameter ready_port='http' is not a TCP/UDP port (1-65535)",
        ),
        (
            {"binary": "sleep", "arguments": "'unbalanced"},
            6,
            "arguments cannot be split: No closing quotation",
        ),
        (
            {"binary": "sleep", "environment_file": "/nonexistent"},
            5,
            "environment_file: /nonexistent does not exist on this node",
        ),
        ({}, 6, "required parameter binary is not set"),
    ],
)
def test_bad_parameters_give_the_right_code_on_start_and_validate(
    tmp_path: Path, params: dict[str, str], code: int, reason: str
) -> None:
    service = Service(tmp_path, **params)
    for action in ("validate-all", "start"):
        result = service(action)
        assert (result.code, result.exit_reason) == (code, reason), action
    assert service.monitor(interval_ms=0).code == OCFExit.NOT_RUNNING  # probes still work
    assert service("stop").code == OCFExit.SUCCESS


def test_metadata_runs_as_nobody(installed_agents: Path) -> None:
    import subprocess

    done = subprocess.run(
        ["su", "nobody", "-s", "/bin/sh", "-c", f"{installed_agents / 'service'} meta-data"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "<resource-agent" in done.stdout, done.stderr
