"""OpenStack services in the lab, run by Pacemaker through hakit's agents.

`up` brings the infra node (MariaDB, RabbitMQ) and the pinned OpenStack venv, creates
and syncs the databases, writes cinder.conf and nova.conf under `<lab dir>/openstack/`,
and applies `cloud.yaml`: cinder-api, cinder-scheduler, cinder-volume (one cinder
cluster, active/active), nova-scheduler and nova-novncproxy, each a clone on every node.
With `compute` (the mini cloud, `hakit lab cloud up`) `compute.yaml` is merged in:
placement, nova-api, nova-conductor and nova-compute (fake driver) clones, the glance and
neutron stand-ins, and the health publisher evacuating fenced hosts; with remotes in the lab
(`hakit lab up --remotes N`), `remote-computes.yaml` too: nova-compute on every remote.
Database work runs inside node1 (only the lab's namespaces reach the infra node).
"""

from __future__ import annotations

import contextlib
import string
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hakit.lab import api_relay, cib, cloud_access, openstack, openstack_stubs
from hakit.lab.cloud_access import compute_api, placement_providers
from hakit.lab.cloud_config import (
    DATABASES,
    config_dir,
    database_url,
    write_compute_configs,
    write_configs,
)
from hakit.lab.errors import LabError
from hakit.lab.lab import Lab
from hakit.ocf import cluster

if TYPE_CHECKING:
    from hakit.resource_agents.health.nova import ComputeAPI, Server

KEYSTONE_TEMPLATE = Path(__file__).with_name("keystone.yaml")
TEMPLATE = Path(__file__).with_name("cloud.yaml")
COMPUTE_TEMPLATE = Path(__file__).with_name("compute.yaml")
REMOTE_TEMPLATE = Path(__file__).with_name("remote-computes.yaml")
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
#: the compute layer's clones on the lab's remotes (remote-computes.yaml), on them only
REMOTE_CLONES = ("api-relay-clone", "nova-compute-remote-clone")
#: clones of hakit's OpenStack agents (they publish hakit-<resource>-broker|db attributes)
OPENSTACK_AGENT_CLONES = (
    *CLONES[1:5],
    "nova-conductor-clone",
    "nova-compute-clone",
    "nova-compute-remote-clone",
)
#: clones that read the files `up` writes (restarted when they change)
CONFIGURED = (*CLONES, "placement-clone", "nova-api-clone", *OPENSTACK_AGENT_CLONES[4:])
DEMO_CLONES = ("health-publisher-clone",)  # demo.yaml has them too: they stay
DELETERS = 8  # DELETE requests in flight when servers are deleted
Progress = Callable[[str], None]


def topology_layers(lab: Lab, venv: Path, *, compute: bool = False) -> list[Path]:
    """cloud.yaml (and compute.yaml for `compute`, and remote-computes.yaml when the lab
    has remotes) with this lab's paths, written to the configuration directory (problems
    point at them), in layer order."""
    values = {
        "conf": config_dir(lab),
        "venv": venv,
        "stubs": openstack_stubs.__file__,
        "relay": api_relay.__file__,
        "controllers": ",".join(lab.address(n) for n in lab.nodes),
    }
    computes = (COMPUTE_TEMPLATE, *((REMOTE_TEMPLATE,) if lab.remotes else ()))
    paths = []
    for template in (KEYSTONE_TEMPLATE, TEMPLATE, *(computes if compute else ())):
        path = config_dir(lab) / template.name
        path.write_text(string.Template(template.read_text()).substitute(values))
        paths.append(path)
    return paths


def apply(lab: Lab, layers: list[Path]) -> str:
    """The lab's base layers and `layers` above them, applied from inside node1."""
    texts = [(str(p), p.read_text()) for p in layers]
    return cib.summary(cib.apply_layers(lab, texts, node="node1"))


def running(lab: Lab, *, compute: bool = False) -> dict[str, list[str]]:
    """Where each OpenStack clone runs (as node1 sees it)."""
    status = lab.cluster_status("node1")
    if status is None:
        return {}
    return {clone: sorted(status.running_on(clone)) for clone in clones(lab, compute=compute)}


