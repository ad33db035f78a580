"""Real cinder and nova services as Pacemaker clones on the lab's three nodes, through
hakit's agents, against the infra node's MariaDB and RabbitMQ. Every fault is real: a
SIGKILL, a SIGSTOP, a broker stop_app, a power cut with real fencing; and the drill's
OpenStack outage scenarios (broker, database) under them. The cloud is tests/lab's
shared one (conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hakit.lab import cloud, cloud_access, cloud_config
from hakit.lab.drill.environment import LabEnvironment
from hakit.lab.drill.runner import Options
from hakit.lab.lab import Lab, pids_in_netns
from hakit.ocf import proc
from tests.lab.test_drill import assert_passed, drill

NODES = ["node1", "node2", "node3"]


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> float:
    """Seconds until `check()` holds; fails the test with `what` after `timeout`."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            pytest.fail(f"not within {timeout:g}s: {what}")
        time.sleep(0.5)
    return time.monotonic() - began


def titled(lab: Lab, node: str, prefix: str) -> list[int]:
    """PIDs on `node` whose command line starts with `prefix` (oslo sets process titles)."""
    found = []
    for pid in pids_in_netns(lab.netns(node)):
        if _cmdline(pid).startswith(prefix):
            found.append(pid)
    return found


def masters(lab: Lab, node: str, program: str) -> list[int]:
    """The main processes of `program` on `node`: those whose parent is not one of them."""
    pids = [p for p in pids_in_netns(lab.netns(node)) if f"/bin/{program}" in _cmdline(p)]
    return [p for p in pids if (stat := proc.stat(p)) is not None and stat.ppid not in pids]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def fail_count(lab: Lab, resource: str, node: str) -> int:
    done = lab.run(
        "node1",
        ["crm_failcount", "--query", "--quiet", "--resource", resource, "--node", node],
        check=False,
    )
    text = done.stdout.strip()
    return 1_000_000 if text == "INFINITY" else int(text or 0)


def everywhere(lab: Lab) -> bool:
    placed = cloud.running(lab)
    return bool(placed) and all(nodes == NODES for nodes in placed.values())


def test_every_service_runs_on_every_node(openstack: Lab) -> None:
    assert everywhere(openstack), cloud.running(openstack)
    time.sleep(16)  # two depth-10 monitors
    counts = {
        (c, n): fail_count(openstack, c.removesuffix("-clone"), n)
        for c in cloud.CLONES
        for n in NODES
    }
    assert set(counts.values()) == {0}, counts


def test_a_killed_master_is_recovered(openstack: Lab) -> None:
    (master,) = titled(openstack, "node2", "nova-scheduler: master")
    os.kill(master, signal.SIGKILL)
    wait_for(
        "nova-scheduler failure recorded on node2",
        lambda: fail_count(openstack, "nova-scheduler", "node2") >= 1,
        60,
    )
    wait_for(
        "nova-scheduler back on node2",
        lambda: bool(titled(openstack, "node2", "nova-scheduler: master"))
        and everywhere(openstack),
        120,
    )


def test_a_killed_worker_is_not_a_failure(openstack: Lab) -> None:
    before = fail_count(openstack, "nova-scheduler", "node1")
    (worker,) = titled(openstack, "node1", "nova-scheduler: ServiceWrapper worker")
    os.kill(worker, signal.SIGKILL)
    wait_for(
        "the master respawns its worker",
        lambda: bool(
            [
                p
                for p in titled(openstack, "node1", "nova-scheduler: ServiceWrapper worker")
                if p != worker
            ]
        ),
        60,
    )
    time.sleep(16)  # two depth-10 monitors after the respawn
    assert fail_count(openstack, "nova-scheduler", "node1") == before


def test_a_hung_service_is_caught_by_its_heartbeat(openstack: Lab) -> None:
    """SIGSTOP on the whole cinder-volume tree of node3: the process is there, its TCP
    connections stay up; only the stale services-table heartbeat tells."""
    tree = [p for m in masters(openstack, "node3", "cinder-volume") for p in proc.tree(m)]
    assert tree
    before = fail_count(openstack, "cinder-volume", "node3")
    for pid in tree:
        os.kill(pid, signal.SIGSTOP)
    try:
        seconds = wait_for(
            "the hang detected (cinder-volume failure on node3)",
            lambda: fail_count(openstack, "cinder-volume", "node3") > before,
            90,
        )
    finally:
        for pid in tree:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    assert seconds >= cloud_config.SERVICE_DOWN_TIME - 2  # the heartbeat had to go stale first
    wait_for("cinder-volume recovered on node3", lambda: everywhere(openstack), 120)


