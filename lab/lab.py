"""The lab: bring a multi-node Pacemaker/Corosync cluster up on one machine, inject
faults, take it down leaving nothing behind. `Lab` is the facade: the host plumbing is in
`namespaces`, power and faults in `faults`, the CIB (base layer, topologies applied
in-process) in `cib`, the cluster's view in `status`, a bare lab's sshd and Ansible
controller in `hosts`. Cluster programs run inside a node through `Lab.runner(node)`
(`with lab.on(node):`); `Lab.run` is for other commands.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from hakit.lab import cib, faults, fence_agent, hosts, namespaces
from hakit.lab import remotes as remote_nodes
from hakit.lab import status as lab_status
from hakit.lab.errors import LabError
from hakit.lab.faults import NODE_INIT, SYSTEM_PYTHON
from hakit.lab.namespaces import (
    BRIDGE,
    CONTROLLER_NETNS,
    INFRA_ADDRESS,
    INFRA_NETNS,
    PATH,
    SUBNET,
    failure,
    netns_id,
    pids_in_netns,
    sh,
)
from hakit.lab.profiles import PROFILES, Profile
from hakit.ocf import cluster
from hakit.ocf.status import ClusterStatus

T = TypeVar("T")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hakit.lab.infra import InfraInfo

__all__ = [
    "BRIDGE",
    "FENCE_AGENT",
    "INFRA_ADDRESS",
    "INFRA_NETNS",
    "LAB_DIR",
    "NODE_INIT",
    "PATH",
    "SUBNET",
    "SYSTEM_PYTHON",
    "Lab",
    "LabState",
    "failure",
    "node_names",
    "pids_in_netns",
    "sh",
]

LAB_DIR = Path(os.environ.get("HAKIT_LAB_DIR", "/var/lib/hakit-lab"))
FENCE_AGENT = Path("/usr/sbin/fence_hakit_lab")
FENCE_ID = cib.FENCE_ID
#: nova's fake driver's console host; each node resolves it to its own VNC stand-in
FAKE_VNC_HOST = "fakevncconsole.com"
#: A node's state directories: (path under the node's directory, mode, owned by hacluster).
NODE_DIRS = [
    ("var-lib-pacemaker", 0o750, True),
    ("var-log-pacemaker", 0o770, True),
    ("var-log-pacemaker/bundles", 0o770, True),
    ("var-lib-corosync", 0o700, False),
    ("var-log-corosync", 0o750, False),
    ("var-log-hakit", 0o750, False),
    ("var-log-crmsh", 0o750, False),
    ("var-lib-hakit-health", 0o2770, True),  # the health outbox: alert agents run as hacluster
    *((f"var-lib-pacemaker/{d}", 0o750, True) for d in ("cib", "pengine", "blackbox", "cores")),
]


@dataclass
class LabState:
    """What `up` was asked for, kept in the lab directory. `bare`: nodes with sshd and
    no cluster until a deployer configures one (hakit.lab.hosts); `remotes`: Pacemaker
    Remote nodes (hakit.lab.remotes)."""

    nodes: int = 3
    profile: str = "default"
    python: str = sys.executable
    bare: bool = False
    remotes: int = 0


def node_names(count: int) -> list[str]:
    return [f"node{i}" for i in range(1, count + 1)]


class Lab:
    """One lab on this machine, rooted at `lab_dir`."""

    def __init__(self, lab_dir: Path = LAB_DIR) -> None:
        self.dir = lab_dir
        state_file = lab_dir / "lab.json"
        try:
            saved = json.loads(state_file.read_text()) if state_file.exists() else {}
            self.state = LabState(**saved)
        except (ValueError, TypeError, OSError) as error:
            raise LabError(
                f"{state_file} is unreadable ({error}); fix or delete it, or "
                "`hakit lab down --purge`"
            ) from None

    # --- names and places -----------------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        return node_names(self.state.nodes)

    @property
    def remotes(self) -> list[str]:
        return remote_nodes.names(self.state.remotes)

    @property
    def profile(self) -> Profile:
        return PROFILES[self.state.profile]

    def netns(self, node: str) -> str:
        return f"hakit-{node}"

    def address(self, node: str) -> str:
        if remote_nodes.is_remote(node):
            return remote_nodes.address(node)
        return f"{SUBNET}.{10 + int(node.removeprefix('node'))}"

    def node_dir(self, node: str) -> Path:
        """A bare lab's nodes have their own (no CIB or config of a cluster lab's)."""
        return self.dir / ("bare-nodes" if self.state.bare else "nodes") / node

    def health_dir(self, node: str) -> Path:
        """The node's /var/lib/hakit/health (its alert outbox), seen from the host."""
        return self.node_dir(node) / "var-lib-hakit-health"

    def check_node(self, node: str) -> None:
        if node not in self.nodes and node not in self.remotes:
            remotes = f" and {len(self.remotes)} remotes (remote1...)" if self.remotes else ""
            raise LabError(f"no node {node!r} in this lab; nodes: {', '.join(self.nodes)}{remotes}")

    # --- process handling ------------------------------------------------------------

    def init_pid(self, node: str) -> int | None:
        """PID of the node's init if it is running."""
        return faults.init_pid(self, node)

    def powered(self, node: str) -> bool:
        return self.init_pid(node) is not None

    def anchor_pid(self) -> int | None:
        return namespaces.anchor_pid(self.dir)

    def netns_prefix(self, node: str) -> list[str]:
        """The command prefix that runs a program inside a node (as `run` does)."""
        self.check_node(node)
        pid = self.init_pid(node)
        if pid is None:
            raise LabError(f"{node} is powered off (hakit lab power-on {node})")
        return ["nsenter", "-t", str(pid), "-n", "-m", "-u", "--"]

    def runner(self, node: str) -> cluster.Runner:
        """The runner of cluster programs inside `node` (its namespaces, `run`'s environment)."""
        return cluster.Runner(self.netns_prefix(node), env={"PATH": PATH, "LC_ALL": "C"}, name=node)

    @contextlib.contextmanager
    def on(self, node: str) -> Iterator[cluster.Runner]:
        """`with lab.on(node):` every hakit.ocf.cluster call of the block runs inside `node`;
        a ClusterCommandError leaving the block becomes a LabError."""
        try:
            with cluster.using(self.runner(node)) as runner:
                yield runner
        except cluster.ClusterCommandError as error:
            raise LabError(f"{node}: {error}") from error

    def run(
        self,
        node: str,
        args: list[str],
        *,
        timeout: float = 30,
        check: bool = True,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside a node (its network, mount and UTS namespaces)."""
        prefix = self.netns_prefix(node)
        try:
            done = subprocess.run(
                [*prefix, *args],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env={"PATH": PATH, "LC_ALL": "C", **(env or {})},
            )
        except subprocess.TimeoutExpired:
            raise LabError(f"{node}: {' '.join(args)}: no answer within {timeout:g}s") from None
        if check and done.returncode != 0:
            raise failure(f"{node}: {' '.join(args)}", done)
        return done

    def attach(self, node: str, args: list[str]) -> int:
        """Run a command inside a node with the caller's terminal (`hakit lab exec`)."""
        env = {"PATH": PATH, "TERM": os.environ.get("TERM", "dumb"), "HOME": "/root"}
        return subprocess.call([*self.netns_prefix(node), *args], env=env)

    # --- up --------------------------------------------------------------------------

    def up(
        self,
        nodes: int | None = None,
        profile: str | None = None,
        *,
        infra: bool = False,
        bare: bool = False,
        remotes: int | None = None,
    ) -> dict[str, float]:
        """Create what is missing, start what is stopped; return timings (seconds).
        `bare`: nodes with sshd and no cluster, and the controller (hakit.lab.hosts).
        `remotes`: that many Pacemaker Remote nodes (a running lab's number may change)."""
        began = time.monotonic()
        timings: dict[str, float] = {}
        count = self.state.remotes if remotes is None else remotes
        wanted = LabState(
            nodes or self.state.nodes, profile or self.state.profile, sys.executable, bare, count
        )
        self.preflight(bare)
        if wanted.profile not in PROFILES:
            raise LabError(f"unknown profile {wanted.profile!r}; choose {', '.join(PROFILES)}")
        if wanted.nodes < 2 or wanted.nodes > 9:
            raise LabError("a lab has 2 to 9 nodes")
        if not 0 <= count <= remote_nodes.MAX_REMOTES:
            raise LabError(f"a lab has 0 to {remote_nodes.MAX_REMOTES} remotes")
        running = [n for n in node_names(9) if pids_in_netns(self.netns(n))]
        now = (self.state.nodes, self.state.bare)
        if running and (wanted.nodes, wanted.bare) != now and self.state_exists():
            raise LabError(
                f"the lab runs with {self.state.nodes} nodes"
                f"{' (bare)' if self.state.bare else ''}; "
                "take it down first (hakit lab down) to change the size or the kind"
            )
        self.state = wanted
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "lab.json").write_text(json.dumps(asdict(wanted)) + "\n")
        self._ensure_anchor()
        self._ensure_network()
        if bare:
            hosts.controller_network(self)
        timings["network"] = time.monotonic() - began
        conf_changed = self._write_files()
        for node in self.nodes + (self.remotes if bare else []):  # a deployer starts remoted
            if not self.powered(node):
                self.power_on(node)
        timings["powered_on"] = time.monotonic() - began
        if bare:
            for node in remote_nodes.leftovers(self):  # a smaller --remotes
                remote_nodes.remove(self, node)
            hosts.wait_for_sshd(self)
        else:
            self.wait_until_online(timeout=120)
            timings["online_with_dc"] = time.monotonic() - began
            self._converge_cluster(conf_changed)
        timings["ready"] = time.monotonic() - began
        if infra:
            self.infra_up()
            timings["infra"] = time.monotonic() - began
        return timings

    def _converge_cluster(self, conf_changed: bool) -> None:
        """A cluster lab once online: corosync.conf reloaded if it changed, the base
        layers, the remotes booted and made the cluster's."""
        if conf_changed and any(self.powered(n) for n in self.nodes):
            with self.on(self.nodes[0]):
                cluster.corosync_reload()
        cib.ensure_base(self)  # the lab's properties (the profile's too) and fencing
        for node in self.remotes:
            self.power_on(node)
        remote_nodes.converge(self)

    def infra_up(self) -> InfraInfo:
        """The infra node: MariaDB and RabbitMQ at INFRA_ADDRESS, for OpenStack services."""
        from hakit.lab import infra

        infra.ensure_packages()
        self.infra_network()
        return infra.start_infra(self.dir / "infra", INFRA_NETNS, INFRA_ADDRESS)

    def as_client(self, func: Callable[[], T]) -> T:
        """Run `func` in the infra namespace: a client outside the cluster."""
        from hakit.lab import infra

        self.infra_network()
        return infra.in_netns(INFRA_NETNS, func)

    def infra_network(self) -> str:
        """The infra node's namespace on the bridge, without its services; its address.
        Clients of the cluster that must survive node faults run there."""
        self._ensure_anchor()
        self._ensure_network()
        namespaces.ensure_port(INFRA_NETNS, namespaces.INFRA_LINK, INFRA_ADDRESS)
        return INFRA_ADDRESS

    def rabbitmqctl(self, *args: str, timeout: float = 60) -> str:
        """Run rabbitmqctl against the infra node's broker (e.g. stop_app, start_app)."""
        from hakit.lab import infra

        env = {
            "PATH": PATH,
            "LC_ALL": "C.UTF-8",
            **infra.rabbitmq_env(self.dir / "infra", INFRA_ADDRESS),
        }
        done = subprocess.run(
            ["ip", "netns", "exec", INFRA_NETNS, infra.RABBITMQCTL, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
        if done.returncode != 0:
            raise failure(f"rabbitmqctl {' '.join(args)}", done)
        return done.stdout

    def infra_status(self) -> dict[str, object]:
        from hakit.lab import infra

        return infra.infra_status(self.dir / "infra", INFRA_NETNS)

    def state_exists(self) -> bool:
        return (self.dir / "lab.json").exists()

    def preflight(self, bare: bool = False) -> None:
        """Refuse clearly: not root, a host-level cluster, missing tools or kernel features."""
        namespaces.preflight((hosts.SSHD, "ssh", "ssh-keygen") if bare else ())

    def _ensure_anchor(self) -> None:
        namespaces.ensure_anchor(self.dir)

    def _ensure_network(self) -> None:
        namespaces.ensure_bridge()
        for node in self.nodes + self.remotes:
            namespaces.ensure_port(self.netns(node), namespaces.host_link(node), self.address(node))

    def _write_files(self) -> bool:
        """hosts, node directories, fence agent; corosync.conf and authkey (True if
        corosync.conf changed), or a bare lab's files (hakit.lab.hosts)."""
        etc_hosts = (
            "127.0.0.1 localhost\n"
            + "".join(f"{self.address(n)} {n}\n" for n in self.nodes + self.remotes)
            + f"{INFRA_ADDRESS} infra\n"
            + f"127.0.0.1 {FAKE_VNC_HOST}\n"  # the mini cloud's VNC stand-in on each node
        )
        (self.dir / "hosts").write_text(etc_hosts)
        agent = fence_agent.render(str(self.dir), self.state.python, self.nodes + self.remotes)
        if not FENCE_AGENT.exists() or FENCE_AGENT.read_text() != agent:
            FENCE_AGENT.write_text(agent)
            FENCE_AGENT.chmod(0o755)
        uid, gid = pwd.getpwnam("hacluster").pw_uid, grp.getgrnam("haclient").gr_gid
        for node in self.nodes:
            for sub, mode, owned in NODE_DIRS:
                path = self.node_dir(node) / sub
                path.mkdir(parents=True, exist_ok=True)
                if owned:
                    os.chown(path, uid, gid)
                path.chmod(mode)  # after chown, which may clear setgid
        remote_nodes.prepare(self)
        if self.state.bare:
            hosts.prepare(self)
            return False
        key = self.dir / "authkey"
        if not key.exists():
            key.write_bytes(os.urandom(256))
        key.chmod(0o400)
        conf = self.dir / "corosync.conf"
        text = self.profile.corosync_conf([(n, self.address(n)) for n in self.nodes], str(key))
        changed = not conf.exists() or conf.read_text() != text
        if changed:
            conf.write_text(text)
        first_cib = cib.seed_cib(self)
        for node in self.nodes:
            seed = self.node_dir(node) / "var-lib-pacemaker" / "cib" / "cib.xml"
            if not seed.exists():
                seed.write_text(first_cib)
                seed.chmod(0o600)
                os.chown(seed, uid, gid)
        return changed

    # --- power and faults (hakit.lab.faults) --------------------------------------------

    def power_on(self, node: str) -> None:
        """Boot a node (idempotent); processes left from a crash are killed first. A bare
        lab's node is booted when its sshd listens."""
        faults.power_on(self, node)

    def power_on_later(self, node: str, seconds: float) -> None:
        """Boot a node `seconds` from now, not waiting (a fence agent's reboot)."""
        faults.power_on_later(self, node, seconds)

    def cut(self, node: str) -> None:
        """Power cut: SIGKILL every process in the node, its init included."""
        faults.cut(self, node)

    def shutdown(self, node: str, timeout: float = 90) -> None:
        """Orderly power-off: the init stops pacemakerd, then corosync."""
        faults.shutdown(self, node, timeout)

    def isolate(self, node: str) -> None:
        """Partition a node: its link to the bridge goes down."""
        faults.isolate(self, node)

    def heal(self) -> None:
        faults.heal(self)

    def restore(self) -> None:
        """Undo every fault: links up, powered-off nodes booted (not waiting for them)."""
        faults.restore(self)

    def kill(self, node: str, process: str) -> list[int]:
        """SIGKILL the processes of `node` named `process` (comm or argv[0] basename)."""
        return faults.kill(self, node, process)

    # --- a bare lab's controller (hakit.lab.hosts) -----------------------------------------

    def controller_env(self) -> dict[str, str]:
        """This environment with ANSIBLE_CONFIG (and Ansible's home, local temp) set."""
        return hosts.controller_env(self)

    def controller_run(
        self, argv: list[str], timeout: float = 600, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` in the controller's namespace (env: controller_env() by default);
        output captured, never raises on a nonzero exit; killed after `timeout`: 124."""
        return hosts.controller_run(self, argv, timeout, env)

    def ansible_host_vars(self, node: str) -> dict[str, str]:
        """An inventory host's variables: ansible_host, ansible_user, the key."""
        return hosts.ansible_host_vars(self, node)

    # --- status and down ------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        """Power, membership and DC as one running node sees them."""
        return lab_status.status(self)

    def cluster_status(self, node: str, timeout: float = 10) -> ClusterStatus | None:
        """crm_mon's view from `node`, or None if it cannot answer."""
        return lab_status.cluster_status(self, node, timeout)

    def wait_until_online(self, timeout: float = 120) -> None:
        lab_status.wait_until_online(self, timeout)

    def down(self, purge: bool = False) -> None:
        """Stop everything, delete namespaces, links and the fence agent; `purge` also
        deletes the lab directory (node state and logs)."""
        if os.geteuid() != 0:
            raise LabError("the lab needs root; run `hakit lab down` as root")
        faults.power_off_all(self)
        self._stop_infra()
        self._delete_network()
        if FENCE_AGENT.exists() and "hakit lab" in FENCE_AGENT.read_text():
            FENCE_AGENT.unlink()
        hosts.clean(self)
        anchor = self.anchor_pid()
        if anchor is not None:
            os.kill(anchor, signal.SIGKILL)
        if purge and self.dir.exists():
            shutil.rmtree(self.dir)

    def _stop_infra(self) -> None:
        if netns_id(INFRA_NETNS) is not None:
            from hakit.lab import infra

            infra.stop_infra(self.dir / "infra", INFRA_NETNS)

    def _delete_network(self) -> None:
        others = [INFRA_NETNS, CONTROLLER_NETNS]
        remotes = remote_nodes.names(remote_nodes.MAX_REMOTES)
        namespaces.delete_network([self.netns(n) for n in node_names(9) + remotes] + others)
