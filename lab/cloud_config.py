"""The mini cloud's configuration files: cinder.conf and nova.conf (`write_configs`), the
compute layer's compute.conf, placement.conf and environment files
(`write_compute_configs`), all under `<lab dir>/openstack/`, with the lab's timings and
nova's fake driver."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hakit.lab import cloud_access, openstack
from hakit.lab.cloud_access import NOVA_API_PORT

if TYPE_CHECKING:
    from hakit.lab.lab import Lab

#: nova's fake driver that keeps a node identity (nova refuses to restart a compute without
#: one), with COMPUTE_VCPUS of its 1000 VCPU usable; $host is the node name (the agent's)
COMPUTE_VCPUS = 4  # small: every drill's boots scale with it (CI's time)
COMPUTE_SETTINGS = {
    "compute_driver": "fake.FakeDriverWithoutFakeNodes",
    "reserved_host_cpus": 1000 - COMPUTE_VCPUS,
}
DATABASES = ("keystone", "cinder", "nova_api", "nova", "nova_cell0", "placement")
#: nova.conf for the compute layer (harmless to the scheduler and console proxies): the
#: node's own placement and stand-ins, no quotas, the fake driver's capacity used 1:1, new
#: computes mapped by the schedulers, quick stops
NOVA_LAB_SETTINGS: dict[str, dict[str, object]] = {
    "DEFAULT": {
        "reserved_host_memory_mb": 0,
        "graceful_shutdown_timeout": 5,
        "cpu_allocation_ratio": 1.0,
        "ram_allocation_ratio": 1.0,
        "disk_allocation_ratio": 1.0,
    },
    "glance": {"endpoint_override": "http://127.0.0.1:9292"},
    "neutron": {
        "auth_type": "admin_token",
        "token": "admin",
        "endpoint": "http://127.0.0.1:9696",
        "endpoint_override": "http://127.0.0.1:9696",
    },
    "quota": {"instances": -1, "cores": -1, "ram": -1},
    "scheduler": {"discover_hosts_in_cells_interval": 10},
    "conductor": {"workers": 1},
}
#: Fast heartbeats, so a hung service is stale within seconds (lab timing, not production).
REPORT_INTERVAL = 2
SERVICE_DOWN_TIME = 10
CINDER_CLUSTER = "lab"
CINDER_API_PORT = 8776
#: The APIs listen on the node's own namespace address too: drills probe them as clients.
ANY_ADDRESS = "0.0.0.0"  # noqa: S104


def config_dir(lab: Lab) -> Path:
    return lab.dir / "openstack"


def database_url(server_url: str, name: str) -> str:
    """The infra URL (…/hakit) pointed at another database."""
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def write_configs(lab: Lab, venv: Path, transport_url: str, server_url: str) -> tuple[Path, Path]:
    """cinder.conf and nova.conf (Keystone's users from `cloud_access`), the WSGI server."""
    directory = config_dir(lab)
    identity = cloud_access.identity(lab)
    (directory / "wsgi_server.py").write_text(openstack.WSGI_SERVER)
    cinder = openstack.cinder_config(
        transport_url=transport_url,
        database_url=database_url(server_url, "cinder"),
        state_dir=directory / "cinder-state",
        cluster=CINDER_CLUSTER,
        coordination_url=database_url(server_url, "cinder").replace("+pymysql", ""),
        report_interval=REPORT_INTERVAL,
        service_down_time=SERVICE_DOWN_TIME,
        api_port=CINDER_API_PORT,
        api_paste_config=venv / "etc" / "cinder" / "api-paste.ini",
        api_listen=ANY_ADDRESS,
        identity=identity,
    )
    nova = merged(
        openstack.nova_config(
            transport_url=transport_url,
            database_url=database_url(server_url, "nova"),
            api_database_url=database_url(server_url, "nova_api"),
            state_dir=directory / "nova-state",
            report_interval=REPORT_INTERVAL,
            service_down_time=SERVICE_DOWN_TIME,
            scheduler_workers=1,
            novncproxy_host=ANY_ADDRESS,
            identity=identity,
        ),
        NOVA_LAB_SETTINGS,
    )
    for state in ("cinder-state/locks", "nova-state/locks", "nova-state/novnc"):
        (directory / state).mkdir(parents=True, exist_ok=True)
    return (
        openstack.write_config(directory / "cinder.conf", cinder),
        openstack.write_config(directory / "nova.conf", nova),
    )


def write_compute_configs(lab: Lab, venv: Path, server_url: str, nova_conf: Path) -> Path:
    """The compute layer's files: compute.conf, placement.conf and the environment files
    of the WSGI services. Returns placement.conf."""
    directory = config_dir(lab)
    for node in lab.nodes + lab.remotes:  # each compute keeps its node identity there
        (directory / "compute-state" / node).mkdir(parents=True, exist_ok=True)
    state = f"{directory / 'compute-state'}/$host"  # oslo.config fills in the node name
    openstack.write_config(
        directory / "compute.conf", {"DEFAULT": {**COMPUTE_SETTINGS, "state_path": state}}
    )
    placement = openstack.write_config(
        directory / "placement" / "placement.conf",
        openstack.placement_config(
            database_url=database_url(server_url, "placement"), identity=cloud_access.identity(lab)
        ),
    )
    environments = {
        "placement.env": openstack.service_env(venv, OS_PLACEMENT_CONFIG_DIR=str(placement.parent)),
        "nova-api.env": openstack.nova_api_command(venv, [nova_conf], port=NOVA_API_PORT)[1],
    }
    for name, env in environments.items():
        (directory / name).write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return placement


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` over `base`: mappings merged, lists joined, other values replaced."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = merged(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            out[key] = old + value
        else:
            out[key] = value
    return out
