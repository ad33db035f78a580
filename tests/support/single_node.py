"""A real single-node Pacemaker/Corosync cluster, isolated from the host, for tests.

:class:`SingleNodeCluster` boots corosync and pacemakerd inside private Linux
namespaces, waits until the node is online and has elected itself DC, and tears
everything down again without leaving processes, namespaces or mounts on the host.

How the node is built
=====================
``start()`` launches ``unshare --net --mount --uts --propagation private`` with this
very file as the node's "init" (``python3 single_node.py --node-init CONFIG``). The
init runs in a new session (``setsid``) with stdin from ``/dev/null`` and its output in
``<workdir>/console.log``. Inside the namespaces it:

* sets the hostname (``hakit-test1`` by default) and brings ``lo`` up;
* mounts a tmpfs on ``/run`` (recreating ``/run/crm`` hacluster:haclient 0750,
  ``/run/resource-agents``, ``/run/fence-agents``, ``/run/lock`` and the ``/run/shm``
  link) and on ``/dev/shm`` (libqb IPC buffers);
* bind-mounts per-node directories of ``<workdir>/state`` onto ``/var/lib/pacemaker``,
  ``/var/log/pacemaker``, ``/var/lib/corosync``, ``/var/log/corosync`` and
  ``/var/log/crmsh``, and generated files onto ``/etc/corosync/corosync.conf`` and
  ``/etc/hosts``, so the host's files are never read or written by the node;
* starts ``corosync -f``, waits until ``corosync-cfgtool -s`` answers, starts
  ``pacemakerd -f`` and stays alive as a child subreaper. SIGTERM shuts down
  pacemakerd first, then corosync, then SIGKILLs anything still in the namespace.
  The init also watches the process that started it (through a pidfd) and shuts the
  node down by itself if that process dies, e.g. when pytest is killed.

Corosync uses knet on ``127.0.0.1`` inside the private network namespace, without
crypto (nothing leaves the namespace, so there is nothing to protect and no key file
is needed). With one node in the nodelist votequorum expects one vote, so the node is
quorate on its own and ``no-quorum-policy`` keeps its default (``stop``): a test that
sees the node lose quorum has found a real problem rather than a masked one.

Client commands are run with ``nsenter -t <init pid> -n -m -u``: the node's private
``/dev/shm`` means a client must enter the mount namespace too, not only the network
namespace (IPC with the daemons is over abstract sockets, which are per network
namespace). ``/proc/1/ns`` is not readable in some sandboxes, so nothing here relies
on PID 1.

Cluster properties
==================
The CIB is seeded before the first start (``<workdir>/state/var-lib-pacemaker/cib/
cib.xml``, no ``.sig``: pacemaker-based only warns "No on-disk digest present") with
:data:`DEFAULT_PROPERTIES`:

* ``stonith-enabled=false``: there is no fence device, and with the default nothing
  would start ("Resource start-up disabled since no STONITH resources have been
  defined");
* ``dc-deadtime=1s``: on a fresh start the controller sits in S_PENDING for
  dc-deadtime before it elects itself, so this is most of the start-up time. Measured
  time from ``start()`` to "online, quorate, DC": default 20s -> 23.2 s, 5s -> 8.0 s,
  2s -> 4.9 s, 1s -> 3.8 s (DC = about 2.8 s + dc-deadtime). With one node there is
  nobody to wait for, so 1 s costs nothing;
* ``cluster-recheck-interval=15s`` (default 15 min): ``failure-timeout`` expiry and
  time-based rules are noticed within seconds.

``start()`` re-applies any property whose value differs (``crm_attribute``).

Start-up and shutdown
=====================
Measured on a 2-vCPU VM: ``start()`` takes 3.8-3.9 s (namespaces 0.03 s, corosync
answering and pacemakerd started 0.6 s, node online and DC 3.8 s, properties checked
3.9 s). ``stop()`` takes 1.3-1.6 s with a handful of resources: pacemakerd stops the
resources and its daemons in 0.1-0.2 s, corosync needs about 1.1 s to exit. A whole
pytest run of ``tests/cluster/test_single_node_stack.py`` takes about 7.5 s. The
numbers of the last ``start()``/``stop()`` are in :attr:`SingleNodeCluster.timings`.

Leaving nothing behind
======================
The node's network and mount namespaces exist only while a process (or an open
namespace file descriptor) refers to them. No named network namespace is created
(nothing in ``/run/netns``) and every mount is made in the private mount namespace,
so the host's mount table never changes. ``stop()`` finds processes that are still
in the node by comparing ``/proc/PID/ns/net`` and ``/proc/PID/ns/mnt`` with the
node's namespaces, which it keeps open (so the namespace inode numbers cannot be
reused by an unrelated namespace while it looks), SIGKILLs them by PID and then
closes its references, which frees the namespaces. State and logs stay in the work
directory for post-mortem inspection.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import grp
import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Final, TypedDict, TypeVar

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

CLUSTER_NAME: Final = "hakit-test"
"""``totem.cluster_name`` of the generated corosync.conf."""

DEFAULT_PROPERTIES: Final[Mapping[str, str]] = {
    "stonith-enabled": "false",
    "dc-deadtime": "1s",
    "cluster-recheck-interval": "15s",
}
"""Cluster properties seeded into the CIB before the first start (see module doc)."""

SYSTEM_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

BASE_ENV: Final[Mapping[str, str]] = {
    "PATH": SYSTEM_PATH,
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "USER": "root",
    "LOGNAME": "root",
    "SHELL": "/bin/sh",
}
"""The environment of the node's init and of :meth:`SingleNodeCluster.run`.

