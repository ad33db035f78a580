"""A multi-attach volume attached to a server that gets evacuated is attached on the new
host only after the old host's fencing is confirmed.

Real, from the pinned venv, on the session's MariaDB, RabbitMQ and Keystone, on
127.0.0.1 only: cinder-api (the venv's api-paste.ini, `auth_strategy = keystone`),
cinder-scheduler and cinder-volume; placement, nova-conductor, nova-scheduler, nova-api
(nova.wsgi.osapi_compute under wsgiref, the venv's api-paste.ini) and two nova-computes,
`node3` and `node2`. Every API validates tokens with Keystone. Nova reaches cinder-api
with the user's token (`[cinder] endpoint_template`) plus its own service token
(`[service_user]`, user nova with the service role): cinder refuses to delete an
attachment connected to a server without one (cinder Bug #2004555), and an evacuation
deletes the old host's attachment.

Stand-ins, where the real thing cannot run here:
- nova's fake hypervisor driver (no libvirt): it attaches a volume by recording its
  connection info, and supports multiattach;
- cinder's FakeLoggingVolumeDriver (no LVM, iSCSI target or sudo), declared
  multiattach-capable with cinder's own `extra_capabilities` (what LVM reports itself);
  attachments, their connectors and states are cinder's own, in cinder's database;
- glance and neutron: hakit.lab.openstack_stubs (the fake driver never reads an
  image or plugs a port);
- the cluster: CIB files driven by crm_simulate, with the fencing evidence the installed
  alert agent stores in the publisher's outbox (as in test_nova_force_down.py).
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hakit.lab import openstack, openstack_stubs
from hakit.ocf import proc
from hakit.resource_agents.clouds import CloudError, CloudSession
from hakit.resource_agents.health.model import Health, classify
from hakit.resource_agents.health.nova import ComputeAPI
from hakit.resource_agents.health.resolve import Resolution, Resolver
from hakit.resource_agents.health.sources import alert_evidence
from tests.openstack.conftest import REPORT_INTERVAL, SERVICE_DOWN_TIME, Cloud, wait_until
from tests.openstack.infra import http_answers, port_free
from tests.openstack.nova_cloud import (
    NovaCloud,
    forced_table,
    leading_publisher,
    merged,
    nova_cloud,
    stub_settings,
)

NOVA_API_PORT = 19074
CINDER_API_PORT = 19076
PLACEMENT_PORT = 19078
GLANCE_PORT, NEUTRON_PORT = 19592, 19996
HOST = "node3"
SPARE = "node2"  # the surviving compute
CINDER_HOST = "ma"  # cinder-volume ma@fake, cinder-scheduler ma
VOLUME_NAME = "hakit-multiattach"
COMPUTE_VERSION = "compute 2.89"  # >= 2.60: multiattach; 2.89: the BDM's attachment_id
VOLUME_VERSION = "volume 3.44"  # >= 3.27: the attachments API
#: no project id in cinder's URLs (cinder finds the project in the token)
CINDER_URL = f"http://127.0.0.1:{CINDER_API_PORT}/v3"


@dataclass(frozen=True)
class Rest:
    """JSON calls to an OpenStack API at one microversion, as hakit's user (an admin):
    the decoded answer, CloudError when refused."""

    session: CloudSession
    url: str
    version: str

    def __call__(self, method: str, path: str, body: object = None) -> Any:
        headers = {"OpenStack-API-Version": self.version}
        return self.session.request("", method, path, body=body, headers=headers, endpoint=self.url)


@dataclass(frozen=True)
class Apis:
    """The compute and block-storage APIs of this module, and the nova processes."""

    nova: NovaCloud
    compute: Rest
    volume: Rest

    @classmethod
    def of(cls, nova: NovaCloud, cloud: Cloud) -> Apis:
        """With a session of their own (one per thread that calls them)."""
        session = CloudSession(str(cloud.clouds_yaml), "hakit", timeout=30)
        compute = Rest(session, f"http://127.0.0.1:{NOVA_API_PORT}/v2.1", COMPUTE_VERSION)
        return cls(nova, compute, Rest(session, CINDER_URL, VOLUME_VERSION))

    def volume_status(self, volume_id: str) -> str:
        return str(self.volume("GET", f"/volumes/{volume_id}")["volume"]["status"])

    def available(self, volume_id: str) -> bool:
        return self.volume_status(volume_id) == "available"


def cinder_settings(cloud: Cloud, root: Path) -> dict[str, dict[str, object]]:
    """cinder.conf of cinder-api, -scheduler and -volume ma@fake (the session's database
    and Keystone): the fake driver's backend declared multiattach-capable."""
    state = root / "cinder-state"
    (state / "locks").mkdir(parents=True)
    sections = openstack.cinder_config(
        transport_url=cloud.rabbitmq.transport_url,
        database_url=cloud.db_url("cinder"),
        state_dir=state,
        volume_driver=openstack.FAKE_DRIVER,
        host=CINDER_HOST,
        report_interval=REPORT_INTERVAL,
        service_down_time=SERVICE_DOWN_TIME,
        api_port=CINDER_API_PORT,
        api_paste_config=cloud.venv / "etc" / "cinder" / "api-paste.ini",
        identity=cloud.identity,
    )
    sections["DEFAULT"]["graceful_shutdown_timeout"] = 2
    # capabilities every 2 s: cinder-volume's first ones may reach no scheduler yet (both
    # start together), and the next come only after periodic_interval (60 s by default)
    sections["DEFAULT"] |= {"periodic_interval": 2, "periodic_fuzzy_delay": 0}
    sections["fake"]["extra_capabilities"] = json.dumps({"multiattach": True})
    return sections


