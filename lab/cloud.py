"""OpenStack services in the lab, run by Pacemaker through hakit's agents.

`up` brings the infra node (MariaDB, RabbitMQ) and the pinned OpenStack venv, creates
and syncs the databases, writes cinder.conf and nova.conf under `<lab dir>/openstack/`,
and applies `cloud.yaml`: cinder-api, cinder-scheduler, cinder-volume (one cinder
cluster, active/active), nova-scheduler and nova-novncproxy, each a clone on every node.
With `compute` (the mini cloud, `hakit lab cloud up`) `compute.yaml` is merged in:
placement, nova-api, nova-conductor and nova-compute (fake driver) clones, the glance and
neutron stand-ins, and the health publisher evacuating fenced hosts.
Database work runs inside node1 (only the lab's namespaces reach the infra node).
"""

from __future__ import annotations

import contextlib
import string
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hakit.lab import cib, cloud_access, openstack, openstack_stubs
from hakit.lab.cloud_access import NOVA_API_PORT, compute_api, placement_providers
from hakit.lab.errors import LabError
from hakit.lab.lab import Lab
from hakit.ocf import cluster

if TYPE_CHECKING:
    from hakit.resource_agents.health.nova import ComputeAPI, Server

KEYSTONE_TEMPLATE = Path(__file__).with_name("keystone.yaml")
TEMPLATE = Path(__file__).with_name("cloud.yaml")
COMPUTE_TEMPLATE = Path(__file__).with_name("compute.yaml")
DEMO = Path(__file__).with_name("demo.yaml")
CLONES = (
    "cinder-api-clone",
    "cinder-scheduler-clone",
    "cinder-volume-clone",
    "nova-scheduler-clone",
    "nova-novncproxy-clone",
    "keystone-clone",
)
COMPUTE_CLONES = (
    "glance-stub-clone",
    "neutron-stub-clone",
    "vnc-stub-clone",
    "placement-clone",
    "nova-api-clone",
    "nova-conductor-clone",
    "nova-compute-clone",
    "health-publisher-clone",
)
#: clones that read the files `up` writes (restarted when they change)
CONFIGURED = (
    *CLONES,
    "placement-clone",
    "nova-api-clone",
    "nova-conductor-clone",
    "nova-compute-clone",
)
#: clones of hakit's OpenStack agents (they publish hakit-<resource>-broker|db attributes)
OPENSTACK_AGENT_CLONES = (*CLONES[1:5], "nova-conductor-clone", "nova-compute-clone")
DEMO_CLONES = ("health-publisher-clone",)  # demo.yaml has them too: they stay
#: nova's fake driver that keeps a node identity (nova refuses to restart a compute without
#: one), with COMPUTE_VCPUS of its 1000 VCPU usable; $host is the node name (the agent's)
COMPUTE_VCPUS = 6  # small: every drill's boots scale with it (CI's time)
DELETERS = 8  # DELETE requests in flight when servers are deleted
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
Progress = Callable[[str], None]


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
    for node in lab.nodes:  # each compute keeps its node identity (compute_id) there
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


def topology_layers(lab: Lab, venv: Path, *, compute: bool = False) -> list[Path]:
    """cloud.yaml (and compute.yaml for `compute`) with this lab's paths, written to the
    configuration directory (problems point at them), in layer order."""
    values = {"conf": config_dir(lab), "venv": venv, "stubs": openstack_stubs.__file__}
    paths = []
    for template in (KEYSTONE_TEMPLATE, TEMPLATE, *((COMPUTE_TEMPLATE,) if compute else ())):
        path = config_dir(lab) / template.name
        path.write_text(string.Template(template.read_text()).substitute(values))
        paths.append(path)
    return paths


def apply(lab: Lab, layers: list[Path]) -> str:
    """The lab's base layers and `layers` above them, applied from inside node1."""
    loaded = cib.layered(lab, [(str(p), p.read_text()) for p in layers])
    return cib.summary(cib.apply(lab, loaded, node="node1"))


def running(lab: Lab, *, compute: bool = False) -> dict[str, list[str]]:
    """Where each OpenStack clone runs (as node1 sees it)."""
    status = lab.cluster_status("node1")
    if status is None:
        return {}
    clones = CLONES + (COMPUTE_CLONES if compute else ())
    return {clone: sorted(status.running_on(clone)) for clone in clones}