def clones(lab: Lab, *, compute: bool = False) -> dict[str, list[str]]:
    """Each OpenStack clone of the lab's cloud and the nodes it should run on."""
    wanted = dict.fromkeys(CLONES + (COMPUTE_CLONES if compute else ()), sorted(lab.nodes))
    if compute and lab.remotes:
        wanted |= dict.fromkeys(REMOTE_CLONES, sorted(lab.remotes))
    return wanted


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
    _sync_databases(lab, venv, infra.mysql_url, [cinder_conf, nova_conf, placement_conf], say)
    timings["databases"] = time.monotonic() - began
    layers = topology_layers(lab, venv, compute=compute)
    if not running(lab).get("keystone-clone"):  # a first up: Keystone alone, first
        say("Keystone first: the users and the catalog before any service authenticates")
        apply(lab, layers[:1])
        wait_running(lab, {"keystone-clone": sorted(lab.nodes)}, time.monotonic() + timeout, say)
    cloud_access.ensure_catalog(lab)
    say("applying the OpenStack topology" + (" with the compute layer" if compute else ""))
    on_nodes = {c: n for c, n in clones(lab, compute=compute).items() if c not in REMOTE_CLONES}
    placed = running(lab, compute=compute)
    if REMOTE_TEMPLATE.name in {p.name for p in layers} and any(
        placed.get(c) != n for c, n in on_nodes.items()
    ):  # the remotes' nova-compute exits at start while placement does not answer
        apply(lab, layers[:-1])
        wait_running(lab, on_nodes, time.monotonic() + timeout, say)
        say(f"nova-compute on the {len(lab.remotes)} remotes")
    apply(lab, layers)
    with lab.on("node1"):
        for clone in stale:  # running with an older configuration
            say(f"restarting {clone}: its configuration changed")
            cluster.restart_resource(clone, timeout=timeout)
        # the transition ends late: e.g. the demo's health-publisher restarts with new
        # parameters after the services started, so "running everywhere" alone is too early
        cluster.wait_for_idle(timeout=timeout)
    deadline = time.monotonic() + timeout
    wait_running(lab, clones(lab, compute=compute), deadline, say)
    timings["running"] = time.monotonic() - began
    if compute:
        say("the mini cloud's known state: no server, no claim, no compute forced down")
        _wait_for_computes(lab, deadline)
        known_state(lab)
        timings["known_state"] = time.monotonic() - began
    return timings


#: Failed starts of one instance `cloud up` clears before it gives up on it.
START_RETRIES = 2


def wait_running(lab: Lab, wanted: dict[str, list[str]], deadline: float, say: Progress) -> None:
    """Until each clone of `wanted` runs on its nodes. A failed start (which bans the
    instance from its node) is cleaned up, up to START_RETRIES times per instance, so
    that Pacemaker starts it again: nova-compute sometimes dies at start in nova's own
    race ("dictionary changed size during iteration" in oslo.config), and an `up` that
    only waited would wait for nothing until its deadline."""
    from hakit.resource_agents.health.model import resource_of

    retried: dict[tuple[str, str], int] = {}
    handled: set[tuple[tuple[str, str], object]] = set()
    while True:
        status = lab.cluster_status("node1")
        placed = {c: sorted(status.running_on(c)) for c in wanted} if status else {}
        if placed == wanted:
            return
        if time.monotonic() > deadline:
            raise LabError(f"OpenStack clones not running everywhere: {placed}")
        for failure in status.failures if status else []:
            primitive = resource_of(failure)
            clone = f"{primitive}-clone"
            missing = failure.node not in placed.get(clone, [failure.node])
            if failure.task != "start" or not missing:
                continue
            key = (primitive, failure.node)
            if (key, failure.changed) in handled:
                continue  # cleaned up already; the status has not caught up yet
            if retried.get(key, 0) >= START_RETRIES:
                raise LabError(
                    f"{primitive} failed to start on {failure.node} {START_RETRIES + 1} times: "
                    f"{failure.exit_reason or failure.op_key} (its log: "
                    f"{lab.node_dir(failure.node) / 'var-log-hakit' / (primitive + '.log')})"
                )
            retried[key] = retried.get(key, 0) + 1
            handled.add((key, failure.changed))
            say(f"{primitive} failed to start on {failure.node}: cleaned up, started again")
            with lab.on("node1"):
                cluster.cleanup(primitive, node=failure.node, timeout=60)
        time.sleep(1)


def _wait_for_computes(lab: Lab, deadline: float) -> None:
    """Every nova-compute up in the compute API (a server on a down host is not deleted)."""
    from hakit.resource_agents.health.nova import NovaError

    while True:
        with contextlib.suppress(NovaError, LabError):
            states = compute_states(lab)
            hosts = lab.nodes + lab.remotes
            if set(states) >= set(hosts) and all(states[n] != "down" for n in hosts):
                return
        if time.monotonic() > deadline:
            raise LabError("nova-compute is not up on every node (`hakit lab cloud status`)")
        time.sleep(2)