Nothing is inherited from the caller, so variables such as ``CIB_file``,
``PCMK_*`` or ``PYTHONPATH`` in the test runner's environment cannot leak into
the cluster's daemons or tools.
"""

# Paths inside the node that get a private, per-workdir directory bind-mounted onto
# them: target -> (directory name under <workdir>/state, mode, owned by hacluster).
_STATE_DIRS: Final[Mapping[str, tuple[str, int, bool]]] = {
    "/var/lib/pacemaker": ("var-lib-pacemaker", 0o750, True),
    "/var/log/pacemaker": ("var-log-pacemaker", 0o770, True),
    "/var/lib/corosync": ("var-lib-corosync", 0o755, False),
    "/var/log/corosync": ("var-log-corosync", 0o755, False),
    "/var/log/crmsh": ("var-log-crmsh", 0o775, True),
    "/var/log/hakit": ("var-log-hakit", 0o750, False),
}
_PACEMAKER_SUBDIRS: Final = ("cib", "pengine", "blackbox", "cores")

# Directories that the node hides behind its own mounts: a work directory there
# would be invisible (or recursive) inside the node.
_SHADOWED: Final = (Path("/run"), Path("/var/run"), Path("/dev/shm"), *map(Path, _STATE_DIRS))

_HOST_STACK_DAEMONS: Final = frozenset({"corosync", "pacemakerd"})

_PR_SET_CHILD_SUBREAPER: Final = 36

T = TypeVar("T")


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


class ResourceState(TypedDict):
    """What ``crm_mon --output-as=xml`` says about one resource (all instances)."""

    id: str
    """The id asked for."""
    agent: str
    """``class:provider:type`` (or ``class:type``) of the primitive."""
    role: str
    """Promoted if any instance is, else the role of an active instance, else Stopped."""
    active: bool
    """True if at least one instance is active."""
    nodes: list[str]
    """Names of the nodes where an instance is active (sorted, may repeat for clones)."""
    instances: int
    """Number of ``<resource>`` entries (clone instances, including stopped ones)."""
    failed: bool
    """True if any instance is flagged failed by crm_mon."""
    managed: bool
    """False if any instance is unmanaged."""
    blocked: bool
    """True if any instance is blocked."""
    fail_count: int
    """Sum of the fail counts of the matching resources over all nodes."""


@dataclass
class _InitConfig:
    """What the node's init needs; written as JSON by the host side."""

    node_name: str
    binds: list[tuple[str, str]]
    daemon_env: dict[str, str]
    state_file: str
    watch_pid: int
    pacemaker_stop_timeout: float = 90.0
    corosync_stop_timeout: float = 30.0
    hacluster_uid: int = 0
    haclient_gid: int = 0


# --------------------------------------------------------------------------------------
# helpers shared by the host side and the node's init
# --------------------------------------------------------------------------------------


