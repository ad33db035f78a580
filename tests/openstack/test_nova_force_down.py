"""The health publisher forces nova-compute down through a real nova-api, and back up;
and evacuates a fenced host's servers to the surviving compute, with one root alarm for
the host and one per server, correlated.

nova-api (nova.wsgi.osapi_compute under the standard library's wsgiref, the venv's
api-paste.ini: keystonemiddleware's authtoken against the session's Keystone),
nova-conductor, placement (Keystone too), a nova-scheduler and nova-computes with the fake driver as hosts `node3` and `node2` (glance
and neutron are the stdlib stand-ins of hakit.lab.openstack_stubs: the fake driver
never reads an image or plugs a port), all from the pinned venv, on the
session's MariaDB and RabbitMQ, on 127.0.0.1 only. nova-compute needs both: it reaches the
database only through nova-conductor, and it exits at start when placement does not
answer (version discovery in its report client). The cluster views are crm_mon output of
CIB files driven by crm_simulate (tests/health/conftest.py), with the fencing evidence that
the installed alert agent stores in the publisher's outbox. The publisher authenticates
with a clouds.yaml entry: hakit's user (an admin), or an application credential of it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hakit.lab import keystone, openstack
from hakit.ocf import proc
from hakit.resource_agents.clouds import CloudSession
from hakit.resource_agents.health.model import Health, classify
from hakit.resource_agents.health.nova import ComputeAPI, ComputeService
from hakit.resource_agents.health.outbox import NOTIFICATIONS
from hakit.resource_agents.health.placement import PlacementCheck
from hakit.resource_agents.health.publisher import Publisher
from hakit.tools.topology.model_qos import ComputeQoS, QoSTier
from hakit.tools.topology.qos import flavor_extra_specs
from tests.health.conftest import AlertRunner
from tests.openstack.conftest import Cloud, wait_until
from tests.openstack.infra import free_port
from tests.openstack.nova_cloud import (
    NovaCloud,
    Views,
    forced_table,
    leading_publisher,
    merged,
    nova_cloud,
    stub_settings,
)

NOVA_API_PORT = 18774
PLACEMENT_PORT = 18778
GLANCE_PORT, NEUTRON_PORT = 19492, 19896
HOST = "node3"
MASS = "MASS_HOST_FAILURE"  # the evacuation guard's alarm
SPARE = "node2"  # the surviving compute


@pytest.fixture(scope="module")
def nova_services(cloud: Cloud, module_tmp: Path) -> Iterator[NovaCloud]:
    """placement, nova-conductor, nova-api and nova-compute `node3`; the compute API once
    node3's nova-compute is up in it."""
    began = time.monotonic()
    root = module_tmp / "nova"
    settings = merged(
        stub_settings(GLANCE_PORT, NEUTRON_PORT),
        {
            "DEFAULT": {"reserved_host_memory_mb": 0, "cpu_allocation_ratio": 1.0},
            "quota": {"instances": -1, "cores": -1, "ram": -1},
            # every request's token validated by Keystone: a deleted application
            # credential's token is refused at once, not after authtoken's 300 s cache
            "keystone_authtoken": {"token_cache_time": -1},
            # the computes keep the dedicated cores (PCPU) a test adds to their providers
            # (the fake driver reports none and would write its inventory back on a refresh)
            "compute": {"resource_provider_association_refresh": 0},
            # a flavor with dedicated cores asks for PCPU only, as once every host reports
            # it (nova's fallback to VCPU is for hosts that do not yet)
            "workarounds": {"disable_fallback_pcpu_query": True},
        },
    )
    with nova_cloud(
        cloud, root, api_port=NOVA_API_PORT, placement_port=PLACEMENT_PORT, settings=settings
    ) as nova:
        nova.start_stubs(GLANCE_PORT, NEUTRON_PORT)
        (root / "compute-state").mkdir()
        compute = openstack.write_config(
            root / "compute.conf",
            {
                # the fake driver that keeps its node identity (state_path/compute_id): nova
                # refuses to restart a compute without it, and node3 restarts after its outage
                "DEFAULT": {
                    "host": HOST,
                    "compute_driver": "fake.FakeDriverWithoutFakeNodes",
                    "state_path": root / "compute-state",
                },
            },
        )
        nova.start("compute", "nova-compute", compute)
        nova.start_compute(SPARE)
        nova.start_scheduler("scheduler")
        wait_until(lambda: nova.computes_up([HOST, SPARE]), 90, "nova-computes up in the API")
        nova.discover_hosts()
        print(
            f"\nplacement, nova-conductor, nova-api, nova-scheduler, two nova-computes up in "
            f"{time.monotonic() - began:.1f}s"
        )
        yield nova


