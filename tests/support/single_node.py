"""A real single-node Pacemaker/Corosync cluster, isolated from the host, for tests.

The node is a lab node: `hakit.lab.node_init` (its config contract is in its docstring)
under ``unshare --net --mount --uts --propagation private``, in a new session, output in
``<workdir>/console.log``; it boots from files `tests.support.node_files` writes (the
lab's corosync.conf with one node on 127.0.0.1, quorate on its own; a CIB seeded with
:data:`DEFAULT_PROPERTIES`: no fencing device, ``dc-deadtime=1s``, which is most of the
~3.8 s to "online, quorate, DC"). Nothing of the host's cluster files is read or written,
no named netns is made, no mount is visible on the host, and the node shuts down by
itself if the process that started it dies.

Client commands enter with ``nsenter -t <init pid> -n -m -u`` (libqb's IPC buffers are in
the node's own ``/dev/shm``): ``run()``, or `hakit.ocf.cluster` calls inside ``with
cluster.using(node.runner):``. ``stop()`` finds what is left by ``/proc/PID/ns/{net,mnt}``
(`hakit.ocf.proc`), with the namespaces held open so that their inode numbers cannot be
reused meanwhile, and SIGKILLs it. State and logs stay in the work directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final

from hakit.lab import node_init
from hakit.ocf import cluster, proc
from tests.support import node_files
from tests.support.node_files import BASE_ENV
from tests.support.resource_state import ResourceState, resource_state
from tests.support.waiting import wait_for

__all__ = [
    "CLUSTER_NAME",
    "DEFAULT_PROPERTIES",
    "NODE_NAME",
    "ClusterCommandError",
    "ResourceState",
    "SingleNodeCluster",
]

NODE_NAME: Final = "hakit-test1"
"""Host name of the node, also its corosync/pacemaker node name."""
CLUSTER_NAME: Final = "hakit-lab"
"""``totem.cluster_name`` of the corosync.conf (the lab's, which names every cluster so)."""
DEFAULT_PROPERTIES: Final[Mapping[str, str]] = {
    "stonith-enabled": "false",
    "dc-deadtime": "1s",
    "cluster-recheck-interval": "15s",
}
"""Cluster properties seeded into the CIB before the first start (see module doc)."""
SYSTEM_PYTHON: Final = "/usr/bin/python3"
# The node's init is lab/node_init.py, named by the environment, not the command line:
# the lab recognises its own nodes' inits by "node_init.py" in theirs.
_INIT_CODE: Final = (
    "import os, runpy; runpy.run_path(os.environ['HAKIT_NODE_INIT'], run_name='__main__')"
)


class ClusterCommandError(subprocess.CalledProcessError):
    """A command run inside the node failed; the message includes its output."""

    def __str__(self) -> str:
        def tail(text: object) -> str:
            lines = str(text or "").strip().splitlines()
            return "\n".join(lines[-15:]) if lines else "(empty)"

        return (
            f"{super().__str__()}\n--- stdout (tail) ---\n{tail(self.stdout)}"
            f"\n--- stderr (tail) ---\n{tail(self.stderr)}"
        )


class SingleNodeCluster:
    """A single-node cluster in private namespaces: ``start()`` ... ``stop()``, or ``with
    SingleNodeCluster(path) as cluster:``. Requires root; ``start()`` refuses if a cluster
    stack runs in the caller's network namespace, and resets the state under ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        *,
        node_name: str = NODE_NAME,
        properties: Mapping[str, str] | None = None,
        daemon_env: Mapping[str, str] | None = None,
    ) -> None:
        """Prepare (not start) a node whose files live under ``workdir``. ``properties`` are
        merged over :data:`DEFAULT_PROPERTIES` (``{"dc-deadtime": "20s"}`` measures the
        default start-up); ``daemon_env`` over the environment of corosync, pacemakerd and
        so the agents (e.g. ``{"PCMK_debug": "yes"}``)."""
        self.workdir = Path(workdir).absolute()
        self.node_name = node_name
        self.properties: dict[str, str] = {**DEFAULT_PROPERTIES, **(properties or {})}
        self.daemon_env: dict[str, str] = {**node_files.default_daemon_env(), **(daemon_env or {})}
        self.timings: dict[str, float] = {}
        """Seconds from the start of the last ``start()``/``stop()`` to each milestone."""
        self._init: subprocess.Popen[bytes] | None = None
        self._net: str | None = None
        self._mnt: str | None = None
        self._ns_fds: list[int] = []
        self._lock_fd: int | None = None

    @property
    def state_dir(self) -> Path:
        """Host path of the directories that are bind-mounted into the node."""
        return self.workdir / "state"

    @property
    def console_log(self) -> Path:
        """Output of the node's init."""
        return self.workdir / "console.log"

    @property
    def pacemaker_log(self) -> Path:
        return self.state_dir / "var-log-pacemaker" / "pacemaker.log"

    @property
    def corosync_log(self) -> Path:
        return self.state_dir / "var-log-corosync" / "corosync.log"

    @property
    def init_pid(self) -> int:
        """PID of the node's init (usable with ``nsenter -t``); RuntimeError if down."""
        if self._init is None or self._init.poll() is not None:
            raise RuntimeError(f"the cluster node is not running (see {self.console_log})")
        return self._init.pid

    @property
    def running(self) -> bool:
        return self._init is not None and self._init.poll() is None

    @property
    def runner(self) -> cluster.Runner:
        """Runs `hakit.ocf.cluster` calls inside the node: ``with cluster.using(node.runner)``."""
        prefix = ["nsenter", "-t", str(self.init_pid), "-n", "-m", "-u", "--"]
        return cluster.Runner(prefix, env=BASE_ENV, name=self.node_name)

    def __enter__(self) -> SingleNodeCluster:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = 90.0) -> None:
        """Boot the node and return once it is online, quorate and DC. RuntimeError if the
        preconditions are not met, TimeoutError (after cleaning up) if it is not up in time."""
        if self._init is not None:
            raise RuntimeError("SingleNodeCluster.start() called twice without stop()")
        node_files.preflight(self.workdir)
        t0 = time.monotonic()
        self.timings = {}
        self._lock_fd = node_files.lock(self.workdir)
        try:
            self._spawn_init(
                node_files.prepare(self.workdir, self.node_name, self.properties, self.daemon_env)
            )
            self.timings["namespaces"] = time.monotonic() - t0
            while not (self.workdir / "init-state.json").exists():
                if not self.running:
                    raise RuntimeError("the node's init exited during start-up")
                if time.monotonic() > t0 + timeout:
                    raise TimeoutError("the node's init did not start corosync and pacemakerd")
                time.sleep(0.05)
            self.timings["daemons_started"] = time.monotonic() - t0
            self.wait_for(
                self._is_up,
                timeout=max(1.0, t0 + timeout - time.monotonic()),
                interval=0.2,
                description=f"node {self.node_name} online, quorate and DC",
            )
            self.timings["dc"] = time.monotonic() - t0
            with cluster.using(self.runner):  # already in the seeded CIB: check it was taken
                for name, value in self.properties.items():
                    query = ["crm_attribute", "-t", "crm_config", "-n", name, "-G", "-q"]
                    if cluster.run(query, ok_codes=range(256))[1].strip() != value:
                        cluster.set_cluster_property(name, value, timeout=30)
            self.timings["ready"] = time.monotonic() - t0
        except BaseException as exc:
            detail = node_files.diagnostics(self.workdir)
            with contextlib.suppress(Exception):
                self.stop(timeout=30.0)
            if isinstance(exc, RuntimeError | TimeoutError):
                raise type(exc)(f"{exc}\n{detail}") from exc
            raise

    def stop(self, timeout: float = 90.0) -> None:
        """Shut the node down (orderly, then SIGKILL) and check that nothing is left.
        Idempotent. RuntimeError if processes of the node survive SIGKILL."""
        init, self._init = self._init, None
        survivors: list[int] = []
        if init is not None:
            t0 = time.monotonic()
            if init.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    init.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    init.wait(timeout=timeout)
            self.timings["stop_orderly"] = time.monotonic() - t0
            if self._net and self._mnt:
                survivors = proc.kill_namespaces(self._net, self._mnt, timeout=10.0)
            if init.poll() is None:
                init.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                init.wait(timeout=10.0)
            self.timings["stop"] = time.monotonic() - t0
        for fd in [*self._ns_fds, *([self._lock_fd] if self._lock_fd is not None else [])]:
            os.close(fd)
        self._ns_fds, self._lock_fd, self._net, self._mnt = [], None, None, None
        if survivors:
            raise RuntimeError(f"processes of the test node survived SIGKILL: {survivors}")

    def node_pids(self) -> list[int]:
        """PIDs of every process in the node (init, daemons, agents, ``run()`` commands);
        empty when the node is not started."""
        return proc.in_namespaces(self._net, self._mnt) if self._net and self._mnt else []

    @property
    def namespaces(self) -> tuple[str, str] | None:
        """``(net, mnt)`` such as ``net:[4026532300]`` while started, else None (inode
        numbers are reused once a namespace is freed: do not look for them after stop())."""
        return (self._net, self._mnt) if self._net and self._mnt else None

    def run(
        self,
        args: Sequence[str],
        timeout: float = 30.0,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` inside the node (:data:`BASE_ENV` plus ``env``, cwd ``/``, ``input``
        or /dev/null on stdin). ClusterCommandError on a non-zero exit if ``check``."""
        done = subprocess.run(
            self.runner.command(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**BASE_ENV, **(env or {})},
            cwd="/",
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            raise ClusterCommandError(done.returncode, list(args), done.stdout, done.stderr)
        return subprocess.CompletedProcess(list(args), done.returncode, done.stdout, done.stderr)

    wait_for = staticmethod(wait_for)
    """Poll until a predicate returns something (`tests.support.waiting.wait_for`)."""

    def status_xml(self, timeout: float = 30.0) -> ET.Element:
        """Root element of crm_mon's XML status, asked inside the node."""
        with cluster.using(self.runner):
            return cluster.status_xml(timeout=timeout)

    def resource_state(self, rsc_id: str, status: ET.Element | None = None) -> ResourceState:
        """State of ``rsc_id`` (see `resource_state`); ``status`` can be a :meth:`status_xml`
        result to avoid asking crm_mon again."""
        return resource_state(self.status_xml() if status is None else status, rsc_id)

    # -- internals -----------------------------------------------------------------------

    def _is_up(self) -> bool:
        with cluster.using(self.runner):
            status = cluster.cluster_status(timeout=10.0)
        node = status.node(self.node_name)
        return status.dc is not None and status.quorate and node is not None and node.online

    def _spawn_init(self, config: Path) -> None:
        unshare = ["unshare", "--net", "--mount", "--uts", "--propagation", "private", "--"]
        with open(self.console_log, "ab") as console:
            self._init = subprocess.Popen(
                [*unshare, SYSTEM_PYTHON, "-I", "-S", "-c", _INIT_CODE, str(config)],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**BASE_ENV, "HAKIT_NODE_INIT": str(Path(node_init.__file__).resolve())},
                cwd="/",
            )
        pid, host_net = self._init.pid, proc.namespace("self")
        deadline = time.monotonic() + 10.0  # unshare(2) precedes exec: a new netns is final
        while (net := proc.namespace(pid)) is None or net == host_net or not self.running:
            if not self.running or time.monotonic() > deadline:
                raise RuntimeError("the node's init did not start (unshare failed?)")
            time.sleep(0.01)
        # Held open until stop(): the inode numbers stay this node's while stop() looks.
        for kind in ("net", "mnt"):
            self._ns_fds.append(os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC))
        self._net, self._mnt = net, proc.namespace(pid, "mnt")
