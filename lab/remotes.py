"""The lab's Pacemaker Remote nodes (`hakit lab up --remotes N`): cheap computes named
remote1..remoteN at 10.77.0.(100+N) (from remote151 on, 10.77.1.(N-150)), each in its own
network, mount and UTS namespace on the lab bridge, running pacemaker-remoted alone
(booted by node_init.py with `remoted`).
The cluster knows them through the base layer's `remotes:` section (discovery scoped:
nothing of the cluster nodes' is probed on them); the lab's fence agent fences them, and
cut, isolate, kill and power-on work on them as on cluster nodes.

Debian's pacemaker-remote package conflicts with pacemaker, so it is never installed:
its one binary is extracted into the lab directory (apt-get download, dpkg-deb -x) and
runs against the libraries pacemaker installed (docs/lab.md). The shared key is the
host's /etc/pacemaker/authkey (pacemaker-common creates it), which every node sees.

In a bare lab (`--bare --remotes N`) they are hosts for a deployer like the bare nodes:
sshd, an /etc/pacemaker of their own for the key it writes, and pacemaker-remoted on
request (`hakit-lab-node start`, where a production host has its pacemaker_remote unit)."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from hakit.lab.errors import LabError
from hakit.lab.namespaces import PATH, SUBNET, host_link, kill_netns, netns_id, sh
from hakit.ocf import cluster

if TYPE_CHECKING:
    from hakit.lab.lab import Lab

PREFIX = "remote"
#: remoteN's address: SUBNET.(FIRST_ADDRESS + N) up to .250 (remote150), then
#: NEXT_SUBNET.(N - 150): 10.77.1.1 to .250 (on the lab's /16)
FIRST_ADDRESS = 100
IN_SUBNET = 150
NEXT_SUBNET = "10.77.1"
MAX_REMOTES = 400
AUTHKEY = Path("/etc/pacemaker/authkey")
#: The connection's retry after a loss: a fenced remote is back in seconds in the lab.
RECONNECT_INTERVAL = "5s"
#: The remotes' own fence device (fence_hakit_lab): in their layer, so that it fences
#: them whatever topology they are layered over (the demo's devices list its nodes only).
FENCE_DEVICE = "hakit-fence-remotes"
#: A remote's state directories (under its node directory): (path, mode, owned by
#: hacluster), bind-mounted at /var/lib/pacemaker, /var/log/pacemaker and /var/log/hakit
#: (the agents' daemon output: without it, the remotes wrote into the host's).
DIRS = [
    ("var-lib-pacemaker", 0o750, True),
    ("var-log-pacemaker", 0o770, True),
    ("var-log-hakit", 0o750, False),
]


def names(count: int) -> list[str]:
    return [f"{PREFIX}{i}" for i in range(1, count + 1)]


def is_remote(node: str) -> bool:
    return node.startswith(PREFIX) and node.removeprefix(PREFIX).isdigit()


def address(node: str) -> str:
    number = int(node.removeprefix(PREFIX))
    if number <= IN_SUBNET:
        return f"{SUBNET}.{FIRST_ADDRESS + number}"
    return f"{NEXT_SUBNET}.{number - IN_SUBNET}"


def layer(lab: Lab) -> tuple[str, str]:
    """The lab's remotes as a layer (file, YAML text): their `remotes:` section, the
    fence device that fences them (fencing level 1 of each) and resource stickiness."""
    import yaml

    nodes = [{"name": n, "address": address(n), "fence": [FENCE_DEVICE]} for n in lab.remotes]
    device = {
        "name": FENCE_DEVICE,
        "agent": "fence_hakit_lab",
        "params": {"pcmk_host_list": " ".join(lab.remotes)},
        "ops": [{"name": "monitor", "interval": "60s"}],
    }
    section = {"reconnect_interval": RECONNECT_INTERVAL, "nodes": nodes}
    # resources stay where they run: without it, a lost remote's connection let the
    # scheduler rebalance the others' connections and the fence devices inside the same
    # transition, and the loss took that much longer to handle (docs/benchmarks.md)
    defaults = {"resources": {"resource-stickiness": 1}}
    text = yaml.safe_dump(
        {"fencing": {"devices": [device]}, "remotes": section, "defaults": defaults}
    )
    return (f"<{len(nodes)} lab remotes>", text)


def remoted(lab: Lab) -> Path:
    """pacemaker-remoted of the installed pacemaker's version, extracted once into the
    lab directory (apt lists refreshed once if the package is not found)."""
    root = lab.dir / "pacemaker-remote"
    binary = root / "usr" / "sbin" / cluster.REMOTED
    if binary.exists():
        return binary
    version = sh("dpkg-query", "-W", "-f=${Version}", "pacemaker").stdout.strip()
    with tempfile.TemporaryDirectory() as download:
        for attempt in range(2):
            done = subprocess.run(
                ["apt-get", "download", "-qq", f"pacemaker-remote={version}"],
                cwd=download,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
                env={"PATH": PATH},
            )
            if done.returncode == 0 or attempt:
                break
            sh("apt-get", "update", "-qq", timeout=300)
        debs = list(Path(download).glob("pacemaker-remote_*.deb"))
        if not debs:
            said = (done.stderr or done.stdout).strip().splitlines()
            raise LabError(
                f"apt-get download pacemaker-remote={version} failed"
                f"{': ' + said[-1] if said else ''} (a lab with remotes needs Debian's apt)"
            )
        sh("dpkg-deb", "-x", str(debs[0]), str(root))
    if not binary.exists():
        raise LabError(f"pacemaker-remote {version} has no {binary.relative_to(root)}")
    return binary


def node_config(lab: Lab, node: str) -> dict[str, object]:
    """A remote's init configuration (node_init.py's contract, `remoted` set)."""
    base = lab.node_dir(node)
    return {
        "name": node,
        "binds": [
            (str(base / "var-lib-pacemaker"), "/var/lib/pacemaker"),
            (str(base / "var-log-pacemaker"), "/var/log/pacemaker"),
            (str(base / "var-log-hakit"), "/var/log/hakit"),
            (str(lab.dir / "hosts"), "/etc/hosts"),
        ],
        "env": {
            "PATH": PATH,
            "LC_ALL": "C",
            "PCMK_logfile": "/var/log/pacemaker/pacemaker.log",
            "PCMK_logfacility": "none",
        },
        "hacluster_uid": pwd.getpwnam("hacluster").pw_uid,
        "haclient_gid": grp.getgrnam("haclient").gr_gid,
        "remoted": str(remoted(lab)),
    }


def prepare(lab: Lab) -> None:
    """The remotes' directories and the binary, before they boot; refuse without a key
    (but in a bare lab, whose deployer writes each node's /etc/pacemaker/authkey)."""
    if not lab.remotes:
        return
    if not AUTHKEY.exists() and not lab.state.bare:  # a bare lab's deployer writes one
        raise LabError(
            f"{AUTHKEY} is missing: remotes share it with the cluster nodes "
            "(pacemaker-common creates it; `apt-get install --reinstall pacemaker-common`)"
        )
    remoted(lab)
    uid, gid = pwd.getpwnam("hacluster").pw_uid, grp.getgrnam("haclient").gr_gid
    for node in lab.remotes:
        for sub, mode, owned in DIRS:
            path = lab.node_dir(node) / sub
            path.mkdir(parents=True, exist_ok=True)
            if owned:
                os.chown(path, uid, gid)
            path.chmod(mode)


def leftovers(lab: Lab) -> list[str]:
    """Remotes with a namespace on this host beyond the lab's count (a smaller `--remotes`)."""
    wanted = set(lab.remotes)
    return [n for n in names(MAX_REMOTES) if n not in wanted and netns_id(lab.netns(n))]


def configured(lab: Lab) -> set[str]:
    """The remotes the live CIB has a connection resource for."""
    with lab.on(lab.nodes[0]):
        found = cluster.cib_query("resources", timeout=30)
    return {
        p.get("id", "")
        for p in found.iter("primitive")
        if p.get("type") == "remote" and p.get("provider") == "pacemaker"
    }


def converge(lab: Lab, timeout: float = 300) -> None:
    """The cluster's remotes made the lab's: when the set differs from the CIB's, what was
    applied last is applied again with the new set (`cib.reapply`: the demo or the cloud
    stays), and once the cluster is idle the remotes gone are stopped, deleted and
    forgotten; then every remote is awaited online."""
    from hakit.lab import cib

    gone = leftovers(lab)
    live = configured(lab)
    if live != set(lab.remotes):
        cib.reapply(lab)
        with lab.on(lab.nodes[0]):
            cluster.wait_for_idle(timeout=timeout)  # removed connections stopped first
    with ThreadPoolExecutor(8) as pool:  # each waits for its remote's shutdown
        list(pool.map(partial(remove, lab), gone))
    with lab.on(lab.nodes[0]):
        for node in sorted(live - set(lab.remotes)):
            try:
                cluster.forget_node(node, timeout=30)
            except cluster.ClusterCommandError:
                pass  # already gone
    wait_until_online(lab, timeout)


def remove(lab: Lab, node: str) -> None:
    """Shut a remote down, kill what is left, delete its namespace (and veth pair)."""
    lab.shutdown(node, timeout=30)
    left = kill_netns(lab.netns(node))
    if left:
        raise LabError(f"{node}: processes {left} survived SIGKILL")
    sh("ip", "netns", "delete", lab.netns(node), check=False)
    if sh("ip", "link", "show", host_link(node), check=False).returncode == 0:
        sh("ip", "link", "delete", host_link(node), check=False)


def online(lab: Lab) -> set[str]:
    """The remotes the cluster shows online (none if it does not answer)."""
    found = lab.cluster_status(lab.nodes[0], timeout=10)
    return {n.name for n in found.nodes if n.online} & set(lab.remotes) if found else set()


def wait_until_online(lab: Lab, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while lab.remotes:
        missing = set(lab.remotes) - online(lab)
        if not missing:
            return
        if time.monotonic() > deadline:
            shown = ", ".join(sorted(missing, key=lambda n: int(n.removeprefix(PREFIX))))
            raise LabError(
                f"remotes not online within {timeout:g}s: {shown}; see "
                f"{lab.node_dir(min(missing)) / 'var-log-pacemaker'}"
            )
        time.sleep(0.5)