def node3(api: ComputeAPI) -> ComputeService:
    services = api.compute_services(HOST)
    assert len(services) == 1, services
    return services[0]


def power_cut(nova: NovaCloud, views: Views, alerts: AlertRunner, t0: float) -> None:
    """node3 loses power (its nova-compute tree SIGKILLed), is lost and fenced by node1."""
    compute = nova.services.children["compute"]
    for pid in proc.tree(compute.pid):
        os.kill(pid, signal.SIGKILL)
    compute.wait(timeout=10)
    alerts.node(HOST, "lost", epoch=t0 + 10)
    alerts.fencing(HOST, executioner="node1", epoch=t0 + 12)
    views.current = views.cib.simulate(views.cib.placed, "fenced", "--node-fail", HOST)


def back_and_cleared(
    nova: NovaCloud, views: Views, alerts: AlertRunner, publisher: Publisher, t0: float
) -> None:
    """node3 boots again and rejoins: the publisher clears its forced down (nova refuses
    until the restarted nova-compute has cleaned up the evacuations); it is up again."""
    nova.start("compute", "nova-compute", nova.root / "compute.conf")
    alerts.node(HOST, "member", epoch=t0 + 40)
    views.current = views.cib.placed

    def cleared_in_nova() -> bool:
        publisher.cycle(resync=True)
        return not node3(nova.api).forced_down

    wait_until(cleared_in_nova, 90, "node3 no longer forced down")
    assert forced_table(publisher) == []
    wait_until(lambda: node3(nova.api).state == "up", 60, "node3's nova-compute up again")


