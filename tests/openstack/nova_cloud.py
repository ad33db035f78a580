"""Real nova on 127.0.0.1 for the OpenStack tests, through the session's Keystone.

`nova_cloud` starts placement (hakit's placement_config with Keystone), nova-conductor and
nova-api (nova.wsgi.osapi_compute under the standard library's wsgiref, with the venv's
own api-paste.ini: keystonemiddleware's authtoken) from the pinned venv, on the session's
MariaDB and RabbitMQ, and stops them, and whatever the module started through it
(nova-computes, schedulers, the glance and neutron stand-ins of
hakit.lab.openstack_stubs), when the block ends. nova-compute needs placement
answering before it starts: it exits when version discovery in its report client fails.
Servers boot from the glance stand-in's one image with `"networks": "none"` (nova 34 asks
neutron even then: `stub_settings`); new nova-computes need `discover_hosts`.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hakit.lab import cloud_config, openstack, openstack_stubs
from hakit.ocf import proc
from hakit.resource_agents.clouds import CloudSession
from hakit.resource_agents.health.nova import ComputeAPI
from hakit.resource_agents.health.outbox import Outbox
from hakit.resource_agents.health.publisher import Publisher, PublisherConfig
from hakit.resource_agents.health.sources import ClusterView, Leadership, alert_evidence
from hakit.tools.install_agents import LIBEXEC
from tests.health.conftest import AlertRunner, Cib
from tests.openstack.conftest import Cloud, in_parallel, wait_until
from tests.openstack.infra import http_answers, port_free


@dataclass
class Services:
    """The processes a module started, each in a session of its own."""

    root: Path
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with (self.root / f"{name}.log").open("ab") as out:
            self.children[name] = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )

    def log(self, name: str, tail: int = 3000) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-tail:]

    def running(self) -> bool:
        """True, or fail with the log of the one that exited."""
        for name, child in self.children.items():
            assert child.poll() is None, f"{name} exited {child.returncode}:\n{self.log(name)}"
        return True

    def stop(self, name: str, grace: float) -> None:
        """TERM the process and its workers (by PID), KILL after `grace` seconds."""
        child = self.children.pop(name)
        left = proc.terminate_tree(child.pid, time.monotonic() + grace + 5, kill_margin=5)
        child.wait(timeout=5)
        assert not left, f"{name}: {left} survived"

    def stop_all(self, grace: float) -> None:
        """All at once (nova-compute takes its graceful_shutdown_timeout to stop)."""
        in_parallel(*(lambda n=name: self.stop(n, grace) for name in list(self.children)))


@dataclass
class NovaCloud:
    """The compute API (as hakit's user, an admin), the processes behind it, and how to
    start more."""

    cloud: Cloud
    root: Path
    api: ComputeAPI
    api_port: int
    placement_port: int
    services: Services
    #: the settings on top of the session's nova.conf, for every nova service
    config: Path
    env: dict[str, str]

    def start(self, name: str, program: str, *configs: Path) -> None:
        """Start a nova console script (nova-compute...) on nova.conf, `config`, `configs`."""
        argv = [self.cloud.bin(program)]
        for path in (self.cloud.nova_conf, self.config, *configs):
            argv += ["--config-file", str(path)]
        self.services.start(name, argv, self.env)

    def start_stubs(self, glance_port: int, neutron_port: int) -> None:
        """The glance and neutron stand-ins (`stub_settings` points nova at them)."""
        for name, port in (("glance", glance_port), ("neutron", neutron_port)):
            if not port_free(port):
                pytest.fail(f"127.0.0.1:{port} is busy")
            self.services.start(
                name,
                [self.cloud.bin("python"), openstack_stubs.__file__, name, str(port)],
                self.env,
            )

    def start_compute(self, host: str, driver: str = "fake.MediumFakeDriver") -> None:
        """nova-compute `host` (process name too) on the fake driver, its own state_path."""
        state = self.root / f"state-{host}"
        (state / "locks").mkdir(parents=True)
        self.start(
            host,
            "nova-compute",
            openstack.write_config(
                self.root / f"{host}.conf",
                {
                    "DEFAULT": {"host": host, "compute_driver": driver, "state_path": state},
                    "oslo_concurrency": {"lock_path": state / "locks"},
                },
            ),
        )

    def start_scheduler(self, host: str, *, debug: bool = False) -> None:
        """nova-scheduler `host` (process name too)."""
        self.start(
            host,
            "nova-scheduler",
            openstack.write_config(
                self.root / f"{host}.conf", {"DEFAULT": {"host": host, "debug": debug}}
            ),
        )

    def request(self, method: str, path: str, body: object = None) -> Any:
        """The compute API as the admin (ComputeAPI's microversion); raises on non-2xx."""
        return self.api.request(method, path, body)

    def services_up(self, binary: str, hosts: Sequence[str]) -> bool:
        """Every host's `binary` is up in the compute API."""
        answer = self.request("GET", f"/os-services?binary={binary}")
        return {s["host"] for s in answer["services"] if s["state"] == "up"} >= set(hosts)

    def discover_hosts(self) -> float:
        """`nova-manage cell_v2 discover_hosts` (map the new computes); its seconds."""
        began = time.monotonic()
        done = subprocess.run(
            [
                self.cloud.bin("nova-manage"),
                "--config-file",
                str(self.cloud.nova_conf),
                "--config-file",
                str(self.config),
                "cell_v2",
                "discover_hosts",
                "--verbose",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return time.monotonic() - began

    def create_flavor(self, name: str, vcpus: int = 1, ram: int = 512, disk: int = 1) -> None:
        self.request(
            "POST",
            "/flavors",
            {"flavor": {"name": name, "id": name, "vcpus": vcpus, "ram": ram, "disk": disk}},
        )

    def boot(self, name: str, flavor: str, host: str | None = None) -> str:
        """POST a server from the stub image without networks, on `host` when given (the
        admin's `nova:HOST` zone); its id (not waited for)."""
        zone = {"availability_zone": f"nova:{host}"} if host else {}
        answer = self.request(
            "POST",
            "/servers",
            {
                "server": {
                    "name": name,
                    "imageRef": openstack_stubs.IMAGE_ID,
                    "flavorRef": flavor,
                    "networks": "none",
                    **zone,
                }
            },
        )
        return str(answer["server"]["id"])

    def placement_get(self, path: str) -> Any:
        """GET from placement as hakit's user (an admin), microversion 1.28."""
        return self.placement_request("GET", path)

    def placement_request(self, method: str, path: str, body: object = None) -> Any:
        """One placement call as hakit's user (an admin), microversion 1.28."""
        return self.api.cloud.request(
            "placement",
            method,
            path,
            body=body,
            headers={"OpenStack-API-Version": "placement 1.28"},
            endpoint=f"http://127.0.0.1:{self.placement_port}",
        )

    def providers(self) -> dict[str, str]:
        """Resource provider name → uuid."""
        answer = self.placement_get("/resource_providers")
        return {p["name"]: p["uuid"] for p in answer["resource_providers"]}

    def computes_up(self, hosts: Sequence[str]) -> bool:
        """Every host's nova-compute is up in the compute API (fails if a process exited)."""
        if not self.services.running() or not http_answers(self.api_port):
            return False
        return all([s.state for s in self.api.compute_services(h)] == ["up"] for h in hosts)

    def forget_computes(self, hosts: Sequence[str], timeout: float = 120) -> None:
        """Remove `hosts`' nova-computes from nova with the servers nova places there, so
        that a later module can start computes of the same names on fresh state (nova
        refuses to start a known compute without its node identity). Their nova-compute
        processes must be stopped: the services are forced down first, so nova-api
        deletes the servers itself (and their volume attachments, through cinder). Their
        resource providers must be in this placement (nova-api answers 500 otherwise)."""
        for host in hosts:
            self.api.set_forced_down(host, True)
        for host in hosts:
            for server in self.api.servers(host):
                self.request("DELETE", f"/servers/{server.id}")
        wait_until(
            lambda: not any(self.api.servers(h) for h in hosts),
            timeout,
            f"the servers on {', '.join(hosts)} deleted",
        )
        for host in hosts:
            for service in self.api.compute_services(host):
                self.request("DELETE", f"/os-services/{service.id}")

    def api_requests(self, method: str) -> list[str]:
        """nova-api's request log lines for `method` requests."""
        log = (self.root / "api.log").read_text(errors="replace")
        return [
            line
            for line in log.splitlines()
            if "nova.api.openstack.requestlog" in line and f'"{method} /' in line
        ]


class Views:
    """ClusterViews from crm_simulate'd CIB files plus the outbox's alert evidence."""

    def __init__(self, cib: Cib) -> None:
        self.cib = cib
        self.current = cib.placed

    def __call__(self, box: Outbox) -> ClusterView:
        fences, joined = alert_evidence(box)
        return ClusterView(self.cib.snapshot(self.current), fences, joined)


def forced_table(publisher: Publisher) -> list[str]:
    """The hosts the publisher has forced down (its table, made by the first reconcile)."""
    return [row[0] for row in publisher.outbox.db.execute("SELECT host FROM forced_down")]


def leading_publisher(
    tmp_path: Path, api: ComputeAPI, *, evacuate: bool = False
) -> tuple[Views, Publisher, AlertRunner]:
    """A publisher that always leads, on crm_simulate'd CIB files under `tmp_path`/cib and
    the outbox the installed alert agent (the AlertRunner) writes to."""
    (tmp_path / "cib").mkdir()
    views = Views(Cib(tmp_path / "cib"))
    config = PublisherConfig(
        outbox=str(tmp_path / "outbox.db"),
        evacuate=evacuate,
        nova=api,
        subscriptions=str(tmp_path / "subscriptions.db"),
    )
    publisher = Publisher(
        config, view_source=views, leadership_source=lambda _: Leadership(True, "the test's")
    )
    return views, publisher, AlertRunner(LIBEXEC / "alert", tmp_path / "outbox.db")


def stub_settings(glance_port: int, neutron_port: int) -> openstack.Sections:
    """nova's [glance] and [neutron] for the stand-ins (`NovaCloud.start_stubs`)."""
    neutron_url = f"http://127.0.0.1:{neutron_port}"
    return {
        "glance": {"endpoint_override": f"http://127.0.0.1:{glance_port}"},
        "neutron": {
            "auth_type": "admin_token",
            "token": "admin",
            "endpoint": neutron_url,
            "endpoint_override": neutron_url,
        },
    }


def merged(*layers: openstack.Sections) -> dict[str, dict[str, object]]:
    """Config sections, later layers' options winning."""
    out: dict[str, Any] = {}
    for layer in layers:
        out = cloud_config.merged(out, dict(layer))
    return out


@contextlib.contextmanager
def nova_cloud(
    cloud: Cloud,
    root: Path,
    *,
    api_port: int,
    placement_port: int,
    placement_database: str = "placement",
    settings: openstack.Sections | None = None,
    placement_settings: openstack.Sections | None = None,
    cloud_name: str = "hakit",
    api_timeout: float = 10,
) -> Iterator[NovaCloud]:
    """placement, nova-conductor and nova-api: `settings` over the session's nova.conf,
    `placement_settings` over hakit's placement_config. The NovaCloud's compute API
    authenticates as `cloud_name` of the session's clouds.yaml. Yields once placement
    answers (nova-api may still be starting: `computes_up` waits for it too). Everything
    started through the NovaCloud is stopped at the end, in parallel."""
    for port in (api_port, placement_port):
        if not port_free(port):
            pytest.fail(f"127.0.0.1:{port} is busy")
    placement_url = f"http://127.0.0.1:{placement_port}"
    placement = openstack.write_config(
        root / "placement" / "placement.conf",
        merged(
            openstack.placement_config(
                database_url=cloud.db_url(placement_database), identity=cloud.identity
            ),
            placement_settings or {},
        ),
    )
    config = openstack.write_config(
        root / "hakit-test.conf",
        merged(
            {
                "DEFAULT": {"graceful_shutdown_timeout": 2},
                "conductor": {"workers": 1},
                "placement": {"endpoint": placement_url, "endpoint_override": placement_url},
            },
            settings or {},
        ),
    )
    openstack.create_databases(cloud.venv, cloud.mariadb.url + "/", [placement_database])
    openstack.placement_db_sync(cloud.venv, [placement])
    services = Services(root)
    session = CloudSession(str(cloud.clouds_yaml), cloud_name, timeout=api_timeout)
    api = ComputeAPI(session, f"http://127.0.0.1:{api_port}/v2.1")
    env = openstack.service_env(cloud.venv)
    nova = NovaCloud(cloud, root, api, api_port, placement_port, services, config, env)
    try:
        services.start(
            "placement", *openstack.placement_command(cloud.venv, placement, port=placement_port)
        )
        nova.start("conductor", "nova-conductor")
        services.start(
            "api",
            *openstack.nova_api_command(cloud.venv, [cloud.nova_conf, config], port=api_port),
        )
        wait_until(
            lambda: services.running() and http_answers(placement_port), 30, "placement answering"
        )
        yield nova
    finally:
        began = time.monotonic()
        services.stop_all(3)
        print(f"\nnova services stopped in {time.monotonic() - began:.1f}s")
