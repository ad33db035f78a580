"""The OpenStack tier: real cinder and nova from the pinned venv, against a MariaDB, a
RabbitMQ and a Keystone of the session's own on loopback, driven through the installed
agents. Every API validates tokens with that Keystone (keystonemiddleware's authtoken)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hakit.lab import openstack
from hakit.lab.keystone import Identity
from tests.conftest import HAKIT_AGENTS, OCF_ROOT, AgentResult, run_installed
from tests.openstack.infra import Keystone, MariaDB, RabbitMQ

REPORT_INTERVAL = 2
SERVICE_DOWN_TIME = 10
NOVNC_PORT = 16080
CINDER_API_PORT = 18776
#: the session's catalog (a module serving an API elsewhere names its endpoint itself)
ENDPOINTS = {
    "compute": "http://127.0.0.1:18774/v2.1",
    "volumev3": f"http://127.0.0.1:{CINDER_API_PORT}/v3",
    "placement": "http://127.0.0.1:18778",
}


@dataclass
class Cloud:
    """What the services need: the venv, the configuration files, the three servers."""

    root: Path
    venv: Path
    password: str
    mariadb: MariaDB
    rabbitmq: RabbitMQ
    keystone: Keystone
    cinder_conf: Path
    nova_conf: Path

    @property
    def identity(self) -> Identity:
        return self.keystone.identity

    @property
    def clouds_yaml(self) -> Path:
        """clouds `hakit` (admin in project service), `demo` (member of project demo) and
        those `Keystone.project_cloud` added."""
        return self.keystone.clouds_yaml

    def secrets(self) -> list[str]:
        """Every password of the session: none may appear in an agent's output."""
        return [self.password, *self.identity.passwords.values()]

    def bin(self, program: str) -> str:
        return str(self.venv / "bin" / program)

    def db_url(self, name: str) -> str:
        return f"{self.mariadb.url}/{name}?charset=utf8"


def in_parallel(*jobs: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def cloud(installed_agents: Path) -> Iterator[Cloud]:
    """MariaDB, RabbitMQ, the venv, synced databases and Keystone serving, once per
    session; stopped after."""
    if os.geteuid() != 0:
        pytest.skip("the OpenStack tier needs root")
    needed = (
        "/usr/sbin/mariadbd",
        "/usr/lib/rabbitmq/bin/rabbitmq-server",
        "/usr/lib/python3/dist-packages/pymysql/__init__.py",
    )
    missing = [path for path in needed if not Path(path).exists()]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: apt-get install mariadb-server "
            "rabbitmq-server python3-pymysql (make deps does it)"
        )
    root = Path(tempfile.mkdtemp(prefix="hakit-openstack-"))
    root.chmod(0o755)
    password = secrets.token_hex(12)
    mariadb, rabbitmq = MariaDB(root, password), RabbitMQ(root, password)
    began = time.monotonic()
    venvs: list[Path] = []
    started: list[Keystone] = []
    try:
        in_parallel(mariadb.start, rabbitmq.start, lambda: venvs.append(openstack.ensure_venv()))
        venv = venvs[0]
        keystone_server = Keystone(root, venv, f"{mariadb.url}/keystone?charset=utf8")
        started.append(keystone_server)
        state = root / "state"
        (state / "locks").mkdir(parents=True)
        (state / "coordination").mkdir()
        (state / "novnc").mkdir()
        cinder = openstack.cinder_config(
            transport_url=rabbitmq.transport_url,
            database_url=f"{mariadb.url}/cinder?charset=utf8",
            state_dir=state,
            cluster="hakit",
            coordination_url=f"file://{state / 'coordination'}",
            report_interval=REPORT_INTERVAL,
            service_down_time=SERVICE_DOWN_TIME,
            api_port=CINDER_API_PORT,
            api_paste_config=venv / "etc" / "cinder" / "api-paste.ini",
            identity=keystone_server.identity,
        )
        cinder["DEFAULT"]["graceful_shutdown_timeout"] = 5
        nova = openstack.nova_config(
            transport_url=rabbitmq.transport_url,
            database_url=f"{mariadb.url}/nova?charset=utf8",
            api_database_url=f"{mariadb.url}/nova_api?charset=utf8",
            state_dir=state,
            report_interval=REPORT_INTERVAL,
            service_down_time=SERVICE_DOWN_TIME,
            scheduler_workers=2,
            novncproxy_port=NOVNC_PORT,
            placement_url=ENDPOINTS["placement"],
            identity=keystone_server.identity,
        )
        nova["DEFAULT"]["graceful_shutdown_timeout"] = 5
        cinder_conf = openstack.write_config(root / "etc" / "cinder.conf", cinder)
        nova_conf = openstack.write_config(root / "etc" / "nova.conf", nova)
        openstack.create_databases(
            venv, mariadb.url + "/", ["keystone", "cinder", "nova_api", "nova", "nova_cell0"]
        )
        in_parallel(
            lambda: openstack.cinder_db_sync(venv, [cinder_conf]),
            lambda: openstack.nova_db_sync(venv, [nova_conf]),
            lambda: keystone_server.start(ENDPOINTS),
        )
        sys.stderr.write(f"\nOpenStack tier ready in {time.monotonic() - began:.1f}s\n")
        yield Cloud(
            root, venv, password, mariadb, rabbitmq, keystone_server, cinder_conf, nova_conf
        )
    finally:
        try:
            for server in started:
                server.stop()
        finally:
            try:
                rabbitmq.stop()
            finally:
                mariadb.stop()
                shutil.rmtree(root, ignore_errors=True)


