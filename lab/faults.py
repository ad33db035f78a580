"""Power and faults of lab nodes: boot (the node's init), power cut, orderly shutdown,
network partition and its end, SIGKILL of one process. `Lab` offers each as a method."""

from __future__ import annotations

import grp
import json
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hakit.lab import hosts, remotes
from hakit.lab.errors import LabError
from hakit.lab.namespaces import PATH, cmdline, host_link, kill_netns, netns_id, pids_in_netns
from hakit.lab.namespaces import set_link as _set_link
from hakit.ocf import proc
from hakit.resource_agents.health.constants import STATE_DIR as HEALTH_STATE_DIR

if TYPE_CHECKING:
    from hakit.lab.lab import Lab

SYSTEM_PYTHON = "/usr/bin/python3"
NODE_INIT = Path(__file__).with_name("node_init.py")


def node_config(lab: Lab, node: str) -> dict[str, object]:
    """The node's init configuration (the contract is node_init.py's docstring)."""
    if remotes.is_remote(node) and lab.state.bare:  # sshd, and remoted on request
        remote = remotes.node_config(lab, node)
        binds = [*remote["binds"], *hosts.binds(lab, node)]  # type: ignore[misc]
        return {**remote, "binds": binds, **hosts.init_settings(lab, node)}
    if remotes.is_remote(node):
        return remotes.node_config(lab, node)
    base = lab.node_dir(node)
    binds = [
        (str(base / "var-lib-pacemaker"), "/var/lib/pacemaker"),
        (str(base / "var-log-pacemaker"), "/var/log/pacemaker"),
        (str(base / "var-lib-corosync"), "/var/lib/corosync"),
        (str(base / "var-log-corosync"), "/var/log/corosync"),
        (str(base / "var-log-hakit"), "/var/log/hakit"),
        (str(base / "var-log-crmsh"), "/var/log/crmsh"),
        (str(base / "var-lib-hakit-health"), HEALTH_STATE_DIR),
    ]
    if lab.state.bare:  # a deployer writes /etc/corosync (hakit.lab.hosts)
        binds += hosts.binds(lab, node)
    else:
        binds.append((str(lab.dir / "corosync.conf"), "/etc/corosync/corosync.conf"))
    binds.append((str(lab.dir / "hosts"), "/etc/hosts"))
    env = {
        "PATH": PATH,
        "LC_ALL": "C",
        "PCMK_logfile": "/var/log/pacemaker/pacemaker.log",
        "PCMK_logfacility": "none",
        "PCMK_node_start_state": "default",
    }
    return {
        "name": node,
        "binds": binds,
        "env": env,
        "hacluster_uid": pwd.getpwnam("hacluster").pw_uid,
        "haclient_gid": grp.getgrnam("haclient").gr_gid,
        **(hosts.init_settings(lab, node) if lab.state.bare else {}),
    }


def init_pid(lab: Lab, node: str) -> int | None:
    """PID of the node's init if it is running."""
    try:
        pid = int((lab.node_dir(node) / "init.pid").read_text())
    except (OSError, ValueError):
        return None
    if "node_init.py" in cmdline(pid) and proc.namespace(pid) == netns_id(lab.netns(node)):
        return pid
    return None


def power_on(lab: Lab, node: str) -> None:
    """Boot a node (idempotent). Processes left from a crash are killed first."""
    lab.check_node(node)
    if lab.powered(node):
        return
    if netns_id(lab.netns(node)) is None:
        raise LabError(f"{node} has no network namespace; run `hakit lab up` first")
    kill_netns(lab.netns(node))
    base = lab.node_dir(node)
    config = base / "init.json"
    config.write_text(json.dumps(node_config(lab, node)))
    boot = ["unshare", "--mount", "--uts", "--propagation", "private", SYSTEM_PYTHON, "-I", "-S"]
    with open(base / "console.log", "ab") as console:
        child = subprocess.Popen(
            ["ip", "netns", "exec", lab.netns(node), *boot, str(NODE_INIT), str(config)],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env={"PATH": PATH},
            cwd="/",
        )
    (base / "init.pid").write_text(f"{child.pid}\n")
    deadline = time.monotonic() + 10
    while not lab.powered(node):
        if child.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"{node} did not boot; see {base / 'console.log'}")
        time.sleep(0.02)
    if lab.state.bare:  # booted = reachable, as `up` leaves it
        hosts.wait_for_sshd(lab, [node], timeout=10)


def power_on_later(lab: Lab, node: str, seconds: float) -> None:
    """Boot a node `seconds` from now, from a process of the host's that outlives the caller
    (the fence agent's reboot); a node powered or a lab down by then is left as it is."""
    lab.check_node(node)
    script = 'sleep "$1" && exec "$0" -I -m hakit.tools.cli lab power-on "$2"'
    with open(lab.node_dir(node) / "console.log", "ab") as console:
        subprocess.Popen(
            ["sh", "-c", script, sys.executable, str(seconds), node],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def cut(lab: Lab, node: str) -> None:
    """Power cut: SIGKILL every process in the node, its init included."""
    lab.check_node(node)
    left = kill_netns(lab.netns(node))
    if left:
        raise LabError(f"{node}: processes {left} survived SIGKILL")


def power_off_all(lab: Lab, timeout: float = 60) -> None:
    """Every node's orderly power-off, the cluster nodes first: a connected remote's
    pacemaker-remoted, asked to stop, waits for the cluster to stop its resources (its
    whole stop timeout when no cluster node is left to do it)."""
    for group in (lab.nodes, lab.remotes):
        for node in group:
            if (pid := init_pid(lab, node)) is not None:
                os.kill(pid, signal.SIGTERM)
        for node in group:
            deadline = time.monotonic() + timeout
            while lab.powered(node) and time.monotonic() < deadline:
                time.sleep(0.1)


def shutdown(lab: Lab, node: str, timeout: float = 90) -> None:
    """Orderly power-off: the init stops pacemakerd, then corosync."""
    pid = init_pid(lab, node)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while lab.powered(node) and time.monotonic() < deadline:
            time.sleep(0.1)
    kill_netns(lab.netns(node))


def isolate(lab: Lab, node: str) -> None:
    """Partition a node: its link to the bridge goes down."""
    lab.check_node(node)
    _set_link(host_link(node), up=False)


def heal(lab: Lab) -> None:
    for node in lab.nodes + lab.remotes:
        _set_link(host_link(node), up=True, check=False)


def restore(lab: Lab) -> None:
    """Undo every fault: links up, powered-off nodes (remotes too) booted, not waiting."""
    heal(lab)
    for node in lab.nodes + lab.remotes:
        if not lab.powered(node):
            power_on(lab, node)


def kill(lab: Lab, node: str, process: str) -> list[int]:
    """SIGKILL the processes of `node` named `process` (comm or argv[0] basename)."""
    lab.check_node(node)
    victims = []
    for pid in pids_in_netns(lab.netns(node)):
        info = proc.stat(pid)
        names = {info.comm if info else "", os.path.basename(cmdline(pid).split(" ", 1)[0])}
        if process in names:
            os.kill(pid, signal.SIGKILL)
            victims.append(pid)
    if not victims:
        raise LabError(f"no process named {process!r} runs on {node}")
    return victims