def nova_cinder_settings() -> dict[str, dict[str, object]]:
    """Where nova finds cinder-api: this module's (the session's catalog names another).
    The session's nova.conf has the rest: [cinder] credentials, [service_user] with
    send_service_user_token (cinder deletes a connected attachment only then)."""
    return {"cinder": {"endpoint_template": CINDER_URL}}


def cinder_services_up(apis: Apis) -> bool:
    if not http_answers(CINDER_API_PORT):
        return False
    services = apis.volume("GET", "/os-services")["services"]
    up = {(s["binary"], s["host"]) for s in services if s["state"] == "up"}
    if not {("cinder-scheduler", CINDER_HOST), ("cinder-volume", f"{CINDER_HOST}@fake")} <= up:
        return False
    pools = apis.volume("GET", "/scheduler-stats/get_pools")["pools"]  # what the scheduler knows
    return any(p["name"].startswith(f"{CINDER_HOST}@fake") for p in pools)


@pytest.fixture(scope="module")
def clouds(cloud: Cloud, module_tmp: Path) -> Iterator[Apis]:
    """cinder-api, -scheduler, -volume; placement, nova-conductor, nova-api, nova-scheduler
    and the nova-computes node3 and node2; once all are up. At the end the computes are
    stopped and removed from nova with their servers, before everything stops."""
    began = time.monotonic()
    root = module_tmp / "nova"
    if not port_free(CINDER_API_PORT):
        pytest.fail(f"127.0.0.1:{CINDER_API_PORT} is busy")
    cinder_conf = openstack.write_config(root / "cinder.conf", cinder_settings(cloud, root))
    settings = merged(
        stub_settings(GLANCE_PORT, NEUTRON_PORT),
        nova_cinder_settings(),
        {"DEFAULT": {"reserved_host_memory_mb": 0}},
    )
    # placement's database is test_nova_force_down's, like the compute names: nova-api
    # deletes a compute service only when placement knows its resource provider
    with nova_cloud(
        cloud, root, api_port=NOVA_API_PORT, placement_port=PLACEMENT_PORT, settings=settings
    ) as nova:
        apis = Apis.of(nova, cloud)
        for program in ("cinder-api", "cinder-scheduler", "cinder-volume"):
            nova.services.start(
                program, [cloud.bin(program), "--config-file", str(cinder_conf)], nova.env
            )
        nova.start_stubs(GLANCE_PORT, NEUTRON_PORT)
        wait_until(
            lambda: nova.services.running() and http_answers(NOVA_API_PORT),
            90,
            "nova-api answering",
        )
        # computes of these names left by another module (test_nova_force_down) would
        # make nova refuse to start ours on fresh state
        nova.forget_computes([HOST, SPARE])
        # node3 keeps its node identity (state_path/compute_id): it restarts at the end
        nova.start_compute(HOST, "fake.FakeDriverWithoutFakeNodes")
        nova.start_compute(SPARE)
        nova.start_scheduler("scheduler")
        wait_until(lambda: nova.computes_up([HOST, SPARE]), 120, "nova-computes up in the API")
        nova.discover_hosts()
        wait_until(
            lambda: nova.services.running() and cinder_services_up(apis),
            90,
            "cinder-scheduler and cinder-volume up in cinder-api",
        )
        print(
            f"\ncinder (api, scheduler, volume) and nova (placement, conductor, api, "
            f"scheduler, two computes) up in {time.monotonic() - began:.1f}s"
        )
        try:
            yield apis
        finally:
            for host in (HOST, SPARE):
                if host in nova.services.children:
                    nova.services.stop(host, 5)
            nova.forget_computes([HOST, SPARE])  # the server's attachment deleted too
            for volume in apis.volume("GET", f"/volumes?name={VOLUME_NAME}")["volumes"]:
                wait_until(
                    functools.partial(apis.available, str(volume["id"])),
                    60,
                    "the volume detached",
                )
                apis.volume("DELETE", f"/volumes/{volume['id']}")