def up(
    lab: Lab, *, compute: bool = False, timeout: float = 600, progress: Progress | None = None
) -> dict[str, float]:
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
    placement_conf = write_compute_configs(lab, venv, infra.mysql_url, nova_conf)
    changed = before != _texts(config_dir(lab))
    stale = (
        [
            clone
            for clone, nodes in running(lab, compute=True).items()
            if nodes and clone in CONFIGURED
        ]
        if changed
        else []
    )
    say("databases: create and sync (inside node1)")
    inside = lab.netns_prefix("node1")
    openstack.create_databases(venv, infra.mysql_url, DATABASES, prefix=inside)
    openstack.cinder_db_sync(venv, [cinder_conf], prefix=inside)
    openstack.nova_db_sync(venv, [nova_conf], prefix=inside)
    if compute:
        openstack.placement_db_sync(venv, [placement_conf], prefix=inside)
    cloud_access.prepare(lab, venv, database_url(infra.mysql_url, "keystone"))
    timings["databases"] = time.monotonic() - began
    layers = topology_layers(lab, venv, compute=compute)
    if not running(lab).get("keystone-clone"):  # a first up: Keystone alone, first
        say("Keystone first: the users and the catalog before any service authenticates")
        apply(lab, layers[:1])
        _wait_running(lab, ("keystone-clone",), time.monotonic() + timeout)
    cloud_access.ensure_catalog(lab)
    say("applying the OpenStack topology" + (" with the compute layer" if compute else ""))
    apply(lab, layers)
    with lab.on("node1"):
        for clone in stale:  # running with an older configuration
            say(f"restarting {clone}: its configuration changed")
            cluster.restart_resource(clone, timeout=timeout)
        # the transition ends late: e.g. the demo's health-publisher restarts with new
        # parameters after the services started, so "running everywhere" alone is too early
        cluster.wait_for_idle(timeout=timeout)
    deadline = time.monotonic() + timeout
    _wait_running(lab, CLONES + (COMPUTE_CLONES if compute else ()), deadline)
    timings["running"] = time.monotonic() - began
    if compute:
        say("the mini cloud's known state: no server, no claim, no compute forced down")
        _wait_for_computes(lab, deadline)
        known_state(lab)
        timings["known_state"] = time.monotonic() - began
    return timings


def _wait_running(lab: Lab, clones: tuple[str, ...], deadline: float) -> None:
    nodes = sorted(lab.nodes)
    while True:
        status = lab.cluster_status("node1")
        placed = {c: sorted(status.running_on(c)) for c in clones} if status else {}
        if placed and all(where == nodes for where in placed.values()):
            return
        if time.monotonic() > deadline:
            raise LabError(f"OpenStack clones not running everywhere: {placed}")
        time.sleep(1)


def _wait_for_computes(lab: Lab, deadline: float) -> None:
    """Every nova-compute up in the compute API (a server on a down host is not deleted)."""
    from hakit.resource_agents.health.nova import NovaError

    while True:
        with contextlib.suppress(NovaError, LabError):
            states = compute_states(lab)
            if set(states) >= set(lab.nodes) and all(states[n] != "down" for n in lab.nodes):
                return
        if time.monotonic() > deadline:
            raise LabError("nova-compute is not up on every node (`hakit lab cloud status`)")
        time.sleep(2)


def _texts(directory: Path) -> dict[str, str]:
    """Every configuration file (placement's too: a killed `--unsafe` drill changes it)."""
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*.conf"))}


def down(lab: Lab, progress: Progress | None = None, *, compute_only: bool = False) -> None:
    """Back to the demo topology (the OpenStack resources stop and go, and so does their
    failure history: fail counts of removed resources would outlive them); with
    `compute_only`, back to the cloud without its compute layer (`up` without compute)."""
    say = progress or (lambda text: print(text, file=sys.stderr))

    def cleanup() -> None:  # best effort: a cluster busy with a transition may not answer
        for clone in CLONES + COMPUTE_CLONES:
            try:
                with lab.on("node1"):
                    cluster.cleanup(clone, timeout=120)
            except LabError as error:
                cause = error.__cause__
                if not isinstance(cause, cluster.ClusterCommandError) or cause.returncode is None:
                    say(f"cleanup of {clone} skipped: {error}")  # no answer (a refusal is not)

    def stopped() -> bool:
        status = lab.cluster_status("node1")
        return status is not None and not any(
            status.running_on(c) or status.running_on(c.removesuffix("-clone")) for c in gone
        )

    kept = CLONES if compute_only else DEMO_CLONES
    gone = [c for c in CLONES + COMPUTE_CLONES if c not in kept]

    cleanup()  # while they exist
    if compute_only:
        apply(lab, topology_layers(lab, openstack.ensure_venv(), compute=False))
    else:
        cib.apply_file(lab, DEMO, node="node1")
    deadline = time.monotonic() + 300
    while not stopped() and time.monotonic() < deadline:  # orphans stop after the apply
        time.sleep(1)
    cleanup()  # what the stops left behind
    with lab.on("node1"):
        for node in sorted(lab.nodes):  # the agents' dependency attributes
            for clone in (c for c in OPENSTACK_AGENT_CLONES if c in gone):
                for dependency in ("broker", "db"):  # hakit-<resource>-broker|db
                    name = f"hakit-{clone.removesuffix('-clone')}-{dependency}"
                    with contextlib.suppress(cluster.ClusterCommandError):
                        cluster.delete_transient_attribute(name, node=node, timeout=30)


