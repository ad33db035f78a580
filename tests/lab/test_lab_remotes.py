"""Pacemaker Remote nodes in the lab (`hakit lab up --remotes N`): 20 remotes that run
pacemaker-remoted alone (own network, mount and UTS namespaces) join the running 3-node
lab; nothing of the cluster nodes' is probed or run on them (discovery scoped); a power
cut of one is fenced by the lab's fence agent, classified HOST_DOWN_FENCED by hakit's
health model, and the remote comes back; `--remotes 0` takes them all away again.

Runs after test_lab.py and before the cloud's modules (test_minicloud, test_openstack):
changing the number of remotes applies what was applied last again (cib.reapply).
The mini cloud's computes on remotes are in test_minicloud.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hakit.lab import cib
from hakit.lab.health import HEALTH
from hakit.lab.lab import Lab
from hakit.lab.namespaces import netns_id
from hakit.ocf import cluster
from tests.lab.test_lab import wait
from tests.lab.test_openstack import fenced

REMOTES = 20


@pytest.fixture(scope="module")
def remotes(lab: Lab) -> Iterator[Lab]:
    began = time.monotonic()
    lab.up(remotes=REMOTES)
    print(f"\n{REMOTES} remotes up and online in {time.monotonic() - began:.1f}s")
    try:
        yield lab
    finally:
        lab.restore()
        lab.wait_until_online(timeout=180)
        lab.up(remotes=0)


def online(lab: Lab) -> set[str]:
    status = lab.cluster_status("node1")
    return {n.name for n in status.nodes if n.online} if status else set()


def health(lab: Lab) -> dict[str, str]:
    """Each node's class in hakit's health model, asked inside node1."""
    return {name: node["health"] for name, node in health_details(lab).items()}


def health_details(lab: Lab) -> dict[str, dict[str, Any]]:
    done = lab.run("node1", [HEALTH, "--json"], timeout=30, check=False)
    if done.returncode != 0:
        return {}
    return {n["node"]: n for n in json.loads(done.stdout)["nodes"]}


def classes_until(lab: Lab, node: str, done: Callable[[list[str]], bool]) -> list[str]:
    """`node`'s health class, asked again and again until `done(classes so far)`."""
    seen: list[str] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (seen and done(seen)):
        seen.append(health(lab).get(node, "?"))
        time.sleep(0.2)
    print(f"\n{node}: {seen}")
    return seen


