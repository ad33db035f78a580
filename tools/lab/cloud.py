"""OpenStack services in the lab, run by Pacemaker through hakit's agents.

`up` brings the infra node (MariaDB, RabbitMQ) and the pinned OpenStack venv, creates
and syncs the databases, writes cinder.conf and nova.conf under `<lab dir>/openstack/`,
and applies `cloud.yaml`: cinder-api, cinder-scheduler, cinder-volume (one cinder
cluster, active/active), nova-scheduler and nova-novncproxy, each a clone on every node.
Database work runs inside node1 (only the lab's namespaces reach the infra node).
"""

from __future__ import annotations

import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hakit.tools.lab import openstack
from hakit.tools.lab.errors import LabError
from hakit.tools.lab.lab import Lab

TEMPLATE = Path(__file__).with_name("cloud.yaml")
DEMO = Path(__file__).with_name("demo.yaml")
CLONES = ("cinder-api-clone", "cinder-scheduler-clone", "cinder-volume-clone",
          "nova-scheduler-clone", "nova-novncproxy-clone")  # fmt: skip
DATABASES = ("cinder", "nova_api", "nova", "nova_cell0")
#: Fast heartbeats, so a hung service is stale within seconds (lab timing, not production).
REPORT_INTERVAL = 2
SERVICE_DOWN_TIME = 10
CINDER_CLUSTER = "lab"
CINDER_API_PORT = 8776
#: The APIs listen on the node's own namespace address too: drills probe them as clients.
ANY_ADDRESS = "0.0.0.0"  # noqa: S104
Progress = Callable[[str], None]


def config_dir(lab: Lab) -> Path:
    return lab.dir / "openstack"


def database_url(server_url: str, name: str) -> str:
    """The infra URL (…/hakit) pointed at another database."""
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def write_configs(lab: Lab, venv: Path, transport_url: str, server_url: str) -> tuple[Path, Path]:
    directory = config_dir(lab)
    cinder = openstack.cinder_config(
        transport_url=transport_url, database_url=database_url(server_url, "cinder"),
        state_dir=directory / "cinder-state", cluster=CINDER_CLUSTER,
        coordination_url=database_url(server_url, "cinder").replace("+pymysql", ""),
        report_interval=REPORT_INTERVAL, service_down_time=SERVICE_DOWN_TIME,
        api_port=CINDER_API_PORT, api_paste_config=venv / "etc" / "cinder" / "api-paste.ini",
        api_listen=ANY_ADDRESS,
    )  # fmt: skip
    nova = openstack.nova_config(
        transport_url=transport_url, database_url=database_url(server_url, "nova"),
        api_database_url=database_url(server_url, "nova_api"),
        state_dir=directory / "nova-state", report_interval=REPORT_INTERVAL,
        service_down_time=SERVICE_DOWN_TIME, scheduler_workers=1,
        novncproxy_host=ANY_ADDRESS,
    )  # fmt: skip
    for state in ("cinder-state/locks", "nova-state/locks", "nova-state/novnc"):
        (directory / state).mkdir(parents=True, exist_ok=True)
    return (openstack.write_config(directory / "cinder.conf", cinder),
            openstack.write_config(directory / "nova.conf", nova))  # fmt: skip


def topology_file(lab: Lab, venv: Path) -> Path:
    """cloud.yaml with this lab's paths filled in."""
    text = string.Template(TEMPLATE.read_text()).substitute(conf=config_dir(lab), venv=venv)
    path = config_dir(lab) / "topology.yaml"
    path.write_text(text)
    return path


def apply(lab: Lab, path: Path) -> str:
    done = lab.run("node1", [sys.executable, "-I", "-m", "hakit.tools.cli", "topology",
                             "apply", str(path)], timeout=300, check=False)  # fmt: skip
    if done.returncode != 0:
        raise LabError(f"applying {path} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def running(lab: Lab) -> dict[str, list[str]]:
    """Where each OpenStack clone runs (as node1 sees it)."""
    status = lab.cluster_status("node1")
    if status is None:
        return {}
    return {clone: sorted(status.running_on(clone)) for clone in CLONES}


def up(lab: Lab, *, timeout: float = 600, progress: Progress | None = None) -> dict[str, float]:
    """Everything above, idempotent; returns when every clone runs on every node."""
    say = progress or (lambda _: None)
    began = time.monotonic()
    timings: dict[str, float] = {}
    venv = openstack.ensure_venv(progress=say)
    timings["venv"] = time.monotonic() - began
    say("infra node: MariaDB and RabbitMQ")
    infra = lab.infra_up()
    before = _texts(config_dir(lab))
    cinder_conf, nova_conf = write_configs(lab, venv, infra.transport_url, infra.mysql_url)
    changed = before != _texts(config_dir(lab))
    stale = [clone for clone, nodes in running(lab).items() if nodes] if changed else []
    say("databases: create and sync (inside node1)")
    inside = lab.netns_prefix("node1")
    openstack.create_databases(venv, infra.mysql_url, DATABASES, prefix=inside)
    openstack.cinder_db_sync(venv, [cinder_conf], prefix=inside)
    openstack.nova_db_sync(venv, [nova_conf], prefix=inside)
    timings["databases"] = time.monotonic() - began
    say("applying the OpenStack topology")
    apply(lab, topology_file(lab, venv))
    for clone in stale:  # running with an older configuration
        say(f"restarting {clone}: its configuration changed")
        lab.run("node1", ["crm_resource", "--resource", clone, "--restart", "--timeout",
                          f"{int(timeout)}s"], timeout=timeout + 30)  # fmt: skip
    nodes = sorted(lab.nodes)
    deadline = time.monotonic() + timeout
    while any(where != nodes for where in running(lab).values()) or not running(lab):
        if time.monotonic() > deadline:
            raise LabError(f"OpenStack clones not running everywhere: {running(lab)}")
        time.sleep(1)
    timings["running"] = time.monotonic() - began
    return timings


def _texts(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.glob("*.conf"))}


def down(lab: Lab) -> None:
    """Back to the demo topology (the OpenStack resources stop and go, and so does their
    failure history: fail counts of removed resources would outlive them)."""

    def cleanup() -> None:
        for clone in CLONES:
            lab.run("node1", ["crm_resource", "--cleanup", "--resource", clone],
                    check=False, timeout=60)  # fmt: skip

    def stopped() -> bool:
        status = lab.cluster_status("node1")
        return status is not None and not any(
            status.running_on(c) or status.running_on(c.removesuffix("-clone")) for c in CLONES
        )

    cleanup()  # while they exist
    apply(lab, DEMO)
    deadline = time.monotonic() + 300
    while not stopped() and time.monotonic() < deadline:  # orphans stop after the apply
        time.sleep(1)
    cleanup()  # what the stops left behind
    for node in sorted(lab.nodes):  # the agents' dependency attributes (hakit-<r>-broker|db)
        for clone in CLONES:
            for dependency in ("broker", "db"):
                name = f"hakit-{clone.removesuffix('-clone')}-{dependency}"
                lab.run("node1", ["attrd_updater", "--delete", "--name", name, "--node", node],
                        check=False, timeout=30)  # fmt: skip