def _sync_databases(
    lab: Lab, venv: Path, server_url: str, confs: list[Path], say: Progress
) -> None:
    """The databases created and synced (inside node1), Keystone's too, unless they were
    synced already for this venv and this MariaDB data directory (`_sync_key`)."""
    cinder_conf, nova_conf, placement_conf = confs
    synced, key = config_dir(lab) / "synced", _sync_key(lab)
    current = synced.exists() and synced.read_text() == key
    say("databases: " + ("synced already" if current else "create and sync (inside node1)"))
    if not current:
        inside = lab.netns_prefix("node1")
        openstack.create_databases(venv, server_url, DATABASES, prefix=inside)
        openstack.cinder_db_sync(venv, [cinder_conf], prefix=inside)
        openstack.nova_db_sync(venv, [nova_conf], prefix=inside)
        openstack.placement_db_sync(venv, [placement_conf], prefix=inside)
    cloud_access.prepare(lab, venv, database_url(server_url, "keystone"), sync=not current)
    synced.write_text(key)


def _sync_key(lab: Lab) -> str:
    """What the databases were last synced for: the OpenStack venv's key and the identity
    of MariaDB's data directory (a new one, or a new venv, is synced again)."""
    data = lab.dir / "infra" / "mariadb" / "data" / "mysql"
    return f"{openstack.venv_key()} {data.stat().st_ino if data.exists() else 0}\n"


def _texts(directory: Path) -> dict[str, str]:
    """Every configuration file (placement's too: a killed `--unsafe` drill changes it)."""
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*.conf"))}


def down(lab: Lab, progress: Progress | None = None, *, compute_only: bool = False) -> None:
    """Back to the demo topology (the OpenStack resources stop and go, and so does their
    failure history: fail counts of removed resources would outlive them); with
    `compute_only`, back to the cloud without its compute layer (`up` without compute)."""
    say = progress or (lambda text: print(text, file=sys.stderr))

    def cleanup() -> None:  # best effort: a cluster busy with a transition may not answer
        for clone in CLONES + COMPUTE_CLONES + REMOTE_CLONES:
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
            status.active_on(c) or status.active_on(c.removesuffix("-clone")) for c in gone
        )

    kept = CLONES if compute_only else DEMO_CLONES
    gone = [c for c in CLONES + COMPUTE_CLONES + REMOTE_CLONES if c not in kept]

    cleanup()  # while they exist
    if compute_only:
        apply(lab, topology_layers(lab, openstack.ensure_venv(), compute=False))
    else:
        cib.apply_file(lab, DEMO, node="node1")
    deadline = time.monotonic() + 300
    while not stopped() and time.monotonic() < deadline:  # orphans stop after the apply
        time.sleep(1)
    cleanup()  # what the stops left behind
    with lab.on("node1"):  # the agents' dependency attributes, where they ran
        for clone in (c for c in OPENSTACK_AGENT_CLONES if c in gone):
            for node in lab.remotes if clone in REMOTE_CLONES else lab.nodes:
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


def forget_computes(lab: Lab) -> list[str]:
    """Delete the nova-compute services (their compute nodes and placement providers go
    with them) of hosts that are not the lab's nodes or remotes: a remote taken away
    (`hakit lab up --remotes` fewer) whose nova-compute no longer runs. Returns the hosts."""
    api = compute_api(lab, "node1")
    found: Any = lab.as_client(lambda: api.request("GET", "/os-services?binary=nova-compute"))
    gone = [s for s in found["services"] if s["host"] not in lab.nodes + lab.remotes]
    for service in gone:
        lab.as_client(partial(api.request, "DELETE", f"/os-services/{service['id']}"))
    return sorted(s["host"] for s in gone)


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
    no claim in placement, no nova-compute forced down, none of a remote the lab no longer
    has (the state `cloud up` ends in)."""
    from hakit.resource_agents.health.nova import NovaError

    def unforce() -> None:
        api = compute_api(lab, "node1")
        for host in lab.nodes + lab.remotes:
            api.set_forced_down(host, False)

    lab.as_client(unforce)
    delete_servers(lab, timeout=timeout)
    forget_computes(lab)
    stale = sorted({c for _, _, consumers in placement_providers(lab).values() for c in consumers})
    if stale:
        cloud_access.placement_forget(lab, stale)
    try:
        ensure_flavor(lab)
    except NovaError as error:
        raise LabError(f"the mini cloud's flavor: {error}") from None
