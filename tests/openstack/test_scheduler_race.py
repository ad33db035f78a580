"""Two active nova-schedulers, an over-capacity burst of boots, and no over-allocation.

Real: placement 16.0.0 with hakit's placement.conf (`allocation_conflict_retry_count = 1`,
docs/placement-overallocation.md), nova-api, nova-conductor, two nova-schedulers (hosts
s1 and s2, one worker each, both consuming the scheduler queue) and three nova-computes
(c1, c2, c3), all nova 34 from the pinned venv, on the session's MariaDB, RabbitMQ and
Keystone (every API validates tokens with it), on 127.0.0.1 only. Stand-ins: nova's
fake.MediumFakeDriver for the hypervisor (10 VCPU a node, allocation ratios 1.0: 30 VCPU
in all) and the stdlib stubs of hakit.lab.openstack_stubs for glance (one image) and
neutron (empty answers; the servers have `"networks": "none"`).

BOOTS 1-VCPU servers are created from as many threads at once. Whatever the interleaving
of the schedulers' claims, placement must never hold more VCPU on a provider than its
inventory allows; every ACTIVE server must be one VCPU of that usage, and the others must
have failed with "No valid host".
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.openstack.conftest import Cloud, wait_until
from tests.openstack.infra import http_answers
from tests.openstack.nova_cloud import NovaCloud, merged, nova_cloud, stub_settings

NOVA_API_PORT = 18874
PLACEMENT_PORT = 18878
GLANCE_PORT = 19292
NEUTRON_PORT = 19696
COMPUTES = ("c1", "c2", "c3")
SCHEDULERS = ("s1", "s2")
VCPUS = 10  # fake.MediumFakeDriver
BOOTS = 45
PROJECT = "scheduler-race"  # hakit's user is its admin: the race's servers, apart
FLAVOR = "race-1vcpu"
SCHEDULED = re.compile(r"Starting to schedule for instances: \['([0-9a-f-]{36})'\]")


@dataclass
class Provider:
    name: str
    used: int
    capacity: int  # (total - reserved) * allocation_ratio


@dataclass
class Burst:
    servers: list[dict[str, Any]]
    providers: list[Provider]
    scheduled: dict[str, list[str]]  # scheduler host → instance uuids it scheduled
    conflicts: int  # claims placement refused with 409 (capacity or concurrent update)
    accepted_s: float
    settled_s: float

    def status(self, status: str) -> list[dict[str, Any]]:
        return [s for s in self.servers if s["status"] == status]


@pytest.fixture(scope="module")
def race_cloud(cloud: Cloud, module_tmp: Path) -> Iterator[NovaCloud]:
    """placement, conductor, nova-api, the stubs, c1-c3 and s1-s2, hosts discovered."""
    began = time.monotonic()
    settings = merged(
        {
            "DEFAULT": {
                "cpu_allocation_ratio": 1.0,
                "ram_allocation_ratio": 1.0,
                "disk_allocation_ratio": 1.0,
                "reserved_host_memory_mb": 0,
            },
            "scheduler": {"workers": 1},
            "quota": {"instances": -1, "cores": -1, "ram": -1},  # PUT os-quota-sets asks keystone
        },
        stub_settings(GLANCE_PORT, NEUTRON_PORT),
    )
    with nova_cloud(
        cloud,
        module_tmp / "race",
        api_port=NOVA_API_PORT,
        placement_port=PLACEMENT_PORT,
        placement_database="placement_sched",
        settings=settings,
        cloud_name=cloud.keystone.project_cloud(PROJECT),
        api_timeout=120,
    ) as nova:
        nova.start_stubs(GLANCE_PORT, NEUTRON_PORT)
        for host in COMPUTES:
            nova.start_compute(host)
        for host in SCHEDULERS:
            nova.start_scheduler(host, debug=True)
        wait_until(
            lambda: nova.computes_up(COMPUTES)
            and nova.services_up("nova-scheduler", SCHEDULERS)
            and sorted(nova.providers()) == list(COMPUTES)
            and http_answers(GLANCE_PORT)
            and http_answers(NEUTRON_PORT),
            120,
            "c1-c3, s1-s2, their providers and the stubs up",
        )
        discovered = nova.discover_hosts()
        print(
            f"\nrace cloud up in {time.monotonic() - began:.1f}s "
            f"(discover_hosts {discovered:.1f}s)"
        )
        yield nova


@pytest.fixture(scope="module")
def burst(race_cloud: NovaCloud) -> Burst:
    """BOOTS servers from BOOTS threads at once; waits until each is ACTIVE or ERROR."""
    nova = race_cloud
    nova.create_flavor(FLAVOR)
    gate = threading.Barrier(BOOTS)

    def boot(index: int) -> str:
        gate.wait()
        return nova.boot(f"race-{index:02d}", FLAVOR)

    began = time.monotonic()
    with ThreadPoolExecutor(BOOTS) as pool:
        ids = list(pool.map(boot, range(BOOTS)))
    accepted = time.monotonic() - began
    assert len(set(ids)) == BOOTS
    servers: list[dict[str, Any]] = []

    def settled() -> bool:
        nonlocal servers
        servers = nova.request("GET", "/servers/detail")["servers"]
        return len(servers) == BOOTS and all(s["status"] in ("ACTIVE", "ERROR") for s in servers)

    try:
        wait_until(settled, 120, "every server ACTIVE or ERROR")
    finally:
        print(f"\n{BOOTS} boots: {dict(Counter(s['status'] for s in servers))}")
    settle = time.monotonic() - began
    assert {s["id"] for s in servers} == set(ids)
    found = []
    for name, uuid in sorted(nova.providers().items()):
        vcpu = nova.placement_get(f"/resource_providers/{uuid}/inventories")["inventories"]["VCPU"]
        used = nova.placement_get(f"/resource_providers/{uuid}/usages")["usages"].get("VCPU", 0)
        capacity = int((vcpu["total"] - vcpu["reserved"]) * vcpu["allocation_ratio"])
        found.append(Provider(name, used, capacity))
    scheduled = {h: SCHEDULED.findall(nova.services.log(h, tail=10**9)) for h in SCHEDULERS}
    claims = [
        line
        for line in nova.services.log("placement", tail=10**9).splitlines()
        if '"PUT /allocations/' in line
    ]
    conflicts = sum("status: 409" in line for line in claims)
    return Burst(servers, found, scheduled, conflicts, accepted, settle)


def test_no_provider_is_over_allocated(
    race_cloud: NovaCloud, burst: Burst, capsys: pytest.CaptureFixture[str]
) -> None:
    placement_conf = (race_cloud.root / "placement" / "placement.conf").read_text()
    assert "allocation_conflict_retry_count = 1" in placement_conf  # hakit's SAFE_CLAIMS
    active = len(burst.status("ACTIVE"))
    with capsys.disabled():
        print(
            f"\nAPI accepted {BOOTS} boots in {burst.accepted_s:.1f}s "
            f"({BOOTS / burst.accepted_s:.1f}/s); all settled in {burst.settled_s:.1f}s "
            f"({BOOTS / burst.settled_s:.1f} servers/s, {active / burst.settled_s:.1f} "
            f"ACTIVE/s): ACTIVE {active}, ERROR {len(burst.status('ERROR'))}; VCPU used "
            + ", ".join(f"{p.name} {p.used}/{p.capacity}" for p in burst.providers)
            + f"; placement refused {burst.conflicts} claims (409)"
        )
    assert [p.capacity for p in burst.providers] == [VCPUS] * len(COMPUTES)
    over = [p for p in burst.providers if p.used > p.capacity]
    assert not over, over


def test_every_active_server_is_one_vcpu_of_placement_usage(burst: Burst) -> None:
    active = burst.status("ACTIVE")
    assert 0 < len(active) <= VCPUS * len(COMPUTES)
    assert len(active) == sum(p.used for p in burst.providers)
    hosts = Counter(s["OS-EXT-SRV-ATTR:host"] for s in active)
    assert {p.name: p.used for p in burst.providers if p.used} == dict(hosts)


def test_the_others_failed_with_no_valid_host(burst: Burst) -> None:
    failed = burst.status("ERROR")
    assert len(failed) == BOOTS - len(burst.status("ACTIVE"))
    faults = [s.get("fault", {}).get("message", "") for s in failed]
    assert all("No valid host" in fault for fault in faults), faults


def test_both_schedulers_served(burst: Burst, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\nscheduled: " + ", ".join(f"{h} {len(ids)}" for h, ids in burst.scheduled.items()))
    assert all(burst.scheduled[h] for h in SCHEDULERS), burst.scheduled
    seen = {uuid for ids in burst.scheduled.values() for uuid in ids}
    assert {s["id"] for s in burst.servers} <= seen