def test_publisher_forces_nova_compute_down_and_clears_it(
    nova_services: NovaCloud, cloud: Cloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    began = time.monotonic()
    nova = nova_services.api
    views, publisher, alerts = leading_publisher(tmp_path, nova)
    cib = views.cib
    wrong = cloud.identity.cloud()
    wrong["auth"]["password"] = "not-the-password"  # noqa: S105
    wrong_yaml = keystone.clouds_yaml(tmp_path / "wrong" / "clouds.yaml", {"hakit": wrong})
    wrong_password = ComputeAPI(CloudSession(str(wrong_yaml), "hakit"), nova.endpoint)
    not_admin = ComputeAPI(CloudSession(str(cloud.clouds_yaml), "demo"), nova.endpoint)
    unreachable = ComputeAPI(
        CloudSession(str(cloud.clouds_yaml), "hakit", timeout=2),
        f"http://127.0.0.1:{free_port()}/v2.1",
    )

    def health() -> Health:
        node = classify(views(publisher.outbox)).node(HOST)
        assert node is not None
        return node.health

    def cycle(api: ComputeAPI = nova) -> str:
        publisher.config.nova = api
        capsys.readouterr()
        publisher.cycle(resync=True)
        return capsys.readouterr().err

    t0 = time.time() - 60
    alerts.node(HOST, "member", epoch=t0)
    assert health() is Health.OK and "nova-compute" not in cycle()
    assert (node3(nova).state, node3(nova).forced_down) == ("up", False)

    # (a) lost but not fenced, then gone with no fence on record: nothing is forced down
    alerts.node(HOST, "lost", epoch=t0 + 10)
    views.current = cib.simulate(cib.placed, "lost", "--node-fail", HOST, execute=False)
    assert health() is Health.HOST_UNREACHABLE_UNFENCED
    assert "nova-compute" not in cycle()
    views.current = cib.simulate(cib.placed, "fenced", "--node-fail", HOST)
    assert health() is Health.HOST_LEFT_CLUSTER
    assert "nova-compute" not in cycle()
    assert forced_table(publisher) == [] and node3(nova).forced_down is False

    # (d) fenced, but Keystone refuses the password, nova refuses a non-admin (policy) or
    # the API cannot be reached: logged, retried later
    alerts.fencing(HOST, executioner="node1", epoch=t0 + 15)
    assert health() is Health.HOST_DOWN_FENCED
    refused = (
        f"Keystone at {cloud.identity.url} refused cloud 'hakit' (user hakit, project "
        "service): HTTP 401"
    )
    for api, problem in (
        (wrong_password, refused),
        (not_admin, "HTTP 403"),
        (unreachable, "Connection refused"),
    ):
        err = cycle(api)
        assert f"nova-compute on {HOST}: forced_down=True failed" in err and problem in err, err
        assert forced_table(publisher) == []
        assert not any(secret in err for secret in [*cloud.secrets(), "not-the-password"])
    assert node3(nova).forced_down is False

    # (b) fenced, the API answers: forced down, and nova says so
    forced_at = time.monotonic()
    err = cycle()
    with capsys.disabled():
        print(f"\nforced down in {(time.monotonic() - forced_at) * 1000:.0f} ms (one cycle)")
    assert f"nova-compute on {HOST}: forced_down=True (1 service(s) changed" in err, err
    assert forced_table(publisher) == [HOST]
    assert (node3(nova).state, node3(nova).forced_down) == ("down", True)
    assert "forced_down" not in cycle()  # reconciled: no second PUT

    # (d) back and OK, the API unreachable: it stays forced down until the API answers
    alerts.node(HOST, "member", epoch=t0 + 40)
    views.current = cib.placed
    assert health() is Health.OK
    err = cycle(unreachable)
    assert f"nova-compute on {HOST}: forced_down=False failed" in err, err
    assert forced_table(publisher) == [HOST] and node3(nova).forced_down is True

    # (c) OK and the API answers: cleared; nova-compute still heartbeats, so it is up
    err = cycle()
    assert f"nova-compute on {HOST}: forced_down=False (1 service(s) changed" in err, err
    assert forced_table(publisher) == []
    assert (node3(nova).state, node3(nova).forced_down) == ("up", False)
    puts = nova_services.api_requests("PUT")  # one to force down, one to clear; no other
    assert len(puts) == 2 and all("/v2.1/os-services/" in p and "status: 200" in p for p in puts)
    publisher.outbox.close()
    with capsys.disabled():
        print(f"publisher steps: {time.monotonic() - began:.1f}s")


def test_a_revoked_application_credential_is_reported_then_a_new_one_recovers(
    nova_services: NovaCloud, cloud: Cloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The publisher authenticates with an application credential of hakit's user; the
    credential is deleted while in use (nova-api refuses its token, Keystone the
    credential itself: HTTP 404 from Keystone 30): node3's fencing is then not acted on,
    the log says Keystone refused it (the credential's id, never its secret) and nova is
    unchanged. A new credential written
    into the clouds.yaml: the next cycle (no restart) forces node3 down."""
    identity = cloud.keystone
    first, first_secret = identity.application_credential("publisher")
    path = keystone.clouds_yaml(
        tmp_path / "etc" / "clouds.yaml", {"hakit": identity.application_cloud(first, first_secret)}
    )
    api = ComputeAPI(CloudSession(str(path), "hakit"), nova_services.api.endpoint)
    views, publisher, alerts = leading_publisher(tmp_path, api)

    def cycle() -> str:
        capsys.readouterr()
        publisher.cycle(resync=True)
        return capsys.readouterr().err

    t0 = time.time() - 60
    alerts.node(HOST, "member", epoch=t0)
    assert "not refreshed" not in cycle()  # the credential works: nova's servers listed
    assert node3(api).forced_down is False

    identity.delete_application_credential(first)
    alerts.node(HOST, "lost", epoch=t0 + 10)
    alerts.fencing(HOST, executioner="node1", epoch=t0 + 12)
    views.current = views.cib.simulate(views.cib.placed, "revoked", "--node-fail", HOST)
    err = cycle()
    refused = (
        f"Keystone at {cloud.identity.url} refused cloud 'hakit' (application credential "
        f"{first}): HTTP 404 Could not find Application Credential"
    )
    assert f"nova-compute on {HOST}: forced_down=True failed: {refused}" in err, err
    assert first_secret not in err
    assert forced_table(publisher) == [] and node3(nova_services.api).forced_down is False
    assert "forced_down=True failed" in cycle()  # retried on every cycle, still refused

    second, second_secret = identity.application_credential("publisher")
    keystone.clouds_yaml(path, {"hakit": identity.application_cloud(second, second_secret)})
    err = cycle()
    assert f"nova-compute on {HOST}: forced_down=True (1 service(s) changed" in err, err
    assert forced_table(publisher) == [HOST] and node3(api).forced_down is True

    alerts.node(HOST, "member", epoch=t0 + 40)  # back and OK (it never stopped): cleared
    views.current = views.cib.placed
    assert f"nova-compute on {HOST}: forced_down=False (1 service(s) changed" in cycle()
    assert forced_table(publisher) == [] and node3(api).forced_down is False
    identity.delete_application_credential(second)
    publisher.outbox.close()


def test_a_fenced_hosts_servers_are_evacuated_and_alarmed_per_server(
    nova_services: NovaCloud, tmp_path: Path
) -> None:
    """node3 loses power with three servers on it; once its fencing is confirmed the
    publisher (evacuate=True) forces it down and evacuates each server once; they become
    ACTIVE on node2. The alarms: node3's root alarm plus one per server (nova's servers
    are the inventory), correlated. node3 back and OK: cleared; the servers stay."""
    nova = nova_services
    api = nova.api
    nova.create_flavor("evac")
    ids = [nova.boot(f"evac-{i}", "evac", HOST) for i in range(3)]

    def placed() -> set[tuple[str, str]]:
        return {(s.host, s.status) for s in api.servers() if s.id in ids}

    wait_until(lambda: placed() == {(HOST, "ACTIVE")}, 90, "three servers ACTIVE on node3")
    views, publisher, alerts = leading_publisher(tmp_path, api, evacuate=True)
    t0 = time.time() - 60
    alerts.node(HOST, "member", epoch=t0)
    publisher.cycle(resync=True)

    power_cut(nova, views, alerts, t0)
    fenced_at = time.monotonic()
    publisher.cycle(resync=True)
    assert node3(api).forced_down is True
    wait_until(lambda: placed() == {(SPARE, "ACTIVE")}, 120, "the servers ACTIVE on node2")
    print(
        f"\nfencing confirmed → three servers ACTIVE on node2: "
        f"{time.monotonic() - fenced_at:.1f}s"
    )
    publisher.cycle(resync=True)  # each server once: no second evacuation
    evacuations = [line for line in nova.api_requests("POST") if "/action" in line]
    assert len(evacuations) == 3, evacuations

    bodies = [
        json.loads(r.body)["notification"]
        for r in publisher.outbox.read(NOTIFICATIONS, 0, limit=-1)
    ]
    raised = [b["alarm"] for b in bodies if b["notificationType"] == "AlarmNotification"]
    root, *per_server = raised[:4]  # when the fencing was confirmed
    assert (root["managedObjectId"], root["faultType"], root["isRootCause"]) == (
        HOST,
        "HOST_DOWN_FENCED",
        True,
    )
    assert sorted(a["managedObjectId"] for a in per_server) == sorted(ids)
    assert sorted(root["correlatedAlarmIds"]) == sorted(a["id"] for a in per_server)
    cleared = [b["alarmId"] for b in bodies if b["notificationType"] == "AlarmClearedNotification"]
    assert sorted(cleared) == sorted(a["id"] for a in per_server)  # they run on node2 now

    back_and_cleared(nova, views, alerts, publisher, t0)
    assert placed() == {(SPARE, "ACTIVE")}
    publisher.outbox.close()


def test_the_mass_failure_guard_holds_evacuations_until_raised(
    nova_services: NovaCloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """node3 fenced while node1 is lost too (2 of 3 nodes, more than the guard's half):
    node3 is forced down, none of its servers is evacuated and the guard says so once;
    one MASS_HOST_FAILURE alarm; with the guard raised to every node, the next cycle
    clears it and evacuates them to node2, two requests in flight at once."""
    nova = nova_services
    api = nova.api
    nova.create_flavor("guard")
    ids = [nova.boot(f"guard-{i}", "guard", HOST) for i in range(2)]

    def placed() -> set[tuple[str, str]]:
        return {(s.host, s.status) for s in api.servers() if s.id in ids}

    wait_until(lambda: placed() == {(HOST, "ACTIVE")}, 90, "two servers ACTIVE on node3")
    views, publisher, alerts = leading_publisher(tmp_path, api, evacuate=True)
    publisher.config.evacuate_workers = 2
    t0 = time.time() - 60
    alerts.node(HOST, "member", epoch=t0)
    publisher.cycle(resync=True)
    posted = len([line for line in nova.api_requests("POST") if "/action" in line])

    power_cut(nova, views, alerts, t0)
    views.current = views.cib.simulate(
        views.current, "node1-lost", "--node-fail", "node1", execute=False
    )  # lost, not fenced yet
    for _ in range(2):
        publisher.cycle(resync=True)
    report = classify(views(publisher.outbox))
    assert {n.node: n.health for n in report.nodes} == {
        "node1": Health.HOST_UNREACHABLE_UNFENCED,
        "node2": Health.OK,
        HOST: Health.HOST_DOWN_FENCED,
    }
    assert node3(api).forced_down is True
    assert len([line for line in nova.api_requests("POST") if "/action" in line]) == posted
    held = [line for line in capsys.readouterr().err.splitlines() if "mass failure" in line]
    assert len(held) == 1 and "2 of 3 nodes lost (node1, node3)" in held[0], held
    [mass] = raised_alarms(publisher, MASS)

    publisher.config.evacuate_guard = 1.0
    publisher.cycle(resync=True)
    wait_until(lambda: placed() == {(SPARE, "ACTIVE")}, 120, "the servers ACTIVE on node2")
    assert len([line for line in nova.api_requests("POST") if "/action" in line]) == posted + 2
    assert "mass failure over" in capsys.readouterr().err
    assert mass["id"] in cleared_alarms(publisher)

    back_and_cleared(nova, views, alerts, publisher, t0)
    publisher.outbox.close()


def used_on(nova: NovaCloud, host: str, resource_class: str = "VCPU") -> int:
    """The VCPU (or `resource_class`) placement counts as used on `host`'s provider."""
    usages = nova.placement_get(f"/resource_providers/{nova.providers()[host]}/usages")
    return int(usages["usages"].get(resource_class, 0))


def test_an_evacuation_left_in_error_is_requested_again_then_given_up(
    nova_services: NovaCloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """node2 is full when node3 is fenced: the evacuations of node3's servers find no
    valid host and leave them ERROR on node3. The publisher requests each again once
    `evacuate_retry` x attempts seconds have passed, never sooner. Room is made on node2
    after the second attempt: the 1-VCPU server is ACTIVE there after the third; the
    11-VCPU one fits nowhere, and after its third failure the publisher says so once and
    leaves it (its alarm stays open). The outbox's evacuations table is the first
    version's: it gains its columns and keeps its row."""
    nova = nova_services
    api = nova.api
    for server in api.servers():
        nova.request("DELETE", f"/servers/{server.id}")
    wait_until(lambda: not api.servers() and used_on(nova, SPARE) == 0, 90, "no servers left")
    nova.create_flavor("retry-fill", vcpus=10)  # all of node2 (MediumFakeDriver, ratio 1)
    nova.create_flavor("retry-small")
    nova.create_flavor("retry-huge", vcpus=11)  # more than node2 has

    blocker = nova.boot("blocker", "retry-fill", SPARE)
    small, huge = nova.boot("small", "retry-small", HOST), nova.boot("huge", "retry-huge", HOST)

    def state(server: str) -> tuple[str, str, str | None]:
        (found,) = [(s.host, s.status, s.task_state) for s in api.servers() if s.id == server]
        return found

    def booted() -> bool:
        for server in (blocker, small, huge):
            shown = nova.request("GET", f"/servers/{server}")["server"]
            assert shown["status"] != "ERROR", shown.get("fault")
        return all(state(s)[1] == "ACTIVE" for s in (blocker, small, huge))

    wait_until(booted, 90, "the three servers ACTIVE")
    with contextlib.closing(sqlite3.connect(tmp_path / "outbox.db")) as old:  # first version's
        old.execute("CREATE TABLE evacuations (server TEXT, host TEXT, PRIMARY KEY (server, host))")
        old.execute("INSERT INTO evacuations VALUES ('an-earlier-server', 'node9')")
        old.commit()
    views, publisher, alerts = leading_publisher(tmp_path, api, evacuate=True)
    publisher.config.evacuate_retry = 2.0
    publisher.config.evacuate_deadline = 3.0  # less than the second retry's 4 s
    db = publisher.outbox.db
    t0 = time.time() - 60
    alerts.node(HOST, "member", epoch=t0)
    publisher.cycle(resync=True)

    power_cut(nova, views, alerts, t0)

    said: list[str] = []
    requested: dict[str, list[float]] = {small: [], huge: []}

    def cycle() -> None:
        capsys.readouterr()
        publisher.cycle(resync=True)
        err = capsys.readouterr().err
        said.extend(err.splitlines())
        for server in requested:
            asked = err.count(f"server {server} on {HOST}: evacuation requested")
            requested[server] += [time.monotonic()] * asked

    def failed_again(attempts: int) -> bool:
        cycle()
        return all(
            len(requested[s]) == attempts and state(s) == (HOST, "ERROR", None)
            for s in (small, huge)
        )

    wait_until(lambda: failed_again(1), 60, "both evacuations failed (no valid host)")
    assert node3(api).forced_down is True
    wait_until(lambda: failed_again(2), 60, "both evacuations requested again and failed")
    nova.request("DELETE", f"/servers/{blocker}")
    wait_until(lambda: used_on(nova, SPARE) == 0, 60, "node2 empty")

    def small_moved() -> bool:
        cycle()
        return state(small)[:2] == (SPARE, "ACTIVE")

    wait_until(small_moved, 90, "the small server ACTIVE on node2 (third attempt)")

    def gave_up() -> bool:
        cycle()
        return any("still ERROR" in line for line in said)

    wait_until(gave_up, 60, "the publisher giving up on the huge server")
    for _ in range(3):
        time.sleep(1)
        cycle()
    assert [len(times) for times in requested.values()] == [3, 3], requested
    # attempt n+1 no sooner than retry x n after attempt n (the test sees each request
    # at the end of its cycle, which may be a little later: 0.5 s of slack)
    for times in requested.values():
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert all(gap >= 2.0 * n - 0.5 for n, gap in enumerate(gaps, 1)), gaps
    given_up = [line.partition(" ")[2] for line in said if "still ERROR" in line]  # no time
    assert given_up == [
        f"hakit-publisher: server {huge} on {HOST}: still ERROR after 3 "
        "evacuation(s); not requested again (its alarm stays open)"
    ]
    assert state(huge) == (HOST, "ERROR", None)
    evacuations = [line for line in nova.api_requests("POST") if "/action" in line]
    assert sum(small in line for line in evacuations) == 3
    assert sum(huge in line for line in evacuations) == 3
    rows = db.execute("SELECT server, host, attempts, gave_up FROM evacuations").fetchall()
    assert sorted(rows) == sorted(
        [("an-earlier-server", "node9", 1, 0), (small, HOST, 3, 0), (huge, HOST, 3, 1)]
    )
    # each server's evacuation overdue once (not again on a retry); small's cleared when
    # it moved, huge's open until node3 is back
    overdue = {
        a["managedObjectId"]: a["id"] for a in raised_alarms(publisher, "EVACUATION_OVERDUE")
    }
    assert len(raised_alarms(publisher, "EVACUATION_OVERDUE")) == 2
    assert set(overdue) == {small, huge} and cleared_alarms(publisher) >= {overdue[small]}
    assert overdue[huge] not in cleared_alarms(publisher)

    back_and_cleared(nova, views, alerts, publisher, t0)
    assert db.execute("SELECT server FROM evacuations WHERE host = ?", (HOST,)).fetchall() == []
    assert overdue[huge] in cleared_alarms(publisher)
    publisher.outbox.close()


def raised_alarms(publisher: Publisher, fault: str) -> list[dict[str, Any]]:
    """The alarms of faultType `fault` the publisher stored AlarmNotifications of."""
    bodies = [
        json.loads(r.body)["notification"]
        for r in publisher.outbox.read(NOTIFICATIONS, 0, limit=-1)
    ]
    return [b["alarm"] for b in bodies if b.get("alarm", {}).get("faultType") == fault]


def cleared_alarms(publisher: Publisher) -> set[str]:
    bodies = [
        json.loads(r.body)["notification"]
        for r in publisher.outbox.read(NOTIFICATIONS, 0, limit=-1)
    ]
    return {b["alarmId"] for b in bodies if b["notificationType"] == "AlarmClearedNotification"}


def test_a_host_over_capacity_in_placement_is_a_qos_alarm(
    nova_services: NovaCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compute host's capacity lowered under what its servers use (placement accepts it
    and logs the provider over capacity): the publisher raises COMPUTE_OVER_COMMITTED for
    VCPU and GUARANTEED_CPU_SHARED for dedicated cores (PCPU) on that host, and clears both
    once the capacity is back. The provider is the test's own (a nova-compute writes its
    inventory back) and holds no MEMORY_MB, so no boot of another test lands on it."""
    nova = nova_services
    views, publisher, _ = leading_publisher(tmp_path, nova.api)
    monkeypatch.setenv("CIB_file", str(views.cib.placed))  # the capacity stage's CIB
    check = publisher.capacity.placement
    assert isinstance(check, PlacementCheck)  # it has a compute API: placement is checked
    check.interval, publisher.capacity.grace = 0.0, 0.0
    provider, consumer, host = str(uuid.uuid4()), str(uuid.uuid4()), "qos-host"

    place = nova.placement_request

    def capacity(vcpu: int, pcpu: int) -> None:
        generation = place("GET", f"/resource_providers/{provider}")["generation"]
        inventories = {"VCPU": {"total": vcpu}, "PCPU": {"total": pcpu}}
        body = {"resource_provider_generation": generation, "inventories": inventories}
        place("PUT", f"/resource_providers/{provider}/inventories", body)

    def look() -> None:
        """A reading of placement (in the check's thread) after this point, derived."""
        for _ in range(2):  # the reading in flight finished, then one started and finished
            if check.reading is not None:
                check.reading.join(30)
            publisher.cycle(resync=True)

    def notifications() -> list[dict[str, Any]]:
        return [
            json.loads(r.body)["notification"]
            for r in publisher.outbox.read(NOTIFICATIONS, 0, limit=-1)
        ]

    place("POST", "/resource_providers", {"name": host, "uuid": provider})
    try:
        capacity(4, 2)
        ids = {"project_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4())}
        claim = {provider: {"resources": {"VCPU": 3, "PCPU": 2}}}
        body = {"allocations": claim, **ids, "consumer_generation": None}
        place("PUT", f"/allocations/{consumer}", body)
        look()
        assert notifications() == []  # within capacity

        capacity(2, 1)  # placement: "Resource provider ... is now over-capacity"
        look()
        raised = {n["alarm"]["faultType"]: n["alarm"] for n in notifications()}
        assert set(raised) == {"COMPUTE_OVER_COMMITTED", "GUARANTEED_CPU_SHARED"}, raised
        for alarm in raised.values():
            assert alarm["managedObjectId"] == host and alarm["eventType"] == "QOS_ALARM"
        assert raised["GUARANTEED_CPU_SHARED"]["faultDetails"] == [
            f"{host} uses PCPU 2/1 (placement)"
        ]
        assert raised["COMPUTE_OVER_COMMITTED"]["faultDetails"] == [
            f"{host} uses VCPU 3/2 (placement)"
        ]

        capacity(4, 2)
        look()
        cleared = [n["alarmId"] for n in notifications() if "alarmId" in n]
        assert sorted(cleared) == sorted(a["id"] for a in raised.values())
    finally:
        place("DELETE", f"/allocations/{consumer}")
        place("DELETE", f"/resource_providers/{provider}")
        publisher.outbox.close()


def set_dedicated_cores(nova: NovaCloud, host: str, cores: int) -> None:
    """`host`'s provider gets `cores` dedicated cores (PCPU; none when 0) beside the
    inventory its nova-compute reports: what [compute] cpu_dedicated_set makes a real
    host report, which the fake driver cannot."""
    path = f"/resource_providers/{nova.providers()[host]}/inventories"
    current = nova.placement_get(path)
    inventories = dict(current["inventories"])
    inventories.pop("PCPU", None)
    if cores:
        inventories["PCPU"] = {"total": cores}
    body = {
        "resource_provider_generation": current["resource_provider_generation"],
        "inventories": inventories,
    }
    nova.placement_request("PUT", path, body)


def test_a_guaranteed_cpu_no_host_has_after_a_failover_is_a_qos_alarm(
    nova_services: NovaCloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server of a gold tier's flavor (guaranteed_percent 100: hw:cpu_policy=dedicated,
    as `topology qos --apply` sets it) runs on node3's two dedicated cores; node2 has none.
    node3 is fenced: the evacuation finds no valid host (the scheduler asks placement for
    PCPU) and leaves the server ERROR on node3. The publisher raises one
    GUARANTEED_CPU_UNAVAILABLE QoS alarm for it, correlated with node3's alarm; not again on
    the next cycles. Two dedicated cores on node2: the next attempt runs it there, and the
    alarm is cleared. The fake driver reports no PCPU and no NUMA topology, so the test
    puts PCPU into the providers itself (`set_dedicated_cores`); nova's scheduling, claim
    and evacuation are real."""
    nova = nova_services
    api = nova.api
    for server in api.servers():
        nova.request("DELETE", f"/servers/{server.id}")
    wait_until(lambda: not api.servers() and used_on(nova, SPARE) == 0, 90, "no servers left")
    gold = QoSTier("gold", compute=ComputeQoS(guaranteed_percent=100))
    nova.create_flavor("gold-2", vcpus=2)
    specs = {"extra_specs": flavor_extra_specs(gold)}
    nova.request("POST", "/flavors/gold-2/os-extra_specs", specs)
    set_dedicated_cores(nova, HOST, 2)
    try:
        pinned = nova.boot("pinned", "gold-2", HOST)

        def state() -> tuple[str, str, str | None]:
            (found,) = [(s.host, s.status, s.task_state) for s in api.servers() if s.id == pinned]
            assert found[1] != "ERROR" or found[0] == HOST, found
            return found

        wait_until(lambda: state() == (HOST, "ACTIVE", None), 90, "the pinned server ACTIVE")
        used = nova.placement_get(f"/allocations/{pinned}")["allocations"]
        assert used[nova.providers()[HOST]]["resources"].get("PCPU") == 2, used

        views, publisher, alerts = leading_publisher(tmp_path, api, evacuate=True)
        publisher.config.evacuate_retry = 2.0
        t0 = time.time() - 60
        alerts.node(HOST, "member", epoch=t0)
        publisher.cycle(resync=True)
        power_cut(nova, views, alerts, t0)

        def cycle() -> str:
            capsys.readouterr()
            publisher.cycle(resync=True)
            return capsys.readouterr().err

        def alarmed() -> bool:
            cycle()
            return bool(raised_alarms(publisher, "GUARANTEED_CPU_UNAVAILABLE"))

        wait_until(alarmed, 60, "the QoS alarm of the pinned server")
        assert state() == (HOST, "ERROR", None)
        fault = nova.request("GET", f"/servers/{pinned}")["server"]["fault"]["message"]
        assert fault.startswith("No valid host"), fault
        for _ in range(2):
            cycle()
        (alarm,) = raised_alarms(publisher, "GUARANTEED_CPU_UNAVAILABLE")
        (root,) = [
            a for a in raised_alarms(publisher, "HOST_DOWN_FENCED") if a["managedObjectId"] == HOST
        ]
        assert (alarm["managedObjectId"], alarm["eventType"], alarm["perceivedSeverity"]) == (
            pinned,
            "QOS_ALARM",
            "MAJOR",
        )
        assert alarm["rootCauseFaultyResource"]["faultyResource"]["resourceId"] == HOST
        assert alarm["correlatedAlarmIds"] == [root["id"]]
        assert alarm["isRootCause"] is False
        assert "2 dedicated core(s) (PCPU) that flavor gold-2 guarantees" in alarm["probableCause"]
        assert alarm["faultDetails"] == [f"instance {pinned} ERROR on host {HOST}: {fault}"]
        assert alarm["id"] not in cleared_alarms(publisher)

        set_dedicated_cores(nova, SPARE, 2)

        def moved() -> bool:
            cycle()
            return state() == (SPARE, "ACTIVE", None)

        wait_until(moved, 90, "the pinned server ACTIVE on node2 (an attempt after the room)")
        cycle()
        assert alarm["id"] in cleared_alarms(publisher)
        assert len(raised_alarms(publisher, "GUARANTEED_CPU_UNAVAILABLE")) == 1
        back_and_cleared(nova, views, alerts, publisher, t0)
        publisher.outbox.close()
    finally:
        for server in api.servers():
            nova.request("DELETE", f"/servers/{server.id}")
        wait_until(lambda: not api.servers(), 90, "no servers left")
        wait_until(
            lambda: not used_on(nova, HOST, "PCPU") + used_on(nova, SPARE, "PCPU"),
            60,
            "PCPU free",
        )
        for host in (HOST, SPARE):
            set_dedicated_cores(nova, host, 0)
