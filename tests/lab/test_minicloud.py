"""The mini cloud in the lab (`hakit lab cloud up`): placement, nova-api, nova-conductor,
three nova-schedulers and three nova-computes on nova's fake driver (10 usable VCPU each), all
Pacemaker clones through hakit's agents, on the infra node's MariaDB and RabbitMQ.
Keystone is not used: nova-api runs hakit's noauth paste filter (labs only), and glance
and neutron are stand-ins (hakit.tools.lab.openstack_stubs): the fake driver never reads
an image or plugs a port. The client is outside the cluster (the infra namespace) and
talks to any node's nova-api.

- A burst of boots beyond capacity through the three APIs: no provider over-allocated,
  also with a scheduler killed mid-burst.
- nova-compute killed on a node (service down, host up): Pacemaker restarts it; nothing
  is forced down or evacuated.
- A compute node's power cut: fencing confirmed, then the health publisher forces its
  nova-compute down and evacuates its servers, ACTIVE elsewhere; the node back: cleared.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hakit.ocf import proc
from hakit.tools.health.nova import Server
from hakit.tools.lab import cloud
from hakit.tools.lab.lab import Lab
from tests.lab.test_openstack import fail_count, masters, wait_for

NODES = ["node1", "node2", "node3"]
CAPACITY = cloud.COMPUTE_VCPUS  # per compute
BURST = 45  # 1-VCPU servers: 15 beyond capacity


@pytest.fixture(scope="module")
def minicloud(lab: Lab) -> Iterator[Lab]:
    began = time.monotonic()
    cloud.up(lab, compute=True, timeout=900)
    print(f"\nmini cloud up in {time.monotonic() - began:.0f}s")
    try:
        wait_for("three nova-computes up in the compute API",
                 lambda: cloud.compute_states(lab) == {n: "up" for n in NODES}, 180)  # fmt: skip
        wait_for("the computes mapped to the cell (the schedulers' discovery)",
                 lambda: hypervisors(lab) == set(NODES), 120)  # fmt: skip
        cloud.ensure_flavor(lab)
        cloud.delete_servers(lab)  # left by an interrupted run
        yield lab
    finally:
        lab.restore()
        lab.wait_until_online(timeout=180)
        cloud.down(lab)


def hypervisors(lab: Lab) -> set[str]:
    answer: Any = lab.as_client(
        lambda: cloud.compute_api(lab, "node1").request("GET", "/os-hypervisors")
    )
    return {h["hypervisor_hostname"] for h in answer["hypervisors"]}


def boot_on(lab: Lab, host: str, prefix: str, count: int) -> list[str]:
    api = cloud.compute_api(lab, "node1")
    return lab.as_client(lambda: [cloud.boot(api, f"{prefix}-{i}", host) for i in range(count)])


def test_every_service_runs_everywhere_without_failures(minicloud: Lab) -> None:
    placed = cloud.running(minicloud, compute=True)
    assert all(nodes == NODES for nodes in placed.values()), placed
    counts = {(c, n): fail_count(minicloud, c.removesuffix("-clone"), n)
              for c in cloud.COMPUTE_CLONES if c not in cloud.DEMO_CLONES
              for n in NODES}  # the demo's publisher keeps its history  # fmt: skip
    assert set(counts.values()) == {0}, counts
    assert cloud.placement_usages(minicloud) == {n: (0, CAPACITY) for n in NODES}


def burst(lab: Lab, prefix: str) -> list[str]:
    """BURST boots at once, spread over the three nova-apis; their ids."""
    apis = [cloud.compute_api(lab, node, timeout=180) for node in NODES]  # 2 cores: slow

    def post() -> list[str]:
        with ThreadPoolExecutor(BURST) as pool:
            return list(pool.map(lambda i: cloud.boot(apis[i % 3], f"{prefix}-{i:02d}"),
                                 range(BURST)))  # fmt: skip

    return lab.as_client(post)


def test_a_burst_beyond_capacity_never_over_allocates(minicloud: Lab) -> None:
    """The three schedulers claim in placement concurrently."""
    began = time.monotonic()
    ids = burst(minicloud, "burst")
    listed: list[Server] = []

    def settled() -> bool:
        nonlocal listed
        listed = cloud.servers(minicloud)
        return len(listed) == BURST and all(s.status in ("ACTIVE", "ERROR") for s in listed)

    wait_for("every server ACTIVE or ERROR", settled, 300)
    took = time.monotonic() - began
    statuses = Counter(s.status for s in listed)
    usages = cloud.placement_usages(minicloud)
    print(f"\n{BURST} boots through 3 APIs and 3 schedulers: {dict(statuses)} in {took:.1f}s; "
          f"VCPU used {usages}")  # fmt: skip
    assert {s.id for s in listed} == set(ids)
    assert all(used <= capacity for used, capacity in usages.values()), usages
    assert statuses["ACTIVE"] == sum(used for used, _ in usages.values()) == 3 * CAPACITY
    assert statuses["ERROR"] == BURST - 3 * CAPACITY
    cloud.delete_servers(minicloud)


def test_a_scheduler_killed_mid_burst(minicloud: Lab) -> None:
    """nova-scheduler on node2 SIGKILLed while the boots arrive: Pacemaker restarts it,
    every boot settles (a request the dead scheduler had taken fails after nova's RPC
    timeout), no provider is over-allocated and every ACTIVE server holds its claim."""
    before = fail_count(minicloud, "nova-scheduler", "node2")

    def kill() -> None:  # the master and its workers (oslo retitles them: by command line)
        for master in masters(minicloud, "node2", "nova-scheduler"):
            for pid in proc.tree(master):
                os.kill(pid, signal.SIGKILL)

    killer = threading.Timer(2.0, kill)
    began = time.monotonic()
    killer.start()
    ids = burst(minicloud, "killed")
    killer.join()

    def settled() -> bool:
        return {status for _, status in cloud.placed(minicloud, ids).values()} <= {
            "ACTIVE", "ERROR"}  # fmt: skip

    wait_for("every server ACTIVE or ERROR", settled, 300)
    statuses = Counter(status for _, status in cloud.placed(minicloud, ids).values())
    usages = cloud.placement_usages(minicloud)
    print(f"\n{BURST} boots, a scheduler killed 2 s in: {dict(statuses)} in "
          f"{time.monotonic() - began:.1f}s; VCPU used {usages}")  # fmt: skip
    assert all(used <= capacity for used, capacity in usages.values()), usages
    assert statuses["ACTIVE"] == sum(used for used, _ in usages.values())
    assert statuses["ACTIVE"] + statuses["ERROR"] == BURST
    assert fail_count(minicloud, "nova-scheduler", "node2") > before
    wait_for("the scheduler clone on every node again",
             lambda: cloud.running(minicloud)["nova-scheduler-clone"] == NODES, 120)  # fmt: skip
    cloud.delete_servers(minicloud)


def test_a_killed_nova_compute_is_restarted_not_evacuated(minicloud: Lab) -> None:
    """Service down, host up: Pacemaker restarts nova-compute; it is never forced down,
    and its servers stay."""
    ids = boot_on(minicloud, "node2", "stay", 2)
    wait_for("two servers ACTIVE on node2",
             lambda: set(cloud.placed(minicloud, ids).values()) == {("node2", "ACTIVE")}, 120)  # fmt: skip
    before = fail_count(minicloud, "nova-compute", "node2")
    minicloud.kill("node2", "nova-compute")
    seen: set[str] = set()

    def recovered() -> bool:
        seen.add(cloud.compute_states(minicloud)["node2"])
        return fail_count(minicloud, "nova-compute", "node2") > before and \
            cloud.running(minicloud, compute=True)["nova-compute-clone"] == NODES  # fmt: skip

    wait_for("nova-compute on node2 failed and restarted by Pacemaker", recovered, 120)
    wait_for(
        "node2's nova-compute up", lambda: cloud.compute_states(minicloud)["node2"] == "up", 120
    )
    assert "forced" not in seen | {cloud.compute_states(minicloud)["node2"]}
    assert set(cloud.placed(minicloud, ids).values()) == {("node2", "ACTIVE")}
    cloud.delete_servers(minicloud)


def test_a_power_cut_compute_is_fenced_forced_down_and_evacuated(minicloud: Lab) -> None:
    ids = boot_on(minicloud, "node3", "evac", 3)
    wait_for("three servers ACTIVE on node3",
             lambda: set(cloud.placed(minicloud, ids).values()) == {("node3", "ACTIVE")}, 120)  # fmt: skip
    cut = time.monotonic()
    minicloud.cut("node3")
    forced = wait_for("node3's nova-compute forced down (after its fencing)",
                      lambda: cloud.compute_states(minicloud)["node3"] == "forced", 120)  # fmt: skip
    elsewhere = {("node1", "ACTIVE"), ("node2", "ACTIVE")}
    active = wait_for("the three servers ACTIVE on node1 or node2",
                      lambda: set(cloud.placed(minicloud, ids).values()) <= elsewhere, 180)  # fmt: skip
    print(f"\npower cut → forced down {forced:.1f}s → servers ACTIVE elsewhere "
          f"{time.monotonic() - cut:.1f}s after the cut ({active:.1f}s after force-down)")  # fmt: skip
    fenced = minicloud.run("node1", ["stonith_admin", "--history", "node3"], check=False).stdout
    assert "node3" in fenced and "successful" in fenced.lower(), fenced
    minicloud.restore()
    wait_for("node3's nova-compute up again, no longer forced down",
             lambda: cloud.compute_states(minicloud).get("node3") == "up", 240)  # fmt: skip
    assert set(cloud.placed(minicloud, ids).values()) <= elsewhere
    cloud.delete_servers(minicloud)
