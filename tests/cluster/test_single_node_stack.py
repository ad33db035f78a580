"""The single-node test cluster itself: it starts, runs a Dummy, and leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.single_node import NODE_NAME, SingleNodeCluster

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(os.geteuid() != 0, reason="the test cluster needs root"),
]

DUMMY = "hakit-stack-dummy"
DUMMY_XML = (
    f'<primitive id="{DUMMY}" class="ocf" provider="heartbeat" type="Dummy">'
    f'<operations><op id="{DUMMY}-monitor-5s" name="monitor" interval="5s" timeout="20s"/>'
    "</operations></primitive>"
)


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in ticks): tells a reused PID apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _open_namespace_fds() -> list[str]:
    fd_dir = Path("/proc/self/fd")
    links = []
    for fd in fd_dir.iterdir():
        try:
            links.append(os.readlink(fd))
        except OSError:
            continue
    return [link for link in links if link.startswith(("net:[", "mnt:[", "uts:["))]


def _monitor_ran(cluster: SingleNodeCluster) -> ET.Element | None:
    """The crm_mon status once the Dummy is started and its 5 s monitor has succeeded."""
    status = cluster.status_xml()
    state = cluster.resource_state(DUMMY, status)
    if not (state["active"] and state["role"] == "Started"):
        return None
    for history in status.iterfind(f"node_history/node/resource_history[@id='{DUMMY}']"):
        for op in history.iterfind("operation_history"):
            if op.get("task") == "monitor" and op.get("interval") == "5000ms":
                return status if op.get("rc") == "0" else None
    return None


def test_single_node_cluster_runs_a_dummy_and_leaves_nothing_behind(tmp_path: Path) -> None:
    workdir = tmp_path / "cluster"
    corosync_conf = _sha256("/etc/corosync/corosync.conf")
    host_hostname = os.uname().nodename
    host_cib = sorted(os.listdir("/var/lib/pacemaker/cib"))
    cluster = SingleNodeCluster(workdir)
    node_processes: dict[int, str | None] = {}
    try:
        cluster.start()
        assert cluster.running
        assert cluster.timings["ready"] < 60

        # The node is isolated: its own host name, only a loopback interface.
        assert cluster.run(["hostname"]).stdout.strip() == NODE_NAME
        assert os.uname().nodename == host_hostname
        links = cluster.run(["ip", "-o", "link", "show"]).stdout.splitlines()
        assert [line.split(":")[1].strip() for line in links] == ["lo"]
        assert cluster.run(["crm_node", "-n"]).stdout.strip() == NODE_NAME

        status = cluster.status_xml()
        assert status.find("summary/current_dc[@present='true']") is not None
        props = status.find("summary/cluster_options")
        assert props is not None and props.get("stonith-enabled") == "false"

        cluster.run(["cibadmin", "--create", "-o", "resources", "-X", DUMMY_XML])
        ran = cluster.wait_for(
            lambda: _monitor_ran(cluster),
            timeout=60,
            description=f"{DUMMY} started with a successful 5s monitor",
        )
        assert ran is not None
        status = ran

        # What crm_mon --output-as=xml says, raw and through resource_state().
        (rsc,) = status.iterfind(f"resources/resource[@id='{DUMMY}']")
        assert rsc.get("resource_agent") == "ocf:heartbeat:Dummy"
        assert rsc.get("role") == "Started"
        assert rsc.get("active") == "true"
        assert rsc.get("failed") == "false"
        assert [n.get("name") for n in rsc.iterfind("node")] == [NODE_NAME]
        state = cluster.resource_state(DUMMY, status)
        assert state["nodes"] == [NODE_NAME]
        assert state["agent"] == "ocf:heartbeat:Dummy"
        assert not state["failed"]
        assert state["fail_count"] == 0

        # Dummy's state file is in the node's private /run, not in the host's.
        state_file = f"/run/resource-agents/Dummy-{DUMMY}.state"
        assert cluster.run(["test", "-e", state_file], check=False).returncode == 0
        assert not Path(state_file).exists()

        node_processes = {pid: _start_time(pid) for pid in cluster.node_pids()}
        assert len(node_processes) >= 8  # init, corosync, pacemakerd and its 6 daemons
        namespaces = cluster.namespaces
        assert namespaces is not None
    finally:
        cluster.stop()

    # Teardown: every process of the node is gone (a PID that exists again must be a
    # new process, i.e. have another start time) ...
    survivors = [pid for pid, start in node_processes.items() if _start_time(pid) == start]
    assert survivors == []
    assert not cluster.running
    assert cluster.namespaces is None
    assert cluster.node_pids() == []
    # ... nothing keeps the namespaces alive, no named netns was made ...
    # (other clusters of this test session may hold their own namespaces open)
    assert set(_open_namespace_fds()).isdisjoint(namespaces)
    if Path("/run/netns").is_dir():
        assert not any("hakit" in name for name in os.listdir("/run/netns"))
    # ... no mount of the node is visible on the host ...
    mountinfo = Path("/proc/self/mountinfo").read_text()
    assert str(workdir) not in mountinfo
    assert "hakit-run" not in mountinfo
    assert "hakit-shm" not in mountinfo
    # ... the node's libqb IPC buffers were in its own /dev/shm ...
    shm = os.listdir("/dev/shm")
    assert not [f for f in shm for pid in node_processes if f"-{pid}-" in f]
    # ... and the host's cluster files were not touched.
    assert _sha256("/etc/corosync/corosync.conf") == corosync_conf
    assert sorted(os.listdir("/var/lib/pacemaker/cib")) == host_cib
    # The node's own state stays in the work directory for post-mortems.
    assert (workdir / "state" / "var-log-pacemaker" / "pacemaker.log").stat().st_size > 0
    assert cluster.timings["stop"] < 60
