"""playbooks/site.yml on a bare lab (`hakit lab up --bare`: nodes with sshd and no
cluster), run by ansible-playbook in a controller namespace over SSH: converge from bare
nodes, a second run with changed=0, check mode on a converged and on a hand-drifted
cluster (exactly the drifted element, the CIB epoch unchanged), a fourth node joining
with no existing resource restarted, the testinfra suite (playbooks/verify) passing, a
fenced node rejoining by itself, and node removal; then Pacemaker Remote nodes: two
added (site.yml prepares them, the topology's remotes: connects them), a fenced remote
rejoining by itself, and a remote removed (remove_node.yml).

The tests run in order on one lab (each builds on the one before); the module takes the
lab up before the session's 3-node lab (tests/lab) is first needed, and down after."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from hakit.lab.deploy import (
    PLAYBOOKS,
    Deployment,
    epoch,
    last_operations,
    online,
    wheelhouse,
)
from hakit.lab.lab import Lab
from hakit.ocf import cluster
from tests.unit.test_packaging import build_wheel

FIRST = ["node1", "node2", "node3"]
REMOTES = ("remote1", "remote2")


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"not within {timeout:g}s: {what}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    lab = Lab()
    if lab.state_exists() and any(lab.powered(node) for node in lab.nodes):
        pytest.fail("a lab is running: take it down first (hakit lab down)")
    workdir = tmp_path_factory.mktemp("ansible")
    wheel = build_wheel(workdir)
    wheels = wheelhouse(wheel, workdir / "wheelhouse")
    lab.up(nodes=4, profile="fast", bare=True, remotes=len(REMOTES))
    try:
        setup = Deployment(lab, workdir, wheel, wheels)
        setup.write(FIRST)
        yield setup
    finally:
        lab.down(purge=True)


def test_converge_from_bare_nodes(deployment: Deployment) -> None:
    run = deployment.playbook("site.yml")
    assert run.returncode == 0, run.tail()
    assert all(run.recap[node]["changed"] > 0 for node in FIRST), run.recap
    assert online(deployment.lab, FIRST)

    def running() -> bool:
        status = deployment.lab.cluster_status("node1")
        return status is not None and all(
            status.running_on(name) for name in ("web", "worker", "lab-fence")
        )

    wait_for(running, "web, worker and lab-fence running", timeout=60)


def test_a_second_run_changes_nothing(deployment: Deployment) -> None:
    run = deployment.playbook("site.yml")
    assert run.returncode == 0, run.tail()
    assert run.changed_tasks() == [], run.tail()
    assert all(counts["changed"] == 0 for counts in run.recap.values()), run.recap


def test_check_mode_on_a_converged_cluster_reports_nothing(deployment: Deployment) -> None:
    before = epoch(deployment.cib())
    run = deployment.playbook("site.yml", "--check", "--diff")
    assert run.returncode == 0, run.tail()
    assert run.changed_tasks() == [], run.tail()
    assert epoch(deployment.cib()) == before


def test_check_mode_reports_exactly_the_drifted_element(deployment: Deployment) -> None:
    lab = deployment.lab
    set_meta = ["crm_resource", "--resource", "web", "--meta", "--set-parameter"]
    lab.run("node2", [*set_meta, "resource-stickiness", "--parameter-value", "7"])
    drifted = epoch(deployment.cib())
    run = deployment.playbook("site.yml", "--check", "--diff")
    assert run.returncode == 0, run.tail()
    [task] = run.changed_tasks()
    shown = run.task_output(task)
    assert "web" in shown and "resource-stickiness" in shown, shown
    assert "worker" not in shown and "lab-fence" not in shown, shown
    assert epoch(deployment.cib()) == drifted, "check mode wrote to the CIB"
    fixed = deployment.playbook("site.yml")
    assert fixed.returncode == 0 and fixed.changed_tasks() == [task], fixed.tail()
    query = ["crm_resource", "--resource", "web", "--meta", "--get-parameter"]
    value = lab.run("node1", [*query, "resource-stickiness"]).stdout.split()
    assert value[-1] == "100"


def test_a_fourth_node_joins_and_nothing_restarts(deployment: Deployment) -> None:
    before = last_operations(deployment.cib())
    assert before, "no operation history"
    deployment.write([*FIRST, "node4"])
    run = deployment.playbook("site.yml")
    assert run.returncode == 0, run.tail()
    assert run.recap["node4"]["changed"] > 0
    wait_for(lambda: online(deployment.lab, deployment.members), "node4 online")
    after = last_operations(deployment.cib())
    restarted = {
        key: (before[key], after.get(key)) for key in before if after.get(key) != before[key]
    }
    assert restarted == {}, "adding a node restarted resources"
    again = deployment.playbook("site.yml")
    assert again.returncode == 0 and again.changed_tasks() == [], again.tail()


def test_the_testinfra_suite_passes(deployment: Deployment) -> None:
    hosts = ",".join(f"ssh://{node}" for node in deployment.members)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    argv += [str(PLAYBOOKS / "verify"), f"--hosts={hosts}"]
    argv += [f"--ssh-config={deployment.lab.dir / 'ansible' / 'ssh_config'}"]
    argv += [f"--topology={deployment.topology}", "--rootdir", str(PLAYBOOKS / "verify")]
    done = deployment.lab.controller_run(argv, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert re.search(r"(\d+) passed", done.stdout)


def test_a_fenced_node_comes_back_by_itself(deployment: Deployment) -> None:
    """The enabled cluster starts at boot, as systemd's enable does on a real host."""
    lab = deployment.lab
    booted = lab.init_pid("node3")
    lab.run("node1", ["stonith_admin", "--reboot", "node3", "--timeout", "60"], timeout=90)
    wait_for(lambda: lab.init_pid("node3") not in (None, booted), "node3 power-cycled", 30)
    wait_for(lambda: online(lab, deployment.members), "node3 back online", timeout=180)
    with lab.on("node1"):
        history = cluster.fencing_history("node3")
    assert any(event.action == "reboot" and event.status == "success" for event in history)


