"""The lab: bring a multi-node Pacemaker/Corosync cluster up on one machine, inject
faults, take it down leaving nothing behind. Host-side plumbing (namespaces, links,
processes) is here; cluster commands run inside a node through `Lab.run`.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar
from xml.etree import ElementTree

from hakit.lab import fence_agent
from hakit.lab.errors import LabError
from hakit.lab.profiles import PROFILES, Profile
from hakit.ocf import proc
from hakit.ocf.cluster import ClusterStatus
from hakit.resource_agents.health.constants import STATE_DIR as HEALTH_STATE_DIR

T = TypeVar("T")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hakit.lab.infra import InfraInfo

LAB_DIR = Path(os.environ.get("HAKIT_LAB_DIR", "/var/lib/hakit-lab"))
BRIDGE = "hakitbr0"
SUBNET = "10.77.0"
INFRA_NETNS, INFRA_ADDRESS = "hakit-infra", f"{SUBNET}.5"
FENCE_AGENT = Path("/usr/sbin/fence_hakit_lab")
FENCE_ID = "hakit-fence"
#: nova's fake driver's console host; each node resolves it to its own VNC stand-in
FAKE_VNC_HOST = "fakevncconsole.com"
SYSTEM_PYTHON = "/usr/bin/python3"
NODE_INIT = Path(__file__).with_name("node_init.py")
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
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
    """What `up` was asked for, kept in the lab directory."""

    nodes: int = 3
    profile: str = "default"
    python: str = sys.executable


def node_names(count: int) -> list[str]:
    return [f"node{i}" for i in range(1, count + 1)]


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


def _net_ns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _netns_id(name: str) -> str | None:
    try:
        return f"net:[{os.stat(f'/run/netns/{name}').st_ino}]"
    except OSError:
        return None


def _cmdline(pid: int | str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def pids_in_netns(name: str) -> list[int]:
    """Processes whose network namespace is the named one."""
    target = _netns_id(name)
    if target is None:
        return []
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _net_ns(p) == target]


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
    def profile(self) -> Profile:
        return PROFILES[self.state.profile]

    def netns(self, node: str) -> str:
        return f"hakit-{node}"

    def address(self, node: str) -> str:
        return f"{SUBNET}.{10 + int(node.removeprefix('node'))}"

    def node_dir(self, node: str) -> Path:
        return self.dir / "nodes" / node

    def health_dir(self, node: str) -> Path:
        """The node's /var/lib/hakit/health (its alert outbox), seen from the host."""
        return self.node_dir(node) / "var-lib-hakit-health"

    def check_node(self, node: str) -> None:
        if node not in self.nodes:
            raise LabError(f"no node {node!r} in this lab; nodes: {', '.join(self.nodes)}")

    # --- process handling ------------------------------------------------------------

    def init_pid(self, node: str) -> int | None:
        """PID of the node's init if it is running."""
        try:
            pid = int((self.node_dir(node) / "init.pid").read_text())
        except (OSError, ValueError):
            return None
        if "node_init.py" in _cmdline(pid) and _net_ns(pid) == _netns_id(self.netns(node)):
            return pid
        return None

    def powered(self, node: str) -> bool:
        return self.init_pid(node) is not None

    def anchor_pid(self) -> int | None:
        try:
            pid = int((self.dir / "anchor.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if _cmdline(pid).startswith("hakit-lab-anchor") else None

    def netns_prefix(self, node: str) -> list[str]:
        """The command prefix that runs a program inside a node (as `run` does)."""
        self.check_node(node)
        pid = self.init_pid(node)
        if pid is None:
            raise LabError(f"{node} is powered off (hakit lab power-on {node})")
        return ["nsenter", "-t", str(pid), "-n", "-m", "-u", "--"]

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
        self.check_node(node)
        pid = self.init_pid(node)
        if pid is None:
            raise LabError(f"{node} is powered off (hakit lab power-on {node})")
        env = {"PATH": PATH, "TERM": os.environ.get("TERM", "dumb"), "HOME": "/root"}
        return subprocess.call(["nsenter", "-t", str(pid), "-n", "-m", "-u", "--", *args], env=env)

    # --- up --------------------------------------------------------------------------

    def up(
        self, nodes: int | None = None, profile: str | None = None, *, infra: bool = False
    ) -> dict[str, float]:
        """Create what is missing, start what is stopped; return timings (seconds)."""
        began = time.monotonic()
        timings: dict[str, float] = {}
        self.preflight()
        wanted = LabState(nodes or self.state.nodes, profile or self.state.profile, sys.executable)
        if wanted.profile not in PROFILES:
            raise LabError(f"unknown profile {wanted.profile!r}; choose {', '.join(PROFILES)}")
        if wanted.nodes < 2 or wanted.nodes > 9:
            raise LabError("a lab has 2 to 9 nodes")
        running = [n for n in node_names(9) if self._any_alive(n)]
        if running and wanted.nodes != self.state.nodes and self.state_exists():
            raise LabError(
                f"the lab runs with {self.state.nodes} nodes; "
                "take it down first (hakit lab down) to change the size"
            )
        profile_changed = wanted.profile != self.state.profile
        self.state = wanted
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "lab.json").write_text(json.dumps(asdict(wanted)) + "\n")
        self._ensure_anchor()
        self._ensure_network()
        timings["network"] = time.monotonic() - began
        conf_changed = self._write_files()
        for node in self.nodes:
            if not self.powered(node):
                self.power_on(node)
        timings["powered_on"] = time.monotonic() - began
        self.wait_until_online(timeout=120)
        timings["online_with_dc"] = time.monotonic() - began
        first = self.nodes[0]
        if conf_changed and any(self.powered(n) for n in self.nodes):
            self.run(first, ["corosync-cfgtool", "-R"], check=False)
        if profile_changed or conf_changed:
            for name, value in self.profile.cluster_properties().items():
                self.run(first, ["crm_attribute", "-t", "crm_config", "-n", name, "-v", value])
        self._ensure_fencing()
        timings["ready"] = time.monotonic() - began
        if infra:
            self.infra_up()
            timings["infra"] = time.monotonic() - began
        return timings

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
        self._ensure_port(INFRA_NETNS, "hakit-vinfra", INFRA_ADDRESS)
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

    def preflight(self) -> None:
        """Refuse clearly: not root, a host-level cluster, missing tools or kernel features."""
        if os.geteuid() != 0:
            raise LabError("the lab needs root (namespaces, links, mounts); run it as root")
        for tool in ("ip", "unshare", "nsenter", "corosync", "pacemakerd", "crm_mon"):
            if shutil.which(tool, path=PATH) is None:
                raise LabError(
                    f"{tool} is missing; run `make deps` (apt: pacemaker, corosync, "
                    "iproute2, util-linux)"
                )
        own = _net_ns("self")
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if comm in ("corosync", "pacemakerd") and _net_ns(pid) == own:
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

    def _ensure_anchor(self) -> None:
        """A process in the host namespaces that code inside a node (the fence agent)
        can nsenter back to; /proc/1/ns is not readable in some sandboxes."""
        if self.anchor_pid() is not None:
            return
        child = subprocess.Popen(
            ["bash", "-c", "exec -a hakit-lab-anchor sleep infinity"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        (self.dir / "anchor.pid").write_text(f"{child.pid}\n")
        for _ in range(50):
            if self.anchor_pid() is not None:
                return
            time.sleep(0.02)

    def _ensure_network(self) -> None:
        if sh("ip", "link", "show", BRIDGE, check=False).returncode != 0:
            sh("ip", "link", "add", BRIDGE, "type", "bridge")
            sh("sysctl", "-qw", f"net.ipv6.conf.{BRIDGE}.disable_ipv6=1", check=False)
        sh("ip", "link", "set", BRIDGE, "up")
        for node in self.nodes:
            self._ensure_port(
                self.netns(node), f"hakit-v{node.removeprefix('node')}", self.address(node)
            )

    def _ensure_port(self, netns: str, host_link: str, address: str) -> None:
        """A named netns with eth0 on the bridge at `address`."""
        if _netns_id(netns) is None:
            sh("ip", "netns", "add", netns)
        if sh("ip", "link", "show", host_link, check=False).returncode != 0:
            sh("ip", "link", "add", host_link, "type", "veth", "peer", "name", f"{host_link}p")
            sh("sysctl", "-qw", f"net.ipv6.conf.{host_link}.disable_ipv6=1", check=False)
            sh("ip", "link", "set", f"{host_link}p", "netns", netns)
            sh("ip", "-n", netns, "link", "set", f"{host_link}p", "name", "eth0")
        sh("ip", "link", "set", host_link, "master", BRIDGE, "up")
        sh(
            "ip",
            "netns",
            "exec",
            netns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            check=False,
        )
        sh("ip", "-n", netns, "link", "set", "lo", "up")
        if f"{address}/" not in sh("ip", "-n", netns, "addr", "show", "dev", "eth0").stdout:
            sh("ip", "-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", netns, "link", "set", "eth0", "up")

    def _write_files(self) -> bool:
        """corosync.conf, authkey, hosts, node directories, fence agent; True if
        corosync.conf changed."""
        key = self.dir / "authkey"
        if not key.exists():
            key.write_bytes(os.urandom(256))
        key.chmod(0o400)
        hosts = (
            "127.0.0.1 localhost\n"
            + "".join(f"{self.address(n)} {n}\n" for n in self.nodes)
            + f"{INFRA_ADDRESS} infra\n"
            + f"127.0.0.1 {FAKE_VNC_HOST}\n"  # the mini cloud's VNC stand-in on each node
        )
        (self.dir / "hosts").write_text(hosts)
        conf = self.dir / "corosync.conf"
        text = self.profile.corosync_conf([(n, self.address(n)) for n in self.nodes], str(key))
        changed = not conf.exists() or conf.read_text() != text
        if changed:
            conf.write_text(text)
        uid, gid = pwd.getpwnam("hacluster").pw_uid, grp.getgrnam("haclient").gr_gid
        for node in self.nodes:
            base = self.node_dir(node)
            pcmk = base / "var-lib-pacemaker"
            for sub, mode, owned in NODE_DIRS:
                path = base / sub
                path.mkdir(parents=True, exist_ok=True)
                if owned:
                    os.chown(path, uid, gid)
                path.chmod(mode)  # after chown, which may clear setgid
            cib = pcmk / "cib" / "cib.xml"
            if not cib.exists():
                cib.write_text(self._seed_cib())
                cib.chmod(0o600)
                os.chown(cib, uid, gid)
        agent = fence_agent.render(str(self.dir), self.state.python, self.nodes)
        if not FENCE_AGENT.exists() or FENCE_AGENT.read_text() != agent:
            FENCE_AGENT.write_text(agent)
            FENCE_AGENT.chmod(0o755)
        return changed

    def _seed_cib(self) -> str:
        root = ElementTree.fromstring(sh("cibadmin", "--empty").stdout)  # noqa: S314
        crm_config = root.find("configuration/crm_config")
        if crm_config is None:
            raise LabError("cibadmin --empty gave a CIB without crm_config")
        props = ElementTree.SubElement(
            crm_config, "cluster_property_set", id="cib-bootstrap-options"
        )
        for name, value in {
            "cluster-name": "hakit-lab",
            "stonith-enabled": "true",
            **self.profile.cluster_properties(),
        }.items():
            ElementTree.SubElement(
                props, "nvpair", id=f"cib-bootstrap-options-{name}", name=name, value=value
            )
        return ElementTree.tostring(root, encoding="unicode") + "\n"

    def _node_config(self, node: str) -> dict[str, object]:
        base = self.node_dir(node)
        binds = [
            (str(base / "var-lib-pacemaker"), "/var/lib/pacemaker"),
            (str(base / "var-log-pacemaker"), "/var/log/pacemaker"),
            (str(base / "var-lib-corosync"), "/var/lib/corosync"),
            (str(base / "var-log-corosync"), "/var/log/corosync"),
            (str(base / "var-log-hakit"), "/var/log/hakit"),
            (str(base / "var-log-crmsh"), "/var/log/crmsh"),
            (str(base / "var-lib-hakit-health"), HEALTH_STATE_DIR),
            (str(self.dir / "corosync.conf"), "/etc/corosync/corosync.conf"),
            (str(self.dir / "hosts"), "/etc/hosts"),
        ]
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
        }

    def _ensure_fencing(self) -> None:
        first = self.nodes[0]
        found = self.run(
            first, ["cibadmin", "--query", "--xpath", f"//primitive[@id='{FENCE_ID}']"], check=False
        )
        if found.returncode == 0:
            return
        hosts = " ".join(self.nodes)
        xml = (
            f'<primitive id="{FENCE_ID}" class="stonith" type="fence_hakit_lab">'
            f'<instance_attributes id="{FENCE_ID}-instance_attributes">'
            f'<nvpair id="{FENCE_ID}-instance_attributes-pcmk_host_list" '
            f'name="pcmk_host_list" value="{hosts}"/></instance_attributes>'
            f'<operations><op id="{FENCE_ID}-monitor-interval-60s" name="monitor" '
            'interval="60s"/></operations></primitive>'
        )
        self.run(first, ["cibadmin", "--create", "--scope", "resources", "--xml-text", xml])

    # --- power -------------------------------------------------------------------------

    def power_on(self, node: str) -> None:
        """Boot a node (idempotent). Processes left from a crash are killed first."""
        self.check_node(node)
        if self.powered(node):
            return
        if _netns_id(self.netns(node)) is None:
            raise LabError(f"{node} has no network namespace; run `hakit lab up` first")
        self._kill_netns(self.netns(node))
        base = self.node_dir(node)
        config = base / "init.json"
        config.write_text(json.dumps(self._node_config(node)))
        with open(base / "console.log", "ab") as console:
            child = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.netns(node),
                    "unshare",
                    "--mount",
                    "--uts",
                    "--propagation",
                    "private",
                    SYSTEM_PYTHON,
                    "-I",
                    "-S",
                    str(NODE_INIT),
                    str(config),
                ],
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
        while not self.powered(node):
            if child.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"{node} did not boot; see {base / 'console.log'}")
            time.sleep(0.02)

    def cut(self, node: str) -> None:
        """Power cut: SIGKILL every process in the node, its init included."""
        self.check_node(node)
        left = self._kill_netns(self.netns(node))
        if left:
            raise LabError(f"{node}: processes {left} survived SIGKILL")

    def _kill_netns(self, netns: str, timeout: float = 10) -> list[int]:
        pids = pids_in_netns(netns)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids_in_netns(netns) if proc.is_alive(p)]
            time.sleep(0.02)
        return pids

    def shutdown(self, node: str, timeout: float = 90) -> None:
        """Orderly power-off: the init stops pacemakerd, then corosync."""
        pid = self.init_pid(node)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.powered(node) and time.monotonic() < deadline:
                time.sleep(0.1)
        self._kill_netns(self.netns(node))

    # --- network faults ----------------------------------------------------------------

    def isolate(self, node: str) -> None:
        """Partition a node: its link to the bridge goes down."""
        self.check_node(node)
        sh("ip", "link", "set", f"hakit-v{node.removeprefix('node')}", "down")

    def heal(self) -> None:
        for node in self.nodes:
            sh("ip", "link", "set", f"hakit-v{node.removeprefix('node')}", "up", check=False)

    def restore(self) -> None:
        """Undo every fault: links up, powered-off nodes booted (not waiting for them)."""
        self.heal()
        for node in self.nodes:
            if not self.powered(node):
                self.power_on(node)

    def kill(self, node: str, process: str) -> list[int]:
        """SIGKILL the processes of `node` named `process` (comm or argv[0] basename)."""
        self.check_node(node)
        victims = []
        for pid in pids_in_netns(self.netns(node)):
            info = proc.stat(pid)
            names = {info.comm if info else "", os.path.basename(_cmdline(pid).split(" ", 1)[0])}
            if process in names:
                os.kill(pid, signal.SIGKILL)
                victims.append(pid)
        if not victims:
            raise LabError(f"no process named {process!r} runs on {node}")
        return victims

    # --- status and down ------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        """Power, membership and DC as one running node sees them."""
        nodes: dict[str, dict[str, object]] = {
            n: {"power": "on" if self.powered(n) else "off", "online": False} for n in self.nodes
        }
        result: dict[str, object] = {
            "profile": self.state.profile,
            "dc": None,
            "quorate": False,
            "nodes": nodes,
        }
        for node in self.nodes:
            status = self.cluster_status(node)
            if status is None:
                continue
            result["dc"], result["quorate"] = status.dc, status.quorate
            for seen in status.nodes:
                if seen.name in nodes:
                    nodes[seen.name]["online"] = seen.online
            break
        return result

    def cluster_status(self, node: str, timeout: float = 10) -> ClusterStatus | None:
        """crm_mon's view from `node`, or None if it cannot answer."""
        if not self.powered(node):
            return None
        try:
            done = self.run(
                node,
                ["crm_mon", "--one-shot", "--inactive", "--output-as=xml", "--include=all"],
                timeout=timeout,
                check=False,
            )
        except LabError:
            return None
        if done.returncode != 0:
            return None
        try:
            return ClusterStatus(ElementTree.fromstring(done.stdout))  # noqa: S314
        except ElementTree.ParseError:
            return None

    def wait_until_online(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        want = set(self.nodes)
        while time.monotonic() < deadline:
            status = self.cluster_status(self.nodes[0], timeout=5)
            if status and status.dc and {n.name for n in status.nodes if n.online} >= want:
                return
            time.sleep(0.2)
        raise LabError(
            f"the cluster did not come up within {timeout:g}s; see "
            f"{self.node_dir(self.nodes[0]) / 'var-log-pacemaker'}"
        )

    def down(self, purge: bool = False) -> None:
        """Stop everything, delete namespaces, links and the fence agent; `purge` also
        deletes the lab directory (node state and logs)."""
        if os.geteuid() != 0:
            raise LabError("the lab needs root; run `hakit lab down` as root")
        for node in node_names(9):
            pid = self.init_pid(node) if node in self.nodes else None
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
        for node in self.nodes:
            deadline = time.monotonic() + 60
            while self.powered(node) and time.monotonic() < deadline:
                time.sleep(0.1)
        self._stop_infra()
        self._delete_network()
        if FENCE_AGENT.exists() and "hakit lab" in FENCE_AGENT.read_text():
            FENCE_AGENT.unlink()
        anchor = self.anchor_pid()
        if anchor is not None:
            os.kill(anchor, signal.SIGKILL)
        if purge and self.dir.exists():
            shutil.rmtree(self.dir)

    def _stop_infra(self) -> None:
        if _netns_id(INFRA_NETNS) is not None:
            from hakit.lab import infra

            infra.stop_infra(self.dir / "infra", INFRA_NETNS)

    def _delete_network(self) -> None:
        for netns in [self.netns(n) for n in node_names(9)] + [INFRA_NETNS]:
            if _netns_id(netns) is not None:
                left = self._kill_netns(netns)
                if left:
                    raise LabError(f"{netns}: processes {left} survived SIGKILL")
                sh("ip", "netns", "delete", netns, check=False)
        for link in [f"hakit-v{i}" for i in range(1, 10)] + ["hakit-vinfra"]:
            if sh("ip", "link", "show", link, check=False).returncode == 0:
                sh("ip", "link", "delete", link, check=False)
        if sh("ip", "link", "show", BRIDGE, check=False).returncode == 0:
            sh("ip", "link", "delete", BRIDGE)

    def _any_alive(self, node: str) -> bool:
        return bool(pids_in_netns(self.netns(node)))
