"""L3 HA routers laid out as neutron's L3 agents lay them out, with real keepalived, for
the router watch (hakit.resource_agents.health.routers). Not neutron itself: neutron's
l3-agent needs neutron-server, OVS and a message bus; this builds what they leave on
each host, configured as neutron configures it:

- an agent host: a mount namespace with its own /run/netns (so each host has its own
  `qrouter-<router id>` namespaces, as on separate machines);
- per router and host: `qrouter-<id>`, its `ha-` interface on the HA network (a veth to
  a bridge in a namespace of its own; 169.254.192.<host>/18), and keepalived with
  neutron's vrrp_instance (state BACKUP, nopreempt, priority 50, the HA virtual address
  169.254.0.<vrid>/24 on ha-, advert_int as ha_vrrp_advert_int);
- faults: the HA network cut for one host's router (each side becomes master: a dual
  master), keepalived SIGKILLed (and respawned, as neutron's process monitor does), and
  a planned failover (keepalived stopped: it gives up mastership at once).

    lab = RouterLab(hosts=3, routers=2, advert_interval=1); lab.up(); ...; lab.down()

With `on_hosts` (name → a PID in a mount namespace, e.g. a cluster lab node's init) the
routers live in those hosts' /run/netns instead, where a publisher running there reads
them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from hakit.lab.errors import LabError
from hakit.lab.namespaces import sh
from hakit.ocf import proc
from hakit.resource_agents.health import routers

KEEPALIVED_CONF = """\
global_defs {{
    notification_email_from neutron@openstack.local
    router_id neutron
}}
vrrp_instance VR_{vrid} {{
    state BACKUP
    interface {ha}
    virtual_router_id {vrid}
    priority 50
    garp_master_delay 60
    nopreempt
    advert_int {advert}
    track_interface {{
        {ha}
    }}
    virtual_ipaddress {{
        169.254.0.{vrid}/24 dev {ha}
    }}
}}
"""


@dataclass
class Instance:
    """One router on one host: its interface names and keepalived."""

    router: str
    host: int
    vrid: int
    ha: str
    port: str  # the veth's end on the HA network's bridge
    workdir: Path
    keepalived: subprocess.Popen[bytes] | None = None


@dataclass
class RouterLab:
    hosts: int = 3
    routers: int = 2
    advert_interval: int = 1
    on_hosts: dict[str, int] = field(default_factory=dict)
    host_pids: dict[int, int] = field(default_factory=dict)
    network_pid: int = 0
    instances: list[Instance] = field(default_factory=list)
    _keepers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def host_names(self) -> list[str]:
        return list(self.on_hosts) or [f"agent{h}" for h in range(1, self.hosts + 1)]

    def router_ids(self) -> list[str]:
        return sorted({i.router for i in self.instances})

    # --- building --------------------------------------------------------------------

    def up(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="hakit-routers-")
        try:
            network = self._keep(["unshare", "--net", "sleep", "infinity"])
            self.network_pid = network.pid
            self._in(self.network_pid, "ip", "link", "add", "br0", "type", "bridge")
            self._in(self.network_pid, "ip", "link", "set", "br0", "up")
            if self.on_hosts:
                self.hosts = len(self.on_hosts)
                self.host_pids = dict(enumerate(self.on_hosts.values(), 1))
            else:
                for host in range(1, self.hosts + 1):
                    script = "mount -t tmpfs hakit-routers /run/netns && exec sleep infinity"
                    keeper = self._keep(
                        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
                    )
                    self.host_pids[host] = keeper.pid
            for index in range(1, self.routers + 1):
                router = str(uuid.uuid4())
                for host in range(1, self.hosts + 1):
                    self._add(router, host, index)
        except BaseException:
            self.down()
            raise

    def _keep(self, argv: list[str]) -> subprocess.Popen[bytes]:
        """A process that holds a namespace; returned once it is `sleep` (its set-up,
        the unshare and any mount, is done)."""
        keeper = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        self._keepers.append(keeper)
        deadline = time.monotonic() + 10
        while (info := proc.stat(keeper.pid)) is None or info.comm != "sleep":
            if time.monotonic() > deadline or keeper.poll() is not None:
                raise LabError(f"{' '.join(argv)}: did not come up")
            time.sleep(0.01)
        return keeper

    def _in(self, net_pid: int, *argv: str) -> None:
        sh("nsenter", "-t", str(net_pid), "-n", *argv)

    def on_host(
        self, host: int, *argv: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return sh("nsenter", "-t", str(self.host_pids[host]), "-m", *argv, check=check)

    def _add(self, router: str, host: int, vrid: int) -> None:
        assert self._tmp is not None  # noqa: S101 — set by up()
        namespace = routers.NAMESPACE_PREFIX + router
        ha, port = f"ha-{router[:8]}-{host}", f"hkr{vrid:03d}h{host}"
        workdir = Path(self._tmp.name, f"{router}-{host}")
        workdir.mkdir()
        self.on_host(host, "ip", "netns", "add", namespace)
        sh("ip", "link", "add", ha, "type", "veth", "peer", "name", port)
        self.on_host(host, "ip", "link", "set", ha, "netns", namespace)
        sh("ip", "link", "set", port, "netns", str(self.network_pid))
        self._in(self.network_pid, "ip", "link", "set", port, "master", "br0", "up")
        inside = ("ip", "netns", "exec", namespace)
        self.on_host(host, *inside, "ip", "link", "set", "lo", "up")
        self.on_host(host, *inside, "ip", "addr", "add", f"169.254.192.{host}/18", "dev", ha)
        self.on_host(host, *inside, "ip", "link", "set", ha, "up")
        conf = KEEPALIVED_CONF.format(vrid=vrid, ha=ha, advert=self.advert_interval)
        (workdir / "keepalived.conf").write_text(conf)
        instance = Instance(router, host, vrid, ha, port, workdir)
        self.instances.append(instance)
        self.start_keepalived(instance)

    def start_keepalived(self, instance: Instance) -> None:
        """keepalived in the router's namespace, in the foreground of its own process."""
        work = instance.workdir
        for name in ("keepalived.pid", "vrrp.pid"):
            # A killed keepalived's VRRP child stays a zombie here (this machine's PID 1
            # does not reap orphans); keepalived would take it for a running daemon.
            path = work / name
            try:
                pid = int(path.read_text().strip())
            except (OSError, ValueError):
                continue
            if not proc.is_alive(pid):
                path.unlink()
        argv = ["nsenter", "-t", str(self.host_pids[instance.host]), "-m"]
        argv += ["ip", "netns", "exec", routers.NAMESPACE_PREFIX + instance.router]
        argv += ["keepalived", "-n", "-l", "-D", "-f", str(work / "keepalived.conf")]
        argv += ["-p", str(work / "keepalived.pid"), "-r", str(work / "vrrp.pid")]
        with open(work / "keepalived.log", "ab") as log:
            instance.keepalived = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )

    def stop_keepalived(self, instance: Instance, signum: int = signal.SIGTERM) -> None:
        """Stop it (SIGTERM: it gives mastership up and removes its addresses; SIGKILL:
        it leaves them) and wait for its process group."""
        process = instance.keepalived
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signum)
        if signum == signal.SIGKILL:  # its VRRP child too (a session of its own)
            for pid in self._vrrp_children(instance):
                if proc.is_alive(pid):
                    os.kill(pid, signal.SIGKILL)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(proc.is_alive(p) for p in self._vrrp_children(instance)):
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)

    def _vrrp_children(self, instance: Instance) -> list[int]:
        try:
            return [int((instance.workdir / "vrrp.pid").read_text().strip())]
        except (OSError, ValueError):
            return []

    def down(self) -> None:
        for instance in self.instances:
            self.stop_keepalived(instance, signal.SIGKILL)
            for pid in self._vrrp_children(instance):
                if proc.is_alive(pid):
                    os.kill(pid, signal.SIGKILL)
        for keeper in self._keepers:
            if keeper.poll() is None:
                keeper.kill()
                keeper.wait(timeout=10)
        for instance in self.instances:
            sh("ip", "link", "del", instance.port, check=False)
            if self.on_hosts:  # the hosts outlive the routers
                namespace = routers.NAMESPACE_PREFIX + instance.router
                self.on_host(instance.host, "ip", "netns", "del", namespace, check=False)
        self.instances.clear()
        self._keepers.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # --- reading and faults ----------------------------------------------------------

    def readings(self) -> dict[str, dict[str, str]]:
        """Each host's routers as the watch reads them there (`routers.COMMAND`)."""
        found = {}
        for host, name in zip(range(1, self.hosts + 1), self.host_names(), strict=True):
            done = self.on_host(host, *routers.COMMAND, check=False)
            found[name] = routers.parse_states(done.stdout)
        return found

    def instance(self, router: str, host: int) -> Instance:
        return next(i for i in self.instances if i.router == router and i.host == host)

    def active_hosts(self, router: str) -> list[int]:
        readings = self.readings()
        return [
            h
            for h, name in enumerate(self.host_names(), 1)
            if readings[name].get(router) == routers.ACTIVE
        ]

    def cut(self, router: str, host: int, cut: bool = True) -> None:
        """The HA network cut (or back) for one host's instance of the router: its bridge
        port stops forwarding (STP state disabled) while the link keeps its carrier
        (a link down would put keepalived in FAULT: it tracks the ha- interface)."""
        port = self.instance(router, host).port
        state = "0" if cut else "3"  # disabled, forwarding
        self._in(self.network_pid, "bridge", "link", "set", "dev", port, "state", state)
