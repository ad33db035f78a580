"""The lab's host-side plumbing: named network namespaces, veth pairs on one bridge, the
anchor process, host commands, the preflight checks, and the processes a namespace holds
(found and killed through `hakit.ocf.proc`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from hakit.lab.errors import LabError
from hakit.ocf import cluster, proc

BRIDGE = "hakitbr0"
#: The lab's network is 10.77.0.0/16: nodes, infra and controller in SUBNET (10.77.0.x),
#: remotes from 10.77.0.101 on into 10.77.1.x (hakit.lab.remotes).
SUBNET = "10.77.0"
PREFIX_LENGTH = 16
INFRA_NETNS, INFRA_ADDRESS = "hakit-infra", f"{SUBNET}.5"
INFRA_LINK = "hakit-vinfra"
#: A bare lab's Ansible controller (hakit.lab.hosts).
CONTROLLER_NETNS, CONTROLLER_ADDRESS = "hakit-ctl", f"{SUBNET}.9"
CONTROLLER_LINK = "hakit-vctl"
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
#: Node numbers a lab may use (a lab has 2 to 9 nodes).
MAX_NODES = 9


def sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a host command; a failure becomes a LabError with the command's message."""
    try:
        done = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env={"PATH": PATH},
        )
    except FileNotFoundError:
        raise LabError(f"{args[0]} is not installed (make deps installs it)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(args)}: no answer within {timeout:g}s") from None
    if check and done.returncode != 0:
        raise failure(" ".join(args), done)
    return done


def failure(label: str, done: subprocess.CompletedProcess[str]) -> LabError:
    """A failed command as a LabError that quotes its last line of output."""
    lines = (done.stderr or done.stdout).strip().splitlines()
    return LabError(f"{label}: {lines[-1] if lines else done.returncode}")


def cmdline(pid: int | str) -> str:
    """The process's command line, arguments joined by spaces ("" if it is gone)."""
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def netns_id(name: str) -> str | None:
    """The named network namespace as /proc names it (`net:[4026532175]`), None if absent."""
    try:
        return f"net:[{os.stat(f'/run/netns/{name}').st_ino}]"
    except OSError:
        return None


def pids_in_netns(name: str) -> list[int]:
    """Processes whose network namespace is the named one."""
    target = netns_id(name)
    return [] if target is None else proc.in_namespaces(target)


def kill_netns(name: str, timeout: float = 10) -> list[int]:
    """SIGKILL every process of the named namespace; the PIDs that survived `timeout`."""
    target = netns_id(name)
    return [] if target is None else proc.kill_namespaces(target, timeout=timeout)


def host_link(node: str) -> str:
    """The host end of a node's veth pair (`hakit-v1` for node1, `hakit-r7` for remote7)."""
    if node.startswith("remote"):
        return f"hakit-r{node.removeprefix('remote')}"
    return f"hakit-v{node.removeprefix('node')}"


def preflight(extra_tools: tuple[str, ...] = ()) -> None:
    """Refuse clearly: not root, a host-level cluster, missing tools or kernel features."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (namespaces, links, mounts); run it as root")
    for tool in ("ip", "unshare", "nsenter", *cluster.PROGRAMS, *extra_tools):
        if shutil.which(tool, path=PATH) is None:
            raise LabError(
                f"{tool} is missing; run `make deps` (apt: pacemaker, corosync, "
                "iproute2, util-linux, openssh-server)"
            )
    own = proc.namespace("self")
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm in cluster.DAEMONS and proc.namespace(pid) == own:
            raise LabError(
                f"{comm} (pid {pid}) already runs on this host; a lab next to a "
                "host-level cluster would confuse both — stop it first"
            )
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "--uts", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise LabError(
            f"this kernel does not allow network/mount/UTS namespaces here: "
            f"{probe.stderr.strip()}"
        )


# --- the anchor -------------------------------------------------------------------------


def anchor_pid(lab_dir: Path) -> int | None:
    try:
        pid = int((lab_dir / "anchor.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if cmdline(pid).startswith("hakit-lab-anchor") else None


def ensure_anchor(lab_dir: Path) -> None:
    """A process in the host namespaces that code inside a node (the fence agent) can
    nsenter back to; /proc/1/ns is not readable in some sandboxes."""
    if anchor_pid(lab_dir) is not None:
        return
    child = subprocess.Popen(
        ["bash", "-c", "exec -a hakit-lab-anchor sleep infinity"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    (lab_dir / "anchor.pid").write_text(f"{child.pid}\n")
    for _ in range(50):
        if anchor_pid(lab_dir) is not None:
            return
        time.sleep(0.02)


# --- links ------------------------------------------------------------------------------


def ensure_bridge() -> None:
    if sh("ip", "link", "show", BRIDGE, check=False).returncode != 0:
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("sysctl", "-qw", f"net.ipv6.conf.{BRIDGE}.disable_ipv6=1", check=False)
    sh("ip", "link", "set", BRIDGE, "up")


def ensure_port(netns: str, link: str, address: str) -> None:
    """A named netns with eth0 on the bridge at `address` (its host end is `link`)."""
    if netns_id(netns) is None:
        sh("ip", "netns", "add", netns)
    if sh("ip", "link", "show", link, check=False).returncode != 0:
        sh("ip", "link", "add", link, "type", "veth", "peer", "name", f"{link}p")
        sh("sysctl", "-qw", f"net.ipv6.conf.{link}.disable_ipv6=1", check=False)
        sh("ip", "link", "set", f"{link}p", "netns", netns)
        sh("ip", "-n", netns, "link", "set", f"{link}p", "name", "eth0")
    sh("ip", "link", "set", link, "master", BRIDGE, "up")
    ipv6_off = "net.ipv6.conf.all.disable_ipv6=1"
    sh("ip", "netns", "exec", netns, "sysctl", "-qw", ipv6_off, check=False)
    sh("ip", "-n", netns, "link", "set", "lo", "up")
    if f"{address}/" not in sh("ip", "-n", netns, "addr", "show", "dev", "eth0").stdout:
        sh("ip", "-n", netns, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", "eth0")
    sh("ip", "-n", netns, "link", "set", "eth0", "up")


def set_link(link: str, up: bool, *, check: bool = True) -> None:
    sh("ip", "link", "set", link, "up" if up else "down", check=check)


def delete_network(namespaces: list[str]) -> None:
    """Kill what runs in the namespaces, delete them, every lab link and the bridge."""
    for netns in namespaces:
        if netns_id(netns) is not None:
            left = kill_netns(netns)
            if left:
                raise LabError(f"{netns}: processes {left} survived SIGKILL")
            sh("ip", "netns", "delete", netns, check=False)
    for link in [f"hakit-v{i}" for i in range(1, MAX_NODES + 1)] + [INFRA_LINK, CONTROLLER_LINK]:
        if sh("ip", "link", "show", link, check=False).returncode == 0:
            sh("ip", "link", "delete", link, check=False)
    if sh("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        sh("ip", "link", "delete", BRIDGE)