def _ns_id(pid: int | str, kind: str) -> str | None:
    """``net:[4026531993]``-style identity of a process's namespace, None if unreadable."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def _pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _pids_in_namespaces(net: str, mnt: str, *, exclude: int | None = None) -> list[int]:
    """PIDs whose network *and* mount namespace are the given ones (zombies excluded)."""
    found = []
    for pid in _pids():
        if pid != exclude and _ns_id(pid, "net") == net and _ns_id(pid, "mnt") == mnt:
            found.append(pid)
    return found


def _kill_all(net: str, mnt: str, *, exclude: int | None, timeout: float) -> list[int]:
    """SIGKILL every process in the namespaces until none is left; return survivors."""
    deadline = time.monotonic() + timeout
    while True:
        pids = _pids_in_namespaces(net, mnt, exclude=exclude)
        if not pids or time.monotonic() > deadline:
            return pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} not readable)"
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------------------
# host side
# --------------------------------------------------------------------------------------


class SingleNodeCluster:
    """A single-node Pacemaker/Corosync cluster in private namespaces.

    Usage::

        cluster = SingleNodeCluster(tmp_path_factory.mktemp("cluster"))
        cluster.start()
        try:
            cluster.run(["crm_attribute", "-n", "maintenance-mode", "-v", "false"])
            ...
        finally:
            cluster.stop()

    or ``with SingleNodeCluster(path) as cluster: ...`` (starts and stops).

    Requires root. ``start()`` refuses (RuntimeError) if corosync or pacemakerd
    already runs in the caller's network namespace. ``start()`` resets the node's
    state (CIB, logs) under ``workdir``; after ``stop()`` everything else is gone.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        node_name: str = NODE_NAME,
        properties: Mapping[str, str] | None = None,
        daemon_env: Mapping[str, str] | None = None,
    ) -> None:
        """Prepare (but do not start) a node whose files live under ``workdir``.

        ``properties`` are cluster properties seeded into the CIB; they are merged
        over :data:`DEFAULT_PROPERTIES` (give ``{"dc-deadtime": "20s"}`` to measure
        the default start-up, for example). ``daemon_env`` is merged over the
        environment of corosync and pacemakerd (and so of the resource agents run by
        pacemaker-execd), e.g. ``{"PCMK_debug": "yes"}`` or, for the environment of a
        default installation, ``{"PCMK_logfacility": "daemon"}``.
        """
        self.workdir = Path(workdir).absolute()
        self.node_name = node_name
        self.properties: dict[str, str] = {**DEFAULT_PROPERTIES, **(properties or {})}
        self.daemon_env: dict[str, str] = {**self._default_daemon_env(), **(daemon_env or {})}
        self.timings: dict[str, float] = {}
        """Seconds from the start of the last ``start()``/``stop()`` to each milestone."""
        self._init: subprocess.Popen[bytes] | None = None
        self._net: str | None = None
        self._mnt: str | None = None
        self._ns_fds: list[int] = []
        self._lock_fd: int | None = None

    # -- paths ---------------------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        """Host path of the directories that are bind-mounted into the node."""
        return self.workdir / "state"

    @property
    def console_log(self) -> Path:
        """Output of the node's init (and anything it starts before the daemons log)."""
        return self.workdir / "console.log"

    @property
    def pacemaker_log(self) -> Path:
        """Host path of the node's ``/var/log/pacemaker/pacemaker.log``."""
        return self.state_dir / "var-log-pacemaker" / "pacemaker.log"

    @property
    def corosync_log(self) -> Path:
        """Host path of the node's ``/var/log/corosync/corosync.log``."""
        return self.state_dir / "var-log-corosync" / "corosync.log"

    @property
    def init_pid(self) -> int:
        """PID of the node's init (usable with ``nsenter -t``); RuntimeError if down."""
        if self._init is None or self._init.poll() is not None:
            raise RuntimeError(f"the cluster node is not running (see {self.console_log})")
        return self._init.pid

    @property
    def running(self) -> bool:
        """True while the node's init is alive."""
        return self._init is not None and self._init.poll() is None

    # -- life cycle ----------------------------------------------------------------------

    def __enter__(self) -> SingleNodeCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 90.0) -> None:
        """Boot the node and return once it is online, quorate and DC.

        Raises RuntimeError if the preconditions are not met (not root, a cluster
        stack already running in this network namespace, a missing tool) and
        TimeoutError (after cleaning up) if the cluster does not come up in time.
        """
        if self._init is not None:
            raise RuntimeError("SingleNodeCluster.start() called twice without stop()")
        self._preflight()
        t0 = time.monotonic()
        self.timings = {}
        self._lock_workdir()
        try:
            self._prepare_files()
            self._spawn_init()
            self.timings["namespaces"] = time.monotonic() - t0
            self._wait_for_init_ready(t0 + timeout)
            self.timings["daemons_started"] = time.monotonic() - t0
            self.wait_for(
                self._is_up,
                timeout=max(1.0, t0 + timeout - time.monotonic()),
                interval=0.2,
                description=f"node {self.node_name} online, quorate and DC",
            )
            self.timings["dc"] = time.monotonic() - t0
            for name, value in self.properties.items():
                # Already in the seeded CIB; this only checks that it was taken.
                current = self.run(
                    ["crm_attribute", "-t", "crm_config", "-n", name, "-G", "-q"], check=False
                ).stdout.strip()
                if current != value:
                    self.run(["crm_attribute", "-t", "crm_config", "-n", name, "-v", value])
            self.timings["ready"] = time.monotonic() - t0
        except BaseException as exc:
            detail = self._diagnostics()
            with contextlib.suppress(Exception):
                self.stop(timeout=30.0)
            if isinstance(exc, RuntimeError | TimeoutError):
                raise type(exc)(f"{exc}\n{detail}") from exc
            raise

    def stop(self, timeout: float = 90.0) -> None:
        """Shut the node down (orderly, then SIGKILL) and check that nothing is left.

        Idempotent. Raises RuntimeError if processes of the node survive SIGKILL.
        """
        if self._init is None:
            self._release()
            return
        t0 = time.monotonic()
        init = self._init
        if init.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                init.send_signal(signal.SIGTERM)
            try:
                init.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.timings["stop_orderly"] = time.monotonic() - t0
        survivors: list[int] = []
        if self._net and self._mnt:
            survivors = _kill_all(self._net, self._mnt, exclude=None, timeout=10.0)
        if init.poll() is None:
            init.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            init.wait(timeout=10.0)
        self._init = None
        self._release()
        self.timings["stop"] = time.monotonic() - t0
        if survivors:
            raise RuntimeError(f"processes of the test node survived SIGKILL: {survivors}")

    def node_pids(self) -> list[int]:
        """PIDs of every process in the node (init, daemons, agents, ``run()`` commands).

        Empty when the node is not started. (After ``stop()`` the namespaces are gone;
        ``stop()`` itself raises if any process survived.)
        """
        if not (self._net and self._mnt):
            return []
        return _pids_in_namespaces(self._net, self._mnt)

    @property
    def namespaces(self) -> tuple[str, str] | None:
        """``(net, mnt)`` identities such as ``net:[4026532300]`` while started, else None.

        Namespace inode numbers are reused once a namespace is freed, so do not use
        them to look for processes after ``stop()``.
        """
        if self._net and self._mnt:
            return self._net, self._mnt
        return None

    # -- commands inside the node --------------------------------------------------------

    def run(
        self,
        args: Sequence[str],
        timeout: float = 30.0,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` inside the node (its network, mount and UTS namespaces).

        The command gets :data:`BASE_ENV` plus ``env`` (nothing from the caller's
        environment) and ``/`` as working directory. Output is captured as text.
        Raises :class:`ClusterCommandError` on a non-zero exit if ``check``, and
        ``subprocess.TimeoutExpired`` after ``timeout`` seconds. ``input`` is fed to
        the command's stdin (which is ``/dev/null`` otherwise).
        """
        cmd = ["nsenter", "-t", str(self.init_pid), "-n", "-m", "-u", "--", *args]
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**BASE_ENV, **(env or {})},
            cwd="/",
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        result = subprocess.CompletedProcess(list(args), proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise ClusterCommandError(proc.returncode, list(args), proc.stdout, proc.stderr)
        return result

    def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 30.0,
        *,
        interval: float = 0.5,
        description: str = "",
        ignore: tuple[type[BaseException], ...] = (
            subprocess.SubprocessError,
            KeyError,
            ET.ParseError,
        ),
    ) -> T:
        """Call ``predicate`` until it returns something truthy, and return that.

        (An ``xml.etree`` Element counts as soon as it is not None.)

        Exceptions listed in ``ignore`` count as "not yet" (commands failing while
        the cluster settles, a resource not yet in the status). Raises TimeoutError
        naming ``description`` and the last result or exception.
        """
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                value = predicate()
            except ignore as exc:
                last = exc
            else:
                # An Element's truth value is its number of children: test identity.
                if value is not None if isinstance(value, ET.Element) else value:
                    return value
                last = value
            if time.monotonic() >= deadline:
                what = description or getattr(predicate, "__name__", repr(predicate))
                raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}: {last!r}")
            time.sleep(interval)

    def status_xml(self, timeout: float = 30.0) -> ET.Element:
        """Root element of ``crm_mon -1 --output-as=xml`` run inside the node."""
        out = self.run(["crm_mon", "-1", "--output-as=xml"], timeout=timeout).stdout
        return ET.fromstring(out)

    def resource_state(self, rsc_id: str, status: ET.Element | None = None) -> ResourceState:
        """State of resource ``rsc_id`` (a primitive, or a clone/group/bundle id).

        For a primitive inside a clone, all its instances are merged. Raises KeyError
        if crm_mon does not list the resource. ``status`` can be a :meth:`status_xml`
        result to avoid running crm_mon again.
        """
        root = self.status_xml() if status is None else status
        resources = root.find("resources")
        if resources is None:
            raise KeyError(f"no <resources> in crm_mon output (resource {rsc_id!r})")
        matches = [r for r in resources.iter("resource") if r.get("id", "").split(":")[0] == rsc_id]
        if not matches:
            for parent in resources.iter():
                if parent.tag != "resource" and parent.get("id") == rsc_id:
                    matches = list(parent.iter("resource"))
                    break
        if not matches:
            raise KeyError(f"resource {rsc_id!r} is not in the crm_mon output")
        ids = {r.get("id", "").split(":")[0] for r in matches}
        nodes = sorted(n.get("name", "") for r in matches for n in r.findall("node"))
        roles = [r.get("role", "Stopped") for r in matches]
        active = [r for r in matches if r.get("active") == "true"]
        if "Promoted" in roles or "Master" in roles:
            role = "Promoted"
        elif active:
            role = active[0].get("role", "Started")
        else:
            role = roles[0]
        fail_count = 0
        for history in root.iter("resource_history"):
            if history.get("id", "").split(":")[0] in ids:
                with contextlib.suppress(ValueError):
                    fail_count += int(history.get("fail-count", "0"))
        return ResourceState(
            id=rsc_id,
            agent=matches[0].get("resource_agent", ""),
            role=role,
            active=bool(active),
            nodes=nodes,
            instances=len(matches),
            failed=any(r.get("failed") == "true" for r in matches),
            managed=all(r.get("managed", "true") == "true" for r in matches),
            blocked=any(r.get("blocked") == "true" for r in matches),
            fail_count=fail_count,
        )

    # -- internals -----------------------------------------------------------------------

    def _is_up(self) -> bool:
        root = self.status_xml(timeout=10.0)
        dc = root.find("summary/current_dc")
        if dc is None or dc.get("present") != "true" or dc.get("with_quorum") != "true":
            return False
        return any(
            node.get("name") == self.node_name and node.get("online") == "true"
            for node in root.iterfind("nodes/node")
        )

    def _preflight(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError(
                "SingleNodeCluster needs root (namespaces, mounts, and daemons that run as "
                "hacluster); run the cluster tests as root"
            )
        missing = [
            tool
            for tool in (
                "unshare",
                "nsenter",
                "mount",
                "ip",
                "corosync",
                "corosync-cfgtool",
                "pacemakerd",
                "crm_mon",
                "crm_attribute",
                "cibadmin",
            )
            if shutil.which(tool, path=SYSTEM_PATH) is None
        ]
        if missing:
            raise RuntimeError(
                f"SingleNodeCluster needs {', '.join(missing)}; install the pacemaker, "
                "corosync, pacemaker-cli-utils, iproute2 and util-linux packages"
            )
        for name in ("hacluster",):
            try:
                pwd.getpwnam(name)
            except KeyError:
                raise RuntimeError(f"user {name} is missing (pacemaker not installed?)") from None
        own_net = _ns_id("self", "net")
        clashes = [
            f"{_comm(pid)} (pid {pid})"
            for pid in _pids()
            if _comm(pid) in _HOST_STACK_DAEMONS and _ns_id(pid, "net") == own_net
        ]
        if clashes:
            raise RuntimeError(
                "a cluster stack already runs in this network namespace: "
                f"{', '.join(clashes)}. Stop it before running the cluster tests "
                "(the test node must not sit next to a real cluster)"
            )
        real = self.workdir.resolve()
        for hidden in _SHADOWED:
            if real == hidden or hidden in real.parents:
                raise RuntimeError(
                    f"workdir {self.workdir} is under {hidden}, which the test node hides "
                    "behind its own mount; use a directory elsewhere (e.g. under /tmp)"
                )

    def _lock_workdir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.workdir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(f"another test cluster is using {self.workdir}") from None
        self._lock_fd = fd

    def _prepare_files(self) -> None:
        uid = pwd.getpwnam("hacluster").pw_uid
        gid = grp.getgrnam("haclient").gr_gid
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        for name, mode, owned in _STATE_DIRS.values():
            path = self.state_dir / name
            path.mkdir(parents=True)
            path.chmod(mode)
            if owned:
                os.chown(path, uid, gid)
        pcmk = self.state_dir / "var-lib-pacemaker"
        for sub in _PACEMAKER_SUBDIRS:
            (pcmk / sub).mkdir(mode=0o750)
            (pcmk / sub).chmod(0o750)
            os.chown(pcmk / sub, uid, gid)
        bundles = self.state_dir / "var-log-pacemaker" / "bundles"
        bundles.mkdir()
        os.chown(bundles, uid, gid)

        cib = pcmk / "cib" / "cib.xml"
        cib.write_text(self._seed_cib())
        cib.chmod(0o600)
        os.chown(cib, uid, gid)

        (self.workdir / "corosync.conf").write_text(self._corosync_conf())
        (self.workdir / "hosts").write_text(
            f"127.0.0.1\tlocalhost\n127.0.1.1\t{self.node_name}\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
        )
        for stale in (self.console_log, self.workdir / "init-state.json"):
            stale.unlink(missing_ok=True)

        binds = [
            (str(self.state_dir / name), target) for target, (name, _, _) in _STATE_DIRS.items()
        ]
        binds += [
            (str(self.workdir / "corosync.conf"), "/etc/corosync/corosync.conf"),
            (str(self.workdir / "hosts"), "/etc/hosts"),
        ]
        config = _InitConfig(
            node_name=self.node_name,
            binds=binds,
            daemon_env=self.daemon_env,
            state_file=str(self.workdir / "init-state.json"),
            watch_pid=os.getpid(),
            hacluster_uid=uid,
            haclient_gid=gid,
        )
        (self.workdir / "init-config.json").write_text(json.dumps(asdict(config), indent=2))

    def _seed_cib(self) -> str:
        empty = subprocess.run(
            ["cibadmin", "--empty"],
            capture_output=True,
            text=True,
            check=True,
            env=dict(BASE_ENV),
            timeout=30,
        ).stdout
        root = ET.fromstring(empty)
        crm_config = root.find("configuration/crm_config")
        if crm_config is None:
            raise RuntimeError(f"unexpected output of cibadmin --empty: {empty!r}")
        props = ET.SubElement(crm_config, "cluster_property_set", id="cib-bootstrap-options")
        for name, value in self.properties.items():
            ET.SubElement(
                props, "nvpair", id=f"cib-bootstrap-options-{name}", name=name, value=value
            )
        return ET.tostring(root, encoding="unicode") + "\n"

    def _corosync_conf(self) -> str:
        return f"""# generated by tests/support/single_node.py
totem {{
\tversion: 2
\tcluster_name: {CLUSTER_NAME}
\ttransport: knet
\tcrypto_cipher: none
\tcrypto_hash: none
}}

nodelist {{
\tnode {{
\t\tname: {self.node_name}
\t\tnodeid: 1
\t\tring0_addr: 127.0.0.1
\t}}
}}

quorum {{
\tprovider: corosync_votequorum
}}

logging {{
\tfileline: off
\tto_stderr: no
\tto_logfile: yes
\tlogfile: /var/log/corosync/corosync.log
\tto_syslog: no
\ttimestamp: hires
\tdebug: off
}}
"""

    @staticmethod
    def _default_daemon_env() -> dict[str, str]:
        """Environment of corosync and pacemakerd, much as a systemd unit gives it.

        The units read ``/etc/default/pacemaker`` (EnvironmentFile); its simple
        ``KEY=value`` lines are honoured here too. Logging goes to files only
        (``PCMK_logfacility=none``: nothing reaches the host's syslog).
        """
        env = dict(BASE_ENV)
        defaults = Path("/etc/default/pacemaker")
        if defaults.is_file():
            for line in defaults.read_text(errors="replace").splitlines():
                key, sep, value = line.strip().partition("=")
                if sep and key.isidentifier() and not key.startswith("#"):
                    env[key] = value.strip().strip("\"'")
        env["PCMK_logfile"] = "/var/log/pacemaker/pacemaker.log"
        env["PCMK_logfacility"] = "none"
        return env

    def _spawn_init(self) -> None:
        host_net = _ns_id("self", "net")
        cmd = [
            "unshare",
            "--net",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            sys.executable,
            "-I",
            "-B",
            str(Path(__file__).resolve()),
            "--node-init",
            str(self.workdir / "init-config.json"),
        ]
        with open(self.console_log, "ab") as console:
            self._init = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=dict(BASE_ENV),
                cwd="/",
            )
        pid = self._init.pid
        # unshare(2) happens before exec, so once the namespace differs it is final.
        deadline = time.monotonic() + 10.0
        while True:
            net = _ns_id(pid, "net")
            if net is not None and net != host_net and self._init.poll() is None:
                break
            if self._init.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the node's init did not start (unshare failed?)")
            time.sleep(0.01)
        # Hold the namespaces open: their inode numbers then stay unique to this node
        # until _release(), which makes the /proc comparisons in stop() safe.
        for kind in ("net", "mnt"):
            self._ns_fds.append(os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC))
        self._net = net
        self._mnt = _ns_id(pid, "mnt")

    def _wait_for_init_ready(self, deadline: float) -> None:
        state_file = self.workdir / "init-state.json"
        while not state_file.exists():
            if self._init is None or self._init.poll() is not None:
                raise RuntimeError("the node's init exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError("the node's init did not start corosync and pacemakerd")
            time.sleep(0.05)

    def _release(self) -> None:
        for fd in self._ns_fds:
            os.close(fd)
        self._ns_fds = []
        self._net = self._mnt = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _diagnostics(self) -> str:
        return (
            f"--- {self.console_log} (tail) ---\n{_tail(self.console_log)}\n"
            f"--- {self.corosync_log} (tail) ---\n{_tail(self.corosync_log, 10)}\n"
            f"--- {self.pacemaker_log} (tail) ---\n{_tail(self.pacemaker_log, 15)}"
        )


# --------------------------------------------------------------------------------------
# the node's init (runs inside the namespaces)
# --------------------------------------------------------------------------------------


class _NodeInit:
    """PID "1" of the node: set up mounts, run the daemons, reap, shut down in order."""

    def __init__(self, config: _InitConfig) -> None:
        self.config = config
        self.exited: dict[int, int] = {}
        self.stop_requested = False
        self.net = _ns_id("self", "net") or ""
        self.mnt = _ns_id("self", "mnt") or ""

    @staticmethod
    def log(message: str) -> None:
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        print(f"{stamp} init[{os.getpid()}] {message}", flush=True)

    @staticmethod
    def sh(*args: str) -> None:
        subprocess.run(args, check=True, stdin=subprocess.DEVNULL)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True

    def setup(self) -> None:
        cfg = self.config
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            self.log(f"prctl(PR_SET_CHILD_SUBREAPER) failed: errno {ctypes.get_errno()}")
        socket.sethostname(cfg.node_name)
        self.sh("ip", "link", "set", "lo", "up")
        self.sh("mount", "--make-rprivate", "/")
        self.sh("mount", "-t", "tmpfs", "-o", "mode=0755,size=64m", "hakit-run", "/run")
        for path, mode, owner in (
            ("/run/crm", 0o750, (cfg.hacluster_uid, cfg.haclient_gid)),
            ("/run/resource-agents", 0o1755, (0, 0)),
            ("/run/fence-agents", 0o1755, (0, 0)),
            ("/run/lock", 0o1777, (0, 0)),
        ):
            os.mkdir(path)
            os.chmod(path, mode)
            os.chown(path, *owner)
        os.symlink("/dev/shm", "/run/shm")
        self.sh("mount", "-t", "tmpfs", "-o", "mode=1777,size=256m", "hakit-shm", "/dev/shm")
        for source, target in cfg.binds:
            if not os.path.exists(target):
                # e.g. /var/log/crmsh without crmsh: create the mount point.
                os.makedirs(target, exist_ok=True)
            self.sh("mount", "--bind", source, target)

    def spawn(self, args: list[str], logfile: str) -> int:
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.config.daemon_env,
                cwd="/",
            )
        return proc.pid

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
            self.log(f"{name} (pid {pid}) had already exited")
            return
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        if self.wait_exit(pid, timeout):
            self.log(f"{name} stopped in {time.monotonic() - t0:.2f}s")
        else:
            self.log(f"{name} did not stop within {timeout:.0f}s: SIGKILL")
            os.kill(pid, signal.SIGKILL)
            self.wait_exit(pid, 5.0)

    def main(self) -> int:
        cfg = self.config
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGHUP, self.on_signal)
        try:
            watch_fd: int | None = os.pidfd_open(cfg.watch_pid)
        except OSError:
            watch_fd = None  # the test runner is already gone
            self.stop_requested = True
        self.log(f"starting node {cfg.node_name} ({self.net}, {self.mnt})")
        corosync: int | None = None
        pacemakerd: int | None = None
        try:
            self.setup()
            self.log("namespaces and mounts ready; starting corosync")
            corosync = self.spawn(
                ["corosync", "-f", "-c", "/etc/corosync/corosync.conf"],
                "/var/log/corosync/corosync.stderr",
            )
            self.wait_for_corosync(corosync)
            self.log("starting pacemakerd")
            pacemakerd = self.spawn(["pacemakerd", "-f"], "/var/log/pacemaker/pacemakerd.stderr")
            state = {"init": os.getpid(), "corosync": corosync, "pacemakerd": pacemakerd}
            tmp = cfg.state_file + ".tmp"
            Path(tmp).write_text(json.dumps({**state, "net": self.net, "mnt": self.mnt}))
            os.rename(tmp, cfg.state_file)
            self.log(f"running: {state}")
            while not self.stop_requested:
                if watch_fd is None:
                    time.sleep(0.5)
                elif select.select([watch_fd], [], [], 0.5)[0]:
                    self.log(f"process {cfg.watch_pid} that started the node is gone")
                    self.stop_requested = True
                self.reap()
        finally:
            self.log("orderly shutdown")
            if pacemakerd is not None:
                self.terminate(pacemakerd, "pacemakerd", cfg.pacemaker_stop_timeout)
            if corosync is not None:
                self.terminate(corosync, "corosync", cfg.corosync_stop_timeout)
            survivors = _kill_all(self.net, self.mnt, exclude=os.getpid(), timeout=5.0)
            self.reap()
            self.log(f"down{f' (could not kill {survivors})' if survivors else ''}")
        return 0

    def wait_for_corosync(self, pid: int, timeout: float = 30.0) -> None:
        """Wait until corosync answers ``corosync-cfgtool -s`` (pacemakerd needs it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop_requested:
            probe = subprocess.run(
                ["corosync-cfgtool", "-s"],
                capture_output=True,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            if probe.returncode == 0:
                self.log("corosync ready")
                return
            self.reap()
            if pid in self.exited:
                raise RuntimeError("corosync exited during start-up (see corosync.log)")
            time.sleep(0.1)
        if self.stop_requested:
            return
        raise RuntimeError(f"corosync did not answer corosync-cfgtool -s within {timeout:.0f}s")


def _node_init_main(config_path: str) -> int:
    raw = json.loads(Path(config_path).read_text())
    raw["binds"] = [tuple(pair) for pair in raw["binds"]]
    return _NodeInit(_InitConfig(**raw)).main()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--node-init":
        sys.exit(_node_init_main(sys.argv[2]))
    sys.exit(f"usage: {sys.argv[0]} --node-init CONFIG  (used by SingleNodeCluster)")