@dataclass(frozen=True)
class Attachment:
    """A row of cinder's volume_attachment table (deleted ones stay: soft delete)."""

    id: str
    host: str
    status: str
    created: float  # UNIX time, whole seconds (DATETIME)
    deleted: bool


def attachment_rows(cloud: Cloud, volume_id: str) -> list[Attachment]:
    out = cloud.mariadb.sql(
        "SET time_zone = '+00:00';\n"
        "SELECT id, IFNULL(attached_host, '-'), attach_status, UNIX_TIMESTAMP(created_at), "
        f"deleted FROM cinder.volume_attachment WHERE volume_id = '{volume_id}' "
        "ORDER BY created_at, id;\n"
    )
    rows = [line.split("\t") for line in out.splitlines() if line]
    return [Attachment(r[0], r[1], r[2], float(r[3]), r[4] not in ("0", "")) for r in rows]


@dataclass(frozen=True)
class Seen:
    """One look at the volume's attachments: cinder's list and the server's BDM."""

    began: float
    ended: float
    cinder: frozenset[str]
    nova: str | None


@dataclass
class Watch:
    """Polls cinder's attachments of the volume and nova's BDM of the server, in a thread
    (with a session of its own)."""

    apis: Apis
    volume_id: str
    server_id: str
    seen: list[Seen] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def look(self) -> Seen:
        began = time.time()
        listed = self.apis.volume("GET", f"/attachments?volume_id={self.volume_id}")
        bdms = self.apis.compute("GET", f"/servers/{self.server_id}/os-volume_attachments")
        nova = [
            a["attachment_id"] for a in bdms["volumeAttachments"] if a["volumeId"] == self.volume_id
        ]
        ids = frozenset(a["id"] for a in listed["attachments"])
        return Seen(began, time.time(), ids, nova[0] if nova else None)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.seen.append(self.look())
            except (CloudError, KeyError, TypeError) as error:
                self.errors.append(f"{time.time():.3f} {error}")
            self.stopping.wait(0.2)

    def __enter__(self) -> Watch:
        self.thread = threading.Thread(target=self.run, name="watch", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=60)


