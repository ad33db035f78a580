"""ocf:hakit:service under a real Pacemaker: a primitive and a clone start, pass their
monitors, lose their daemon to SIGKILL and are recovered by the cluster."""

from __future__ import annotations

import functools
import os
import signal
import time

import pytest

from hakit.ocf import proc
from tests.conftest import SYSTEM_PYTHON
from tests.support.single_node import NODE_NAME, SingleNodeCluster

pytestmark = pytest.mark.cluster

WEB, WORKER = "hakit-web", "hakit-worker"
PORT = 18081


def primitive(rsc: str, params: dict[str, str], monitors: str) -> str:
    nvpairs = "".join(
        f'<nvpair id="{rsc}-instance_attributes-{k}" name="{k}" value="{v}"/>'
        for k, v in params.items()
    )
    return (
        f'<primitive id="{rsc}" class="ocf" provider="hakit" type="service">'
        f'<instance_attributes id="{rsc}-instance_attributes">{nvpairs}</instance_attributes>'
        f'<operations><op id="{rsc}-start-interval-0s" name="start" interval="0s" timeout="30s"/>'
        f'<op id="{rsc}-stop-interval-0s" name="stop" interval="0s" timeout="30s"/>'
        f"{monitors}</operations></primitive>"
    )


def monitor_ops(rsc: str) -> str:
    return (
        f'<op id="{rsc}-monitor-interval-2s" name="monitor" interval="2s" timeout="20s"/>'
        f'<op id="{rsc}-monitor-interval-3s" name="monitor" interval="3s" timeout="20s">'
        f'<instance_attributes id="{rsc}-monitor-interval-3s-instance_attributes">'
        f'<nvpair id="{rsc}-monitor-interval-3s-level" name="OCF_CHECK_LEVEL" value="10"/>'
        "</instance_attributes></op>"
    )


@pytest.fixture(scope="module")
def resources(pcmk_cluster: SingleNodeCluster) -> SingleNodeCluster:
    web = primitive(
        WEB,
        {
            "binary": SYSTEM_PYTHON,
            "ready_port": str(PORT),
            "arguments": f"-m http.server --bind 127.0.0.1 {PORT}",
        },
        monitor_ops(WEB),
    )
    worker = primitive(WORKER, {"binary": "sleep", "arguments": "100000"}, monitor_ops(WORKER))
    clone = f'<clone id="{WORKER}-clone">{worker}</clone>'
    for xml in (web, clone):
        pcmk_cluster.run(["cibadmin", "--create", "--scope", "resources", "--xml-text", xml])
    for rsc in (WEB, f"{WORKER}-clone"):
        pcmk_cluster.wait_for(
            functools.partial(_started, pcmk_cluster, rsc), timeout=60, description=f"{rsc} started"
        )
    return pcmk_cluster


def _started(cluster: SingleNodeCluster, rsc: str) -> bool:
    state = cluster.resource_state(rsc)
    return bool(state["active"]) and state["nodes"] == [NODE_NAME] and not state["failed"]


def _daemon_pid(cluster: SingleNodeCluster, rsc: str) -> int:
    """The PID the agent tracks, from its state file in the node's private /run."""
    text = cluster.run(["cat", f"/run/hakit/service/{rsc}.state"]).stdout
    return int(text.split()[0].removeprefix("pid="))


def _monitors_passed(cluster: SingleNodeCluster, rsc: str) -> bool:
    """Both monitors (depth 0 every 2 s, depth 10 every 3 s) have run and returned 0."""
    status = cluster.status_xml()
    seen = set()
    for op in status.iterfind(f"node_history/node/resource_history[@id='{rsc}']/operation_history"):
        if op.get("task") == "monitor" and op.get("rc") == "0":
            seen.add(op.get("interval"))
    return seen >= {"2000ms", "3000ms"}


@pytest.mark.parametrize("rsc", [WEB, WORKER])
def test_started_and_passing_both_monitor_depths(resources: SingleNodeCluster, rsc: str) -> None:
    resources.wait_for(
        lambda: _monitors_passed(resources, rsc), timeout=30, description=f"{rsc} monitors"
    )
    pid = _daemon_pid(resources, rsc)
    if rsc == WEB:
        assert proc.listening_on(pid, PORT)  # ready, inside the node's network namespace
    time.sleep(4)  # more monitor rounds: nothing restarts a healthy service
    assert _daemon_pid(resources, rsc) == pid
    assert resources.resource_state(rsc)["fail_count"] == 0


@pytest.mark.parametrize("rsc", [WEB, WORKER])
def test_killed_daemon_is_recovered_by_pacemaker(resources: SingleNodeCluster, rsc: str) -> None:
    before = _daemon_pid(resources, rsc)
    os.kill(before, signal.SIGKILL)
    resources.wait_for(
        lambda: resources.resource_state(rsc)["fail_count"] >= 1,
        timeout=30,
        description=f"{rsc} failure noticed",
    )
    resources.wait_for(lambda: _started(resources, rsc), timeout=60, description=f"{rsc} recovered")
    after = _daemon_pid(resources, rsc)
    assert after != before and proc.is_alive(after)
    if rsc == WEB:
        assert proc.listening_on(after, PORT)
    failures = resources.status_xml().findall("failures/failure")
    reasons = [f.get("exitreason", "") for f in failures if f.get("op_key", "").startswith(rsc)]
    assert any(f"daemon pid {before} is gone" in reason for reason in reasons), reasons
