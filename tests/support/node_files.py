"""What the tests' single node boots from: its state directories, seeded CIB, corosync.conf
(the lab's), key, /etc/hosts and the config of its init (`hakit.lab.node_init`, whose
docstring has the contract); and the checks before it may boot on this host."""

from __future__ import annotations

import fcntl
import grp
import json
import os
import pwd
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from hakit.lab.profiles import PROFILES
from hakit.ocf import cluster, proc

SYSTEM_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_ENV: Final[Mapping[str, str]] = {
    "PATH": SYSTEM_PATH,
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "USER": "root",
    "LOGNAME": "root",
    "SHELL": "/bin/sh",
}
"""The environment of the node's init and of commands run inside it: nothing is inherited,
so ``CIB_file``, ``PCMK_*`` or ``PYTHONPATH`` of the test runner cannot leak in."""
# Node path -> (directory under <workdir>/state, mode, owned by hacluster).
STATE_DIRS: Final[Mapping[str, tuple[str, int, bool]]] = {
    "/var/lib/pacemaker": ("var-lib-pacemaker", 0o750, True),
    "/var/log/pacemaker": ("var-log-pacemaker", 0o770, True),
    "/var/lib/corosync": ("var-lib-corosync", 0o755, False),
    "/var/log/corosync": ("var-log-corosync", 0o755, False),
    "/var/log/crmsh": ("var-log-crmsh", 0o775, True),
    "/var/log/hakit": ("var-log-hakit", 0o750, False),
}
_SUBDIRS: Final = ("cib", "pengine", "blackbox", "cores")  # of var-lib-pacemaker
# The node hides these behind its own mounts: a work directory there would vanish.
_SHADOWED: Final = (Path("/run"), Path("/var/run"), Path("/dev/shm"), *map(Path, STATE_DIRS))


def preflight(workdir: Path) -> None:
    """RuntimeError unless a test node can boot here: root, the tools, hacluster, no cluster
    stack in this network namespace, a work directory the node does not hide."""
    if os.geteuid() != 0:
        raise RuntimeError("SingleNodeCluster needs root (namespaces, mounts, hacluster)")
    tools = ("unshare", "nsenter", "mount", "ip", *cluster.PROGRAMS, "crm_attribute")
    missing = [tool for tool in tools if shutil.which(tool, path=SYSTEM_PATH) is None]
    if missing:
        raise RuntimeError(
            f"SingleNodeCluster needs {', '.join(missing)}; install the pacemaker, "
            "corosync, pacemaker-cli-utils, iproute2 and util-linux packages"
        )
    try:
        pwd.getpwnam("hacluster")
    except KeyError:
        raise RuntimeError("user hacluster is missing (pacemaker not installed?)") from None
    own = proc.namespace("self")
    clashes = [
        f"{info.comm} (pid {info.pid})"
        for info in proc.all_processes()
        if info.comm in cluster.DAEMONS and proc.namespace(info.pid) == own
    ]
    if clashes:
        raise RuntimeError(
            f"a cluster stack already runs in this network namespace: {', '.join(clashes)}."
            " Stop it before running the cluster tests (the test node must not sit next "
            "to a real cluster)"
        )
    real = workdir.resolve()
    for hidden in _SHADOWED:
        if real == hidden or hidden in real.parents:
            raise RuntimeError(
                f"workdir {workdir} is under {hidden}, which the test node hides "
                "behind its own mount; use a directory elsewhere (e.g. under /tmp)"
            )