class Resource:
    """One resource instance of an installed agent, with its own run directory."""

    def __init__(self, agent: str, tmp: Path, instance: str, **params: str) -> None:
        self.agent = agent
        self.tmp = tmp
        self.instance = instance
        self.env = {
            "OCF_RESOURCE_INSTANCE": instance,
            "HAKIT_RUN_DIR": str(tmp / "run"),
            "OCF_RESKEY_log_file": str(tmp / f"{instance.partition(':')[0]}.log"),
            "OCF_RESKEY_CRM_meta_timeout": "60000",
            **{f"OCF_RESKEY_{k}": v for k, v in params.items()},
        }

    def __call__(self, action: str, **extra: str) -> AgentResult:
        return run_installed(self.agent, action, {**self.env, **extra})

    def monitor(
        self,
        depth: int = 0,
        *,
        interval_ms: int = 10000,
        env: dict[str, str] | None = None,
        **extra: str,
    ) -> AgentResult:
        return self(
            "monitor",
            OCF_CHECK_LEVEL=str(depth),
            OCF_RESKEY_CRM_meta_interval=str(interval_ms),
            **(env or {}),
            **extra,
        )

    @property
    def state_name(self) -> str:
        return self.instance.partition(":")[0]

    @property
    def pid(self) -> int:
        state = (self.tmp / "run" / "service" / f"{self.state_name}.state").read_text()
        return int(state.split()[0].split("=")[1])

    def health(self) -> str:
        path = self.tmp / "run" / "service" / f"{self.state_name}.health"
        return path.read_text() if path.exists() else ""

    def log(self) -> str:
        path = Path(self.env["OCF_RESKEY_log_file"])
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def median_monitor_ms(resource: Resource, depth: int, runs: int = 7) -> float:
    """Median wall time (ms) of a successful monitor, each a fresh agent process."""
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        result = resource.monitor(depth)
        timings.append((time.perf_counter() - began) * 1000)
        assert result.code == 0, result.stderr
    return sorted(timings)[runs // 2]


def imported_modules(resource: Resource, depth: int) -> set[str]:
    """Modules a monitor imports (python -X importtime of the installed agent)."""
    env = {
        "OCF_ROOT": str(OCF_ROOT),
        "PATH": os.environ["PATH"],
        **resource.env,
        "OCF_CHECK_LEVEL": str(depth),
        "OCF_RESKEY_CRM_meta_interval": "10000",
    }
    done = subprocess.run(
        [
            "/usr/bin/python3",
            "-IS",
            "-X",
            "importtime",
            str(HAKIT_AGENTS / resource.agent),
            "monitor",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {ln.split("|")[-1].strip() for ln in done.stderr.splitlines() if "|" in ln}


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `check`; return the seconds it took, or fail."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if check():
            return time.monotonic() - began
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


FAKE_ATTRD = '''#!/usr/bin/python3
"""attrd_updater stand-in: attributes are files DIR/<node>/<name>."""
import os, sys
root = os.environ["HAKIT_FAKE_CLUSTER"]
node = os.environ.get("OCF_RESKEY_CRM_meta_on_node") or os.uname().nodename
args = sys.argv[1:]
name = args[args.index("-n") + 1]
if "-U" in args:
    os.makedirs(f"{root}/{node}", exist_ok=True)
    with open(f"{root}/{node}/{name}", "w") as f:
        f.write(args[args.index("-U") + 1])
elif "-D" in args:
    try:
        os.unlink(f"{root}/{node}/{name}")
    except FileNotFoundError:
        pass
elif "-Q" in args:
    for host in sorted(os.listdir(root)):
        path = f"{root}/{host}/{name}"
        if os.path.isfile(path):
            print(f'name="{name}" host="{host}" value="{open(path).read()}"')
'''
FAKE_CRM_NODE = """#!/bin/sh
# crm_node stand-in: -q prints DIR/quorum (default 1)
cat "$HAKIT_FAKE_CLUSTER/quorum" 2>/dev/null || echo 1
"""


class FakeCluster:
    """attrd_updater and crm_node that keep node attributes in files: other nodes'
    published health can be staged, and this node's read back."""

    def __init__(self, root: Path) -> None:
        self.root = root / "attrs"
        self.bin = root / "bin"
        self.root.mkdir(parents=True)
        self.bin.mkdir()
        for name, text in (("attrd_updater", FAKE_ATTRD), ("crm_node", FAKE_CRM_NODE)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin}:{os.environ['PATH']}", "HAKIT_FAKE_CLUSTER": str(self.root)}

    def set(self, node: str, name: str, value: str) -> None:
        (self.root / node).mkdir(exist_ok=True)
        (self.root / node / name).write_text(value)

    def get(self, node: str, name: str) -> str | None:
        path = self.root / node / name
        return path.read_text() if path.exists() else None

    def quorum(self, quorate: bool) -> None:
        (self.root / "quorum").write_text("1\n" if quorate else "0\n")


@pytest.fixture
def fake_cluster(tmp_path: Path) -> FakeCluster:
    return FakeCluster(tmp_path / "fake-cluster")


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("openstack")
    path.chmod(0o755)
    return path