def test_a_multiattach_volume_moves_to_the_new_host_only_after_the_fencing(
    clouds: Apis, cloud: Cloud, tmp_path: Path
) -> None:
    """The volume attached to a server on node3 through nova; node3's power cut: while
    it is unfenced (nova already sees its compute down) nothing is forced down or
    evacuated and the volume keeps its one attachment; once the fencing is confirmed the
    publisher forces node3 down and evacuates: the server ACTIVE on node2, the node3
    attachment deleted and a node2 one created, after the confirmed fencing. node3 back:
    it cleans up its evacuation, the volume stays attached to node2 only."""
    nova, compute, volumes = clouds.nova, clouds.compute, clouds.volume
    volume_status = clouds.volume_status
    api = nova.api
    began = time.monotonic()

    # 1. the multiattach type and volume
    volumes(
        "POST",
        "/types",
        {"volume_type": {"name": "multiattach", "extra_specs": {"multiattach": "<is> True"}}},
    )
    volume_id = str(
        volumes(
            "POST",
            "/volumes",
            {"volume": {"size": 1, "name": VOLUME_NAME, "volume_type": "multiattach"}},
        )["volume"]["id"]
    )
    wait_until(lambda: volume_status(volume_id) in ("available", "error"), 90, "volume created")
    volume = volumes("GET", f"/volumes/{volume_id}")["volume"]
    assert (volume["status"], volume["multiattach"]) == ("available", True), volume

    # 2. a server on node3, the volume attached through nova
    nova.create_flavor("ma")
    server_id = str(
        compute(
            "POST",
            "/servers",
            {
                "server": {
                    "name": "ma",
                    "imageRef": openstack_stubs.IMAGE_ID,
                    "flavorRef": "ma",
                    "networks": "none",
                    "availability_zone": f"nova:{HOST}",
                }
            },
        )["server"]["id"]
    )

    def placed() -> tuple[str, str]:
        (server,) = [s for s in api.servers() if s.id == server_id]
        return server.host, server.status

    wait_until(lambda: placed() == (HOST, "ACTIVE"), 120, "the server ACTIVE on node3")
    compute(
        "POST",
        f"/servers/{server_id}/os-volume_attachments",
        {"volumeAttachment": {"volumeId": volume_id}},
    )
    wait_until(lambda: volume_status(volume_id) == "in-use", 90, "the volume in-use")
    (old,) = attachment_rows(cloud, volume_id)
    assert (old.host, old.status, old.deleted) == (HOST, "attached", False), old
    listed = volumes("GET", f"/attachments/detail?volume_id={volume_id}")["attachments"]
    assert [(a["id"], a["instance"], a["status"]) for a in listed] == [
        (old.id, server_id, "attached")
    ]
    print(f"\nvolume attached to the server on node3 in {time.monotonic() - began:.1f}s")

    # the publisher (evacuate) on CIB files and the alert agent's outbox
    views, publisher, alerts = leading_publisher(tmp_path, api, evacuate=True)
    cib = views.cib

    def health() -> Health:
        node = classify(views(publisher.outbox)).node(HOST)
        assert node is not None
        return node.health

    def node3_service() -> tuple[str, bool]:
        (service,) = api.compute_services(HOST)
        return service.state, service.forced_down

    def evacuations() -> list[str]:
        return [line for line in nova.api_requests("POST") if "/action" in line]

    alerts.node(HOST, "member", epoch=time.time() - 60)
    publisher.cycle(resync=True)

    with Watch(Apis.of(nova, cloud), volume_id, server_id) as watch:
        # 3. node3's power cut: its nova-compute's whole tree, SIGKILL; lost, unfenced
        process = nova.services.children[HOST]
        for pid in proc.tree(process.pid):
            os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)
        alerts.node(HOST, "lost", epoch=time.time())
        views.current = cib.simulate(cib.placed, "lost", "--node-fail", HOST, execute=False)
        assert health() is Health.HOST_UNREACHABLE_UNFENCED

        def unfenced_cycle_sees_down() -> bool:
            publisher.cycle(resync=True)
            return node3_service()[0] == "down"

        # until nova itself calls node3's compute down (an evacuation would be accepted)
        waited = wait_until(
            unfenced_cycle_sees_down, SERVICE_DOWN_TIME + 60, "nova sees node3's nova-compute down"
        )
        publisher.cycle(resync=True)
        assert forced_table(publisher) == [] and node3_service() == ("down", False)
        assert evacuations() == [] and placed() == (HOST, "ACTIVE")
        assert [(a.id, a.deleted) for a in attachment_rows(cloud, volume_id)] == [(old.id, False)]
        print(f"unfenced for {waited:.1f}s: nothing forced down, evacuated or attached")

        # 4. fenced: the alert agent stores the fencing; the publisher forces down, evacuates
        alerts.fencing(HOST, executioner="node1", epoch=time.time())
        views.current = cib.simulate(cib.placed, "fenced", "--node-fail", HOST)
        assert health() is Health.HOST_DOWN_FENCED
        (confirmed,) = [
            f.completed
            for f in alert_evidence(publisher.outbox)[0]
            if f.target == HOST and f.powers_off
        ]
        assert confirmed is not None
        # cinder's created_at has whole seconds: act from the next second on, so that a
        # node2 attachment made after the fencing has a created_at strictly after it
        time.sleep(max(0.0, math.floor(confirmed) + 1 - time.time()))
        fenced_at = time.monotonic()
        publisher.cycle(resync=True)
        assert node3_service() == ("down", True) and len(evacuations()) == 1

        def moved() -> bool:
            rows = attachment_rows(cloud, volume_id)
            current = [a for a in rows if not a.deleted]
            return (
                placed() == (SPARE, "ACTIVE")
                and len(current) == 1
                and current[0].host == SPARE
                and current[0].status == "attached"
            )

        wait_until(moved, 120, "the server ACTIVE on node2 with the volume attached there")
        moved_in = time.monotonic() - fenced_at
        wait_until(
            lambda: bool(watch.seen)
            and watch.seen[-1].began > time.time() - 5
            and watch.seen[-1].nova not in (None, old.id),
            30,
            "the watch seeing nova's new attachment",
        )

    # 5. what cinder recorded: the node3 attachment, deleted; the node2 one, made after
    # the fencing was confirmed; never another
    rows = attachment_rows(cloud, volume_id)
    assert [(a.id, a.host, a.deleted) for a in rows][:1] == [(old.id, HOST, True)], rows
    assert len(rows) == 2, rows
    new = rows[1]
    assert (new.host, new.status, new.deleted) == (SPARE, "attached", False), rows
    assert new.created > confirmed, (new, confirmed)
    listed = volumes("GET", f"/attachments/detail?volume_id={volume_id}")["attachments"]
    assert [(a["id"], a["instance"], a["status"]) for a in listed] == [
        (new.id, server_id, "attached")
    ]
    assert volume_status(volume_id) == "in-use"
    (bdm,) = compute("GET", f"/servers/{server_id}/os-volume_attachments")["volumeAttachments"]
    assert (bdm["volumeId"], bdm["attachment_id"]) == (volume_id, new.id)

    # and what the watch saw: until the fencing, only the node3 attachment, in cinder and
    # in nova; the node2 one only after it
    assert not watch.errors, watch.errors[:5]
    before = [s for s in watch.seen if s.ended < confirmed]
    after = [s for s in watch.seen if new.id in s.cinder or s.nova == new.id]
    assert len(before) >= 5, f"only {len(before)} looks before the fencing"
    assert all(s.cinder == {old.id} and s.nova == old.id for s in before), before
    assert after and min(s.began for s in after) > confirmed
    assert {s.cinder for s in watch.seen} <= {
        frozenset({old.id}),
        frozenset({old.id, new.id}),
        frozenset({new.id}),
    }
    print(
        f"fencing confirmed → server ACTIVE on node2, volume attached there: {moved_in:.1f}s; "
        f"node2 attachment created {new.created - confirmed:+.1f}s after the fencing "
        f"(cinder's whole seconds); {len(watch.seen)} looks, {len(before)} before the fencing"
    )

    # the VNF error reports' resolver traces the volume and the server as the publisher
    # does (Keystone; this module's cinder, not the catalog's; the catalog has no neutron)
    session = CloudSession(str(cloud.clouds_yaml), "hakit")
    resolver = Resolver(ComputeAPI(session, api.endpoint), endpoints={"block-storage": CINDER_URL})
    assert resolver.resolve("volume", volume_id) == Resolution(
        "resolved", host=SPARE, backend=f"{CINDER_HOST}@fake"
    )
    assert resolver.resolve("server", server_id) == Resolution("resolved", host=SPARE)
    missing = resolver.resolve("volume", "00000000-0000-0000-0000-000000000000")
    assert missing.state == "unresolved" and "no volume" in missing.reason, missing
    port = resolver.resolve("port", "00000000-0000-0000-0000-000000000000")
    assert port.state == "unresolved" and "network" in port.reason, port

    # 6. node3 boots again: it cleans up its evacuation (then nova lets the flag clear);
    # the volume stays attached to node2 only
    nova.start(HOST, "nova-compute", nova.root / f"{HOST}.conf")
    alerts.node(HOST, "member", epoch=time.time())
    views.current = cib.placed

    def cleared_in_nova() -> bool:
        publisher.cycle(resync=True)
        return not node3_service()[1]

    wait_until(cleared_in_nova, 120, "node3 no longer forced down")
    assert forced_table(publisher) == [] and len(evacuations()) == 1
    assert placed() == (SPARE, "ACTIVE")
    assert [(a.id, a.deleted) for a in attachment_rows(cloud, volume_id)] == [
        (old.id, True),
        (new.id, False),
    ]
    publisher.outbox.close()
    print(f"whole scenario: {time.monotonic() - began:.1f}s")