def test_remotes_are_online_and_run_nothing_of_the_cluster_nodes(remotes: Lab) -> None:
    assert online(remotes) == set(remotes.nodes) | set(remotes.remotes)
    status = remotes.cluster_status("node1")
    assert status is not None
    connections = {r.id: r.nodes for r in status.resources if r.agent == "ocf:pacemaker:remote"}
    assert set(connections) == set(remotes.remotes)
    assert all(len(on) == 1 and on[0] in remotes.nodes for on in connections.values())
    on_remotes = [r for r in status.resources if set(r.nodes) & set(remotes.remotes)]
    assert not on_remotes, on_remotes
    probed = remotes.run(
        "node1",
        ["cibadmin", "--query", "--xpath", "//node_state[@remote_node='true']//lrm_rsc_op"],
        check=False,
    )
    assert "lrm_rsc_op" not in probed.stdout  # scoped discovery: nothing probed on remotes
    remote = remotes.remotes[0]
    assert remotes.run(remote, ["hostname"]).stdout.strip() == remote
    assert remotes.run(remote, ["crm_node", "-n"]).stdout.strip() == remote
    done = subprocess.run(
        [sys.executable, "-m", "hakit.tools.cli", "lab", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    listed = {n["name"]: n for n in json.loads(done.stdout)["nodes"]}
    assert listed[remote]["remote"] is True and listed[remote]["online"] is True
    assert listed[remote]["address"] == "10.77.0.101"
    assert health(remotes)[remote] == "OK"


def test_a_remote_power_cut_is_fenced_and_the_remote_comes_back(remotes: Lab) -> None:
    """Health asked all along: the loss is never OK again until the fence, then
    HOST_DOWN_FENCED, then OK once the fence agent's reboot has brought the remote back."""
    victim = remotes.remotes[6]
    assert not fenced(remotes, victim)
    remotes.cut(victim)
    assert not remotes.powered(victim)
    seen = classes_until(remotes, victim, lambda s: "HOST_DOWN_FENCED" in s and s[-1] == "OK")
    assert fenced(remotes, victim)
    assert "HOST_DOWN_FENCED" in seen and seen[-1] == "OK", seen
    lost = next(i for i, found in enumerate(seen) if found != "OK")
    assert "OK" not in seen[lost : seen.index("HOST_DOWN_FENCED")], seen
    assert remotes.powered(victim)
    wait(lambda: online(remotes) == set(remotes.nodes) | set(remotes.remotes), 60, "all online")


#: A service on every remote (`remotes.resources`): what nova-compute is on a compute.
ON_REMOTES = """
remotes:
  resources: [compute-agent]
resources:
  - name: compute-agent
    agent: ocf:hakit:service
    params: {binary: /bin/sleep, arguments: "100000"}
    ops: [{name: monitor, interval: 2s, timeout: 20s}]
    clone: {meta: {interleave: true}}
"""


def test_a_service_failed_on_a_remote_is_service_down_with_the_host_up(remotes: Lab) -> None:
    cib.apply_layers(remotes, [("<on remotes>", ON_REMOTES)])
    try:

        def everywhere() -> bool:
            status = remotes.cluster_status("node1")
            return status is not None and status.running_on("compute-agent") == sorted(
                remotes.remotes
            )

        wait(everywhere, 120, "compute-agent on every remote, on no cluster node")
        logs = [
            remotes.node_dir(r) / "var-log-hakit" / "compute-agent.log" for r in remotes.remotes
        ]
        assert all(log.exists() for log in logs)  # each remote's own /var/log/hakit
        victim = remotes.remotes[2]
        remotes.kill(victim, "sleep")
        seen = classes_until(
            remotes, victim, lambda s: "SERVICE_DOWN_HOST_UP" in s and s[-1] == "OK"
        )
        assert "SERVICE_DOWN_HOST_UP" in seen and seen[-1] == "OK", seen
        assert not [c for c in seen if c.startswith("HOST_")], seen
        assert not fenced(remotes, victim)
    finally:
        cib.apply_layers(remotes, [])


def test_a_killed_pacemaker_remoted_is_fenced_like_a_lost_host(remotes: Lab) -> None:
    """Without its connection the cluster cannot know what runs on the remote, so it
    fences it (Pacemaker's rule); hakit's reasons name the lost connection. Runs after
    the power cut test: the second remote fenced in the module."""
    victim = remotes.remotes[7]
    remotes.kill(victim, "pacemaker-remoted")
    lost: list[str] = []

    def fenced_then_ok(seen: list[str]) -> bool:
        if not lost and seen[-1] != "OK":
            lost.extend(health_details(remotes).get(victim, {}).get("reasons", []))
        return "HOST_DOWN_FENCED" in seen and seen[-1] == "OK"

    seen = classes_until(remotes, victim, fenced_then_ok)
    assert fenced(remotes, victim) and "HOST_DOWN_FENCED" in seen and seen[-1] == "OK", seen
    assert any("Lost connection to remote executor" in reason for reason in lost), lost
    # every fence of the module in the one history query the health model makes
    # (stonith_admin without --verbose lists a single successful fence in all)
    fenced_here = {n for n in remotes.remotes if fenced(remotes, n)}
    with remotes.on("node1"):
        listed = {event.target for event in cluster.fencing_history()}
    assert len(fenced_here) >= 2 and fenced_here <= listed, (fenced_here, listed)
    wait(lambda: online(remotes) == set(remotes.nodes) | set(remotes.remotes), 60, "all online")


def test_fewer_remotes_remove_the_rest(remotes: Lab) -> None:
    remotes.up(remotes=REMOTES - 2)
    gone = [f"remote{REMOTES - 1}", f"remote{REMOTES}"]
    assert all(netns_id(remotes.netns(n)) is None for n in gone)

    def forgotten() -> bool:
        status = remotes.cluster_status("node1")
        return status is not None and not {n.name for n in status.nodes} & set(gone)

    wait(forgotten, 30, f"{gone} gone from the cluster's nodes")
    assert online(remotes) == set(remotes.nodes) | set(remotes.remotes)
    remotes.up(remotes=REMOTES)
    assert online(remotes) == set(remotes.nodes) | set(remotes.remotes)