# --- the mini cloud as a client sees it -----------------------------------------------------

FLAVOR = "lab-1"  # 1 VCPU, made by `ensure_flavor`


def ensure_flavor(lab: Lab) -> None:
    """The 1-VCPU flavor FLAVOR (kept across runs)."""
    from hakit.resource_agents.health.nova import NovaError

    body = {"flavor": {"name": FLAVOR, "id": FLAVOR, "vcpus": 1, "ram": 64, "disk": 1}}
    try:
        lab.as_client(lambda: compute_api(lab, "node1").request("POST", "/flavors", body))
    except NovaError as error:
        if "409" not in str(error):  # 409: there already
            raise


def boot(api: ComputeAPI, name: str, host: str | None = None) -> str:
    """POST a FLAVOR server from the glance stand-in's image, without networks (the
    admin may pin it to `host`); its id. Call it as a client (`Lab.as_client`)."""
    server: dict[str, Any] = {
        "name": name,
        "imageRef": openstack_stubs.IMAGE_ID,
        "flavorRef": FLAVOR,
        "networks": "none",
    }
    if host:
        server["availability_zone"] = f"nova:{host}"
    answer: Any = api.request("POST", "/servers", {"server": server})
    return str(answer["server"]["id"])


def servers(lab: Lab) -> list[Server]:
    """Every server, as node1's nova-api lists them."""
    return lab.as_client(lambda: compute_api(lab, "node1").servers())


def placed(lab: Lab, ids: list[str]) -> dict[str, tuple[str, str]]:
    """server → (host, status) for each of `ids` (("", "GONE") when not listed)."""
    found = {s.id: (s.host, s.status) for s in servers(lab)}
    return {i: found.get(i, ("", "GONE")) for i in ids}


def compute_states(lab: Lab) -> dict[str, str]:
    """host → its nova-compute's state: "up", "down" or "forced" (forced down)."""
    answer: Any = lab.as_client(
        lambda: compute_api(lab, "node1").request("GET", "/os-services?binary=nova-compute")
    )
    return {s["host"]: "forced" if s["forced_down"] else s["state"] for s in answer["services"]}


def delete_servers(lab: Lab, timeout: float = 180) -> None:
    """Delete every server and wait until none is listed. A server that outlives a DELETE
    (a build whose compute or conductor died, an interrupted task) is reset to ERROR and
    deleted again; one that still stays is a LabError naming the command that starts the
    lab's cloud afresh."""
    from hakit.resource_agents.health.nova import NovaError

    def delete(reset: bool) -> None:
        api = compute_api(lab, "node1")

        def one(server: Server) -> None:
            with contextlib.suppress(NovaError):  # gone meanwhile, or busy: next pass
                if reset:
                    body = {"os-resetState": {"state": "error"}}
                    api.request("POST", f"/servers/{server.id}/action", body)
                api.request("DELETE", f"/servers/{server.id}")

        with ThreadPoolExecutor(DELETERS) as pool:  # a burst's hundreds: one at a time is slow
            list(pool.map(one, api.servers()))

    began = time.monotonic()
    deadline, resent = began + timeout, began
    lab.as_client(lambda: delete(False))
    while left := servers(lab):
        now = time.monotonic()
        if now > deadline:
            raise LabError(
                f"servers not deleted within {timeout:g}s: {sorted(s.id for s in left)[:5]}; "
                "`hakit lab down --purge && hakit lab cloud up` starts the cloud afresh"
            )
        if now - resent > max(30.0, timeout / 4):  # stuck: reset them, delete again
            resent = now
            lab.as_client(lambda: delete(True))
        time.sleep(1)


def known_state(lab: Lab, timeout: float = 600) -> None:
    """The mini cloud as a run expects it, whatever an interrupted run left: no server,
    no claim in placement, no nova-compute forced down (the state `cloud up` ends in)."""
    from hakit.resource_agents.health.nova import NovaError

    def unforce() -> None:
        api = compute_api(lab, "node1")
        for host in lab.nodes:
            api.set_forced_down(host, False)

    lab.as_client(unforce)
    delete_servers(lab, timeout=timeout)
    stale = sorted({c for _, _, consumers in placement_providers(lab).values() for c in consumers})
    if stale:
        cloud_access.placement_forget(lab, stale)
    try:
        ensure_flavor(lab)
    except NovaError as error:
        raise LabError(f"the mini cloud's flavor: {error}") from None