def prepare(
    workdir: Path, name: str, properties: Mapping[str, str], env: Mapping[str, str]
) -> Path:
    """Fresh state under ``workdir``; returns the path of the init's config."""
    uid, gid = pwd.getpwnam("hacluster").pw_uid, grp.getgrnam("haclient").gr_gid
    state = workdir / "state"
    shutil.rmtree(state, ignore_errors=True)
    pcmk = state / "var-lib-pacemaker"
    dirs = [(state / name, mode, owned) for name, mode, owned in STATE_DIRS.values()]
    dirs += [(pcmk / sub, 0o750, True) for sub in _SUBDIRS]
    dirs += [(state / "var-log-pacemaker" / "bundles", 0o755, True)]
    for path, mode, owned in dirs:
        path.mkdir(parents=True)
        path.chmod(mode)
        if owned:
            os.chown(path, uid, gid)
    cib = pcmk / "cib" / "cib.xml"
    cib.write_text(seed_cib(properties))  # no .sig: pacemaker-based only warns
    cib.chmod(0o600)
    os.chown(cib, uid, gid)
    key = workdir / "authkey"
    key.unlink(missing_ok=True)
    key.write_bytes(os.urandom(256))
    key.chmod(0o400)
    conf = PROFILES["default"].corosync_conf([(name, "127.0.0.1")], str(key))
    (workdir / "corosync.conf").write_text(conf)
    (workdir / "hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
    for stale in (workdir / "console.log", workdir / "init-state.json"):
        stale.unlink(missing_ok=True)
    binds = [(str(state / directory), node) for node, (directory, _, _) in STATE_DIRS.items()]
    binds += [
        (str(workdir / "corosync.conf"), "/etc/corosync/corosync.conf"),
        (str(workdir / "hosts"), "/etc/hosts"),
    ]
    config = {
        "name": name,
        "binds": binds,
        "env": dict(env),
        "hacluster_uid": uid,
        "haclient_gid": gid,
        "loopback_up": True,
        "state_file": str(workdir / "init-state.json"),
        "watch_pid": os.getpid(),
        "kill_leftovers": True,
        "require_corosync": True,
        "pacemakerd_stop_timeout": 90.0,
        "corosync_stop_timeout": 30.0,
    }
    path = workdir / "init-config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def seed_cib(properties: Mapping[str, str]) -> str:
    """An empty CIB (the installed Pacemaker's) with these cluster properties."""
    with cluster.using(cluster.Runner(env=BASE_ENV)):
        root = ET.fromstring(cluster.empty_cib(timeout=30))
    crm_config = root.find("configuration/crm_config")
    if crm_config is None:
        raise RuntimeError("cibadmin --empty gave a CIB without crm_config")
    props = ET.SubElement(crm_config, "cluster_property_set", id="cib-bootstrap-options")
    for name, value in properties.items():
        ET.SubElement(props, "nvpair", id=f"cib-bootstrap-options-{name}", name=name, value=value)
    return ET.tostring(root, encoding="unicode") + "\n"


def default_daemon_env() -> dict[str, str]:
    """Environment of corosync and pacemakerd, much as a systemd unit gives it: the simple
    ``KEY=value`` lines of ``/etc/default/pacemaker``, logging to files only
    (``PCMK_logfacility=none``: nothing reaches the host's syslog)."""
    env = dict(BASE_ENV)
    defaults = Path("/etc/default/pacemaker")
    if defaults.is_file():
        for line in defaults.read_text(errors="replace").splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key.isidentifier() and not key.startswith("#"):
                env[key] = value.strip().strip("\"'")
    return {**env, "PCMK_logfile": "/var/log/pacemaker/pacemaker.log", "PCMK_logfacility": "none"}


def lock(workdir: Path) -> int:
    """An exclusive lock on ``workdir`` (its open file descriptor); RuntimeError if another
    test cluster holds it."""
    workdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(workdir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"another test cluster is using {workdir}") from None
    return fd


def diagnostics(workdir: Path) -> str:
    """The tails of the node's console, corosync and pacemaker logs."""
    logs = (
        (workdir / "console.log", 25),
        (workdir / "state" / "var-log-corosync" / "corosync.log", 10),
        (workdir / "state" / "var-log-pacemaker" / "pacemaker.log", 15),
    )
    return "\n".join(f"--- {path} (tail) ---\n{_tail(path, lines)}" for path, lines in logs)


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not readable)"
