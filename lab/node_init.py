"""The "init" of one cluster node on this machine: runs inside the node's namespaces, as
the root of its process tree. The lab's nodes and the tests' single-node cluster both boot
with it.

Started as `[ip netns exec NETNS] unshare [--net] --mount --uts --propagation private
/usr/bin/python3 -I -S node_init.py CONFIG`. It sets the hostname, a private /run and
/dev/shm, bind-mounts the node's state directories over /var/lib/pacemaker,
/var/log/pacemaker and the Corosync directories, starts its services (e.g. sshd), starts
corosync and then pacemakerd in the foreground (`hakit.ocf.cluster.COROSYNC`,
`PACEMAKERD`; at boot, or on request), and reaps orphans (it is a
child subreaper). SIGTERM (or SIGINT, SIGHUP) means an orderly shutdown: pacemakerd, then
corosync, then the services. It needs no hakit install: run as a script, it imports
`hakit.ocf` from the tree it sits in (standard library only). Its PID is in the node's
/run/hakit/init.pid.

The config contract
===================
CONFIG is a JSON object. Required keys (what the lab writes):

    name            the node's host name (also its Corosync/Pacemaker node name)
    binds           [[source, target], ...]: bind mounts, in order; a missing target
                    directory is created (a mount point such as /var/log/hakit)
    env             the whole environment of corosync and pacemakerd (and so of the agents)
    hacluster_uid   owner of /run/crm
    haclient_gid    its group

Optional keys (the tests' single node uses them; the lab's defaults in brackets):

    loopback_up              bring `lo` up: a fresh `unshare --net` has it down [false]
    state_file               written (atomically) once both daemons run: {"init",
                             "corosync", "pacemakerd", "net", "mnt"} [none]
    watch_pid                shut down by itself when this process exits (a pidfd),
                             e.g. when the test runner is killed [none]
    kill_leftovers           after the daemons, SIGKILL whatever else still runs in the
                             node's network and mount namespaces [false]
    require_corosync         a corosync that does not answer within 30 s fails the boot;
                             otherwise pacemakerd is started anyway [false]
    pacemakerd_stop_timeout  seconds before SIGKILL [60]
    corosync_stop_timeout    seconds before SIGKILL [30]
    services                 [[argv...], ...]: spawned after the mounts (output to the
                             console), restarted when they exit, stopped (SIGTERM, then
                             SIGKILL after 5 s) after the cluster at shutdown, e.g. sshd [[]]
    cluster                  "boot": the daemons start at boot, the init's life is theirs;
                             "on-request": SIGUSR1 starts them (corosync, then pacemakerd;
                             either left over is stopped first), SIGUSR2 stops them in order,
                             the init stays up; they start at boot only if `enabled_file`
                             exists. `hakit-lab-node` (lab/node_ctl.py) sends these ["boot"]
    enabled_file             on-request: the flag file (a path inside the node) [none]
    remoted                  the path of pacemaker-remoted: the node is a Pacemaker Remote
                             node, which runs it in the foreground instead of corosync and
                             pacemakerd (at boot, or on request) [none]

In on-request mode the init keeps /run/hakit/cluster.json: {"mode", "enabled_file",
"daemons" (the names it runs: corosync and pacemakerd, or pacemaker-remoted),
"state": "stopped" | "starting" | "running" | "stopping" | "failed", "error", "time"}.

The console (stdout) gets one line per step; "boot failed: ..." says why a boot failed.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import types
from collections.abc import Sequence

if "hakit" not in sys.modules:  # a script under `python3 -I -S`: hakit is this file's tree
    _hakit = types.ModuleType("hakit")
    _hakit.__path__ = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
    sys.modules["hakit"] = _hakit

from hakit.ocf import cluster, proc

PR_SET_CHILD_SUBREAPER = 36
COROSYNC_START_TIMEOUT = 30.0
#: The config keys every node has; the others are optional (see the module docstring).
REQUIRED = ("name", "binds", "env", "hacluster_uid", "haclient_gid")
#: In the node's private /run: the init's PID and, on request, the cluster's state.
INIT_PID = "/run/hakit/init.pid"
CLUSTER_STATE = "/run/hakit/cluster.json"
SERVICE_STOP_TIMEOUT = 5.0


def ended(status: int) -> str:
    """A wait status in words."""
    code = os.waitstatus_to_exitcode(status)
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"


class NodeInit:
    def __init__(self, config: dict[str, object]) -> None:
        missing = [key for key in REQUIRED if key not in config]
        if missing:
            raise ValueError(f"node config lacks {', '.join(missing)}")
        self.config = config
        self.stop = False
        self.exited: dict[int, int] = {}
        self.by_request = config.get("cluster", "boot") == "on-request"
        self.requests: list[str] = []
        self.daemons: dict[str, int] = {}  # name -> pid, in start order
        #: what a running cluster side of this node is: a remote node runs remoted alone
        self.expected = [cluster.REMOTED] if config.get("remoted") else list(cluster.DAEMONS)
        self.services: dict[int, list[str]] = {}  # pid -> argv
        self.started: dict[int, float] = {}  # service pid -> when (monotonic)
        self.net = proc.namespace("self", "net") or ""
        self.mnt = proc.namespace("self", "mnt") or ""

    @staticmethod
    def log(message: str) -> None:
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        print(f"{stamp} init[{os.getpid()}] {message}", flush=True)

    def option(self, key: str, default: float) -> float:
        return float(self.config.get(key, default))  # type: ignore[arg-type]

    def setup(self) -> None:
        cfg = self.config
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            self.log(f"prctl(PR_SET_CHILD_SUBREAPER) failed: errno {ctypes.get_errno()}")
        socket.sethostname(str(cfg["name"]))
        uid, gid = int(cfg["hacluster_uid"]), int(cfg["haclient_gid"])  # type: ignore[call-overload]
        if cfg.get("loopback_up"):
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(["mount", "--make-rprivate", "/"], check=True)
        tmpfs = ["mount", "-t", "tmpfs", "-o"]
        subprocess.run(
            [*tmpfs, "mode=0755,size=64m", f"hakit-run-{cfg['name']}", "/run"], check=True
        )
        for path, mode, owner in (
            ("/run/crm", 0o750, (uid, gid)),
            ("/run/resource-agents", 0o1755, (0, 0)),
            ("/run/fence-agents", 0o1755, (0, 0)),
            ("/run/lock", 0o1777, (0, 0)),
            ("/run/hakit", 0o755, (0, 0)),
            ("/run/sshd", 0o755, (0, 0)),  # sshd's privilege separation directory
        ):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, mode)
            os.chown(path, *owner)
        os.symlink("/dev/shm", "/run/shm")  # noqa: S108 — the node's own tmpfs
        shm = "/dev/shm"  # noqa: S108
        subprocess.run([*tmpfs, "mode=1777,size=256m", f"hakit-shm-{cfg['name']}", shm], check=True)
        for source, target in cfg["binds"]:  # type: ignore[attr-defined]
            if not os.path.exists(target):
                os.makedirs(target)  # a mount point (e.g. /var/log/hakit)
            subprocess.run(["mount", "--bind", source, target], check=True)
        self.write_json(INIT_PID, os.getpid())

    def spawn(self, args: Sequence[str], logfile: str | None = None) -> int:
        """Start `args`; output appended to `logfile`, or to the console."""
        out = open(logfile, "ab") if logfile else None  # noqa: SIM115 — closed below
        try:
            child = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                env=dict(self.config["env"]),  # type: ignore[call-overload]
                cwd="/",
            )
        finally:
            if out:
                out.close()
        return child.pid

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.exited[pid] = status

    def wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.reap()
            if pid in self.exited:
                return True
            time.sleep(0.05)
        return False

    def terminate(self, pid: int, name: str, timeout: float) -> None:
        self.reap()
        if pid in self.exited:
            return
        began = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        if self.wait_exit(pid, timeout):
            self.log(f"{name} stopped in {time.monotonic() - began:.2f}s")
            return
        self.log(f"{name} did not stop within {timeout:.0f}s: SIGKILL")
        os.kill(pid, signal.SIGKILL)
        self.wait_exit(pid, 5.0)

    def wait_for_corosync(self, pid: int) -> None:
        deadline = time.monotonic() + COROSYNC_START_TIMEOUT
        while time.monotonic() < deadline and not self.stop:
            if cluster.corosync_answers():
                return
            self.reap()
            if pid in self.exited:
                raise RuntimeError("corosync exited during start-up (see corosync.log)")
            time.sleep(0.1)
        if not self.stop and self.config.get("require_corosync"):
            raise RuntimeError(f"corosync did not answer within {COROSYNC_START_TIMEOUT:.0f}s")

    def start_cluster(self) -> None:
        """corosync, then pacemakerd (or a remote node's pacemaker-remoted alone); a
        RuntimeError if corosync fails to start."""
        remoted = self.config.get("remoted")
        if remoted:
            log = "/var/log/pacemaker/pacemaker-remoted.stderr"
            self.daemons[cluster.REMOTED] = self.spawn([str(remoted)], log)
            self.log(f"{cluster.REMOTED} {self.daemons[cluster.REMOTED]}")
            return
        corosync = self.spawn(cluster.COROSYNC, "/var/log/corosync/corosync.stderr")
        self.daemons[cluster.DAEMONS[0]] = corosync
        self.wait_for_corosync(corosync)
        pacemakerd = self.spawn(cluster.PACEMAKERD, "/var/log/pacemaker/pacemakerd.stderr")
        self.daemons[cluster.DAEMONS[1]] = pacemakerd
        self.write_state(corosync, pacemakerd)
        self.log(", ".join(f"{name} {pid}" for name, pid in self.daemons.items()))

    def stop_cluster(self) -> None:
        """pacemakerd, then corosync: SIGTERM, SIGKILL after their stop timeouts."""
        timeouts = dict(
            zip(
                cluster.DAEMONS,
                (
                    self.option("corosync_stop_timeout", 30),
                    self.option("pacemakerd_stop_timeout", 60),
                ),
                strict=True,
            )
        )
        remoted = self.option("pacemakerd_stop_timeout", 60)  # pacemaker-remoted: the same
        for name in reversed(list(self.daemons)):
            self.terminate(self.daemons.pop(name), name, timeouts.get(name, remoted))

    def cluster_running(self) -> bool:
        self.reap()
        running = set(self.daemons.values()) - set(self.exited)
        return set(self.daemons) == set(self.expected) and len(running) == len(self.expected)

    def cluster_state(self, state: str, error: str = "") -> None:
        document = {
            "mode": "on-request",
            "enabled_file": self.config.get("enabled_file"),
            "daemons": self.expected,
            "state": state,
            "error": error,
            "time": time.time(),
        }
        self.write_json(CLUSTER_STATE, document)

    def serve(self) -> None:
        """Act on the cluster requests received (SIGUSR1 start, SIGUSR2 stop)."""
        while self.requests and not self.stop:
            request = self.requests.pop(0)
            if not self.by_request:
                self.log(f"cluster {request} request ignored: this node's cluster runs from boot")
            elif request == "start" and not self.cluster_running():
                self.stop_cluster()  # what is left of an earlier run
                self.cluster_state("starting")
                try:
                    self.start_cluster()
                except RuntimeError as error:
                    self.log(f"cluster start failed: {error}")
                    self.stop_cluster()
                    self.cluster_state("failed", str(error))
                else:
                    self.cluster_state("running")
            elif request == "stop" and self.daemons:
                self.cluster_state("stopping")
                self.stop_cluster()
                self.cluster_state("stopped")

    def start_service(self, argv: list[str]) -> None:
        pid = self.spawn(argv)
        self.services[pid] = argv
        self.started[pid] = time.monotonic()
        self.log(f"service {argv[0]} {pid}")

    def supervise(self) -> None:
        """Restart services that exited (at most once a second); on request, notice
        cluster daemons that exited."""
        self.reap()
        for pid in [p for p in self.services if p in self.exited]:
            argv = self.services.pop(pid)
            if time.monotonic() - self.started.pop(pid) < 1:
                time.sleep(1)
            self.log(f"service {argv[0]} {pid} {ended(self.exited[pid])}: restarting")
            self.start_service(argv)
        if self.by_request:
            for name, pid in list(self.daemons.items()):
                if pid in self.exited:
                    del self.daemons[name]
                    self.log(f"{name} {pid} {ended(self.exited[pid])}")
                    self.cluster_state("failed", f"{name} {ended(self.exited[pid])}")

    def stop_services(self) -> None:
        for pid in list(self.services):
            self.terminate(pid, self.services.pop(pid)[0], SERVICE_STOP_TIMEOUT)

    def on_signal(self, signum: int, frame: object) -> None:
        self.stop = True

    def on_request(self, signum: int, frame: object) -> None:
        self.requests.append("start" if signum == signal.SIGUSR1 else "stop")

    @staticmethod
    def write_json(path: str, document: object) -> None:
        """Write atomically."""
        with open(f"{path}.tmp", "w", encoding="utf-8") as handle:
            json.dump(document, handle)
        os.rename(f"{path}.tmp", path)

    def write_state(self, corosync: int, pacemakerd: int) -> None:
        path = self.config.get("state_file")
        if path:
            state = {
                "init": os.getpid(),
                **dict(zip(cluster.DAEMONS, (corosync, pacemakerd), strict=True)),
            }
            self.write_json(str(path), {**state, "net": self.net, "mnt": self.mnt})

    def watch(self) -> int | None:
        """A pidfd of the process whose exit shuts the node down (None: nothing to watch)."""
        pid = self.config.get("watch_pid")
        if pid is None:
            return None
        try:
            return os.pidfd_open(int(pid))  # type: ignore[call-overload]
        except OSError:
            self.log(f"process {pid} that started the node is gone")
            self.stop = True
            return None

    def idle(self, watched: int | None) -> None:
        if watched is None:
            time.sleep(0.5)
        elif select.select([watched], [], [], 0.5)[0]:
            self.log(f"process {self.config['watch_pid']} that started the node is gone")
            self.stop = True
        self.reap()

    def main(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self.on_signal)
        for signum in (signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, self.on_request)
        watched = self.watch()
        try:
            self.setup()
            self.log(f"node {self.config['name']} booting ({self.net}, {self.mnt})")
            for argv in self.config.get("services") or []:  # type: ignore[attr-defined]
                self.start_service(list(argv))
            if not self.by_request:
                self.start_cluster()
            else:
                self.cluster_state("stopped")
                enabled = self.config.get("enabled_file")
                if enabled and os.path.exists(str(enabled)):
                    self.log(f"cluster enabled ({enabled}): starting it")
                    self.requests.insert(0, "start")
            while not self.stop:
                self.serve()
                self.supervise()
                self.idle(watched)
        except Exception as error:  # the console log is the node's only voice
            self.log(f"boot failed: {error}")
        finally:
            self.log("orderly shutdown")
            self.stop_cluster()
            self.stop_services()
            left: list[int] = []
            if self.config.get("kill_leftovers") and self.net and self.mnt:
                left = proc.kill_namespaces(self.net, self.mnt, exclude=[os.getpid()], timeout=5)
            self.reap()
            self.log(f"down (could not kill {left})" if left else "down")
        return 0


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        sys.exit(NodeInit(json.load(handle)).main())