def test_a_node_is_removed_and_the_rest_keep_running(deployment: Deployment) -> None:
    before = last_operations(deployment.cib())
    deployment.write(FIRST, leaving=("node4",))
    run = deployment.playbook("remove_node.yml", "-e", "hakit_remove_node=node4")
    assert run.returncode == 0, run.tail()
    status = deployment.lab.cluster_status("node1")
    assert status is not None and status.node("node4") is None
    after = last_operations(deployment.cib())
    kept = {k: v for k, v in before.items() if k[0] != "node4"}
    assert {k: after.get(k) for k in kept} == kept, "removing a node restarted resources"
    deployment.write(FIRST)
    converged = deployment.playbook("site.yml")
    assert converged.returncode == 0, converged.tail()


def checksum(lab: Lab, node: str, path: str) -> str:
    return str(lab.run(node, ["sha256sum", path]).stdout.split()[0])


def test_remotes_are_added_and_run_only_remote_resources(deployment: Deployment) -> None:
    lab = deployment.lab
    deployment.write(FIRST, remotes=REMOTES)
    run = deployment.playbook("site.yml")
    assert run.returncode == 0, run.tail()
    assert all(run.recap[remote]["changed"] > 0 for remote in REMOTES), run.recap

    def placed() -> bool:
        status = lab.cluster_status("node1")
        return status is not None and status.running_on("compute") == sorted(REMOTES)

    wait_for(placed, "compute running on both remotes", timeout=120)
    status = lab.cluster_status("node1")
    assert status is not None
    assert {node.name for node in status.nodes if node.online} >= set(REMOTES)
    assert not set(status.running_on("worker")) & set(REMOTES), "a cluster clone on a remote"
    key = "/etc/pacemaker/authkey"
    assert {checksum(lab, node, key) for node in [*FIRST, *REMOTES]} == {
        checksum(lab, "node1", key)
    }
    assert lab.run("remote1", ["stat", "-c", "%a %G", key]).stdout.split() == ["640", "haclient"]
    before = epoch(deployment.cib())
    check = deployment.playbook("site.yml", "--check", "--diff")  # a re-run: at the end
    assert check.returncode == 0 and check.changed_tasks() == [], check.tail()
    assert epoch(deployment.cib()) == before


def test_a_fenced_remote_comes_back_by_itself(deployment: Deployment) -> None:
    """pacemaker_remote started at boot, as the role enabled it."""
    lab = deployment.lab
    booted = lab.init_pid("remote2")
    lab.run("node1", ["stonith_admin", "--reboot", "remote2", "--timeout", "60"], timeout=90)
    wait_for(lambda: lab.init_pid("remote2") not in (None, booted), "remote2 power-cycled", 30)

    def back() -> bool:
        status = lab.cluster_status("node1")
        return status is not None and "remote2" in status.running_on("compute")

    wait_for(back, "remote2 back, compute on it", timeout=120)


def test_a_remote_is_removed_and_its_remoted_stopped(deployment: Deployment) -> None:
    lab = deployment.lab
    before = last_operations(deployment.cib())
    deployment.write(FIRST, leaving=("remote2",), remotes=("remote1",))
    run = deployment.playbook("remove_node.yml", "-e", "hakit_remove_node=remote2")
    assert run.returncode == 0, run.tail()
    status = lab.cluster_status("node1")
    assert status is not None and status.node("remote2") is None
    assert status.running_on("compute") == ["remote1"]
    assert lab.run("remote2", ["hakit-lab-node", "status"], check=False).returncode == 3
    cib = deployment.cib()
    assert cib.find(".//primitive[@id='remote2']") is None
    assert cib.find(".//fencing-level[@target='remote2']") is None
    after = last_operations(cib)
    kept = {k: v for k, v in before.items() if "remote2" not in k}  # on it, or its connection
    assert {k: after.get(k) for k in kept} == kept, "removing a remote restarted resources"
    again = deployment.playbook("remove_node.yml", "-e", "hakit_remove_node=remote2")
    assert again.returncode == 0 and again.changed_tasks() == [], again.tail()
    deployment.write(FIRST, remotes=("remote1",))
    converged = deployment.playbook("site.yml")
    assert converged.returncode == 0 and converged.changed_tasks() == [], converged.tail()