def test_a_broker_outage_degrades_without_a_restart_storm(openstack: Lab) -> None:
    counts = {
        (c, n): fail_count(openstack, c.removesuffix("-clone"), n)
        for c in cloud.CLONES
        for n in NODES
    }
    openstack.rabbitmqctl("stop_app")
    try:
        wait_for(
            "nova-scheduler reports the broker down on every node",
            lambda: all(
                attribute(openstack, n, "hakit-nova-scheduler-broker") == "down" for n in NODES
            ),
            30,
        )
        time.sleep(max(0.0, 20 - 8))
    finally:
        openstack.rabbitmqctl("start_app")
    wait_for(
        "the broker healthy again everywhere",
        lambda: all(attribute(openstack, n, "hakit-nova-scheduler-broker") == "ok" for n in NODES),
        90,
    )
    # one CI run read crm_mon once here and saw a clone short of a node with unchanged
    # fail counts (cause not seen): wait for the view, then read the counts, so that a
    # restart in between still fails the test
    wait_for("every service running everywhere", lambda: everywhere(openstack), 30)
    after = {
        (c, n): fail_count(openstack, c.removesuffix("-clone"), n)
        for c in cloud.CLONES
        for n in NODES
    }
    assert after == counts


def attribute(lab: Lab, node: str, name: str) -> str | None:
    done = lab.run(
        "node1", ["attrd_updater", "--query", "--name", name, "--node", node], check=False
    )
    for word in done.stdout.split():
        if word.startswith("value="):
            return word.split("=", 1)[1].strip('"')
    return None


def cinder_api(lab: Lab, method: str, path: str, body: dict[str, object] | None = None) -> object:
    """cinder-api on node1 with a Keystone token of hakit's user, from inside node1."""
    script = (
        "import json, sys, urllib.request\n"
        "method, path = sys.argv[1], sys.argv[2]\n"
        "token, body = sys.stdin.readline().strip(), sys.stdin.read() or None\n"
        "request = urllib.request.Request('http://127.0.0.1:8776/v3' + path, method=method,\n"
        "    data=body.encode() if body else None, headers={'X-Auth-Token': token,\n"
        "    'Content-Type': 'application/json', 'OpenStack-API-Version': 'volume 3.24'})\n"
        "print(urllib.request.urlopen(request, timeout=20).read().decode() or 'null')\n"
    )
    done = lab.run(
        "node1",
        [sys.executable, "-I", "-c", script, method, path],
        stdin=cloud_access.token(lab) + "\n" + (json.dumps(body) if body else ""),
        timeout=60,
    )
    return json.loads(done.stdout)


def volume_status(lab: Lab, volume_id: str) -> str:
    answer = cinder_api(lab, "GET", f"/volumes/{volume_id}")
    assert isinstance(answer, dict)
    return str(answer["volume"]["status"])


def cleanup_logged(lab: Lab) -> list[str]:
    lines = []
    for node in ("node1", "node2"):
        log = lab.run(node, ["cat", "/var/log/pacemaker/pacemaker.log"], check=False).stdout
        lines += [
            line for line in log.splitlines() if "workers/cleanup for lost host node3" in line
        ]
    return lines


def test_power_cut_fences_then_cleans_up_the_lost_cinder_host(openstack: Lab) -> None:
    openstack.cut("node3")
    wait_for("node3 fenced", lambda: fenced(openstack, "node3"), 90)
    wait_for(
        "a survivor asked cinder to clean node3's volumes",
        lambda: bool(cleanup_logged(openstack)),
        90,
    )
    created = cinder_api(openstack, "POST", "/volumes", {"volume": {"size": 1, "name": "after"}})
    assert isinstance(created, dict)
    volume_id = str(created["volume"]["id"])
    wait_for(
        "a volume created after the cut is available",
        lambda: volume_status(openstack, volume_id) == "available",
        90,
    )
    cinder_api(openstack, "DELETE", f"/volumes/{volume_id}")
    openstack.power_on("node3")
    openstack.wait_until_online(timeout=180)
    wait_for("node3 runs its instances again", lambda: everywhere(openstack), 240)


def fenced(lab: Lab, node: str) -> bool:
    """A successful fencing of `node` in the cluster's history (asked inside node1)."""
    done = lab.run("node1", ["stonith_admin", "--history", node, "--output-as=xml"], check=False)
    return 'status="success"' in done.stdout or 'state="success"' in done.stdout


@pytest.mark.parametrize("name", ["broker-outage", "database-outage"])
def test_outage_under_the_openstack_services(openstack: Lab, name: str) -> None:
    """The clients notice the outage (a cinder volume round trip fails) and get service
    back once it ends, and keep it for the aftermath; no OpenStack resource fails or
    moves meanwhile."""
    result = drill(LabEnvironment(openstack), name)
    assert_passed(result)
    assert result["invariants"]["no-failure-during-outage"] == "passed"
    cinder = next(p for p in result["probes"] if p["name"].startswith("cinder volume"))
    assert cinder["failures"] > 0 and cinder["downtime_s"] > 10, cinder  # the fault was felt
    healed = next(e["at"] for e in result["timeline"] if e["kind"] == "healed")
    back = [e for e in result["timeline"] if e["kind"] == "available" and e["at"] > healed]
    assert back, "no probe answered again after the fault was removed"
    watched = result["ended"] - max(e["at"] for e in back)
    assert watched >= Options().aftermath, f"judged {watched:.0f}s after service was back"
