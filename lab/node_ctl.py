"""`hakit-lab-node start|stop|status`: a bare lab node's cluster daemons on request, where a
production node has systemd (`systemctl enable --now`, `disable --now`, `is-active`).

Runs inside the node (over ssh, or `hakit lab exec`): /usr/sbin/hakit-lab-node, written by
`hakit lab up --bare`, runs it under `/usr/bin/python3 -I -S` (it imports `hakit.ocf` from
the tree it sits in, as node_init.py does). It finds the node's init through
/run/hakit/init.pid and the init's on-request state in /run/hakit/cluster.json (the
contract is node_init.py's docstring):

    start   enable (the init's flag file: the cluster starts at boot, so a fenced node
            rejoins) and start: SIGUSR1, then wait until corosync answers and pacemakerd
            runs; prints `already running` if it ran and was enabled, else `started`;
            exit 1 on failure or timeout
    stop    disable and stop (SIGUSR2: pacemakerd, then corosync); prints `already
            stopped` if it neither ran nor was enabled, else `stopped`
    status  exit 0 and `running` when both daemons run (and `not started at boot` when
            not enabled), 3 and `stopped` otherwise

On a remote node (`hakit lab up --bare --remotes N`) the same commands run
pacemaker-remoted alone, where a production node has `systemctl ... pacemaker_remote`;
it is started once it listens on its port.

`--timeout SECONDS` bounds start and stop (60 and 120 by default).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import types

if "hakit" not in sys.modules:  # a script under `python3 -I -S`: hakit is this file's tree
    _hakit = types.ModuleType("hakit")
    _hakit.__path__ = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
    sys.modules["hakit"] = _hakit

from hakit.lab.node_init import CLUSTER_STATE, INIT_PID
from hakit.ocf import cluster, proc

PROGRAM = "hakit-lab-node"
STOPPED = 3  # LSB status: not running
TIMEOUTS = {"start": 60.0, "stop": 120.0}
#: pacemaker-remoted's port (PCMK_remote_port's default)
REMOTE_PORT = 3121
#: /proc's comm: a name cut at 15 characters (pacemaker-remoted is pacemaker-remot)
COMM_LENGTH = 15
USAGE = f"usage: {PROGRAM} start|stop|status [--timeout SECONDS]"


class Failure(Exception):
    """What the command says on stderr before it exits 1."""


def init_pid() -> int:
    """The node's init (in on-request mode)."""
    try:
        with open(INIT_PID, encoding="ascii") as handle:
            pid = int(handle.read())
        with open(CLUSTER_STATE, encoding="utf-8") as handle:
            mode = json.load(handle).get("mode")
    except (OSError, ValueError):
        raise Failure(
            f"not inside a bare hakit lab node (no {INIT_PID} or {CLUSTER_STATE})"
        ) from None
    if mode != "on-request" or not proc.is_alive(pid):
        raise Failure(f"the node's init ({pid}) is gone or does not take cluster requests")
    return pid


def state() -> dict[str, object]:
    try:
        with open(CLUSTER_STATE, encoding="utf-8") as handle:
            return dict(json.load(handle))
    except (OSError, ValueError):
        return {}


def expected() -> list[str]:
    """The daemons of this node's cluster side: corosync and pacemakerd, or on a remote
    node pacemaker-remoted."""
    names = state().get("daemons") or cluster.DAEMONS
    return [str(name) for name in names] if isinstance(names, list | tuple) else []


def daemons(init: int) -> dict[str, int]:
    """The cluster daemons the init runs (name -> pid)."""
    names = {name[:COMM_LENGTH]: name for name in expected()}
    return {
        names[info.comm]: info.pid
        for info in proc.all_processes()
        if info.ppid == init and info.comm in names and info.alive
    }


def running(init: int) -> bool:
    return set(daemons(init)) == set(expected())


def ready(init: int) -> bool:
    """Running and answering: corosync answers, or pacemaker-remoted listens."""
    found = daemons(init)
    if set(found) != set(expected()):
        return False
    if cluster.REMOTED in found:
        return proc.listening_on(found[cluster.REMOTED], REMOTE_PORT)
    return cluster.corosync_answers(timeout=5)


def flag_file() -> str:
    """The init's "enabled" flag (a path inside the node)."""
    return str(state().get("enabled_file") or "")


def enabled() -> bool:
    return bool(flag_file()) and os.path.exists(flag_file())


def enable(on: bool) -> bool:
    """Set or clear the flag; whether it was set before."""
    was, flag = enabled(), flag_file()
    if flag and on and not was:
        os.makedirs(os.path.dirname(flag), exist_ok=True)
        with open(flag, "w", encoding="ascii") as handle:
            handle.write("enabled\n")
    elif flag and was and not on:
        os.unlink(flag)
    return was


def start(init: int, timeout: float) -> str:
    was_enabled = enable(True)
    if ready(init):
        return "already running" if was_enabled else "started"  # as `enable --now` says
    asked = time.time()
    os.kill(init, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = state()
        if now.get("state") == "failed" and float(now.get("time") or 0) >= asked:  # type: ignore[arg-type]
            raise Failure(f"the cluster did not start: {now.get('error')}{_said(asked)}")
        if ready(init):
            return "started"
        time.sleep(0.2)
    raise Failure(
        f"the cluster did not start within {timeout:g}s (state {state().get('state')!r}; "
        "see /var/log/corosync, /var/log/pacemaker)"
    )


def _said(since: float) -> str:
    """corosync's last line on stderr if written since `since` (a missing config...)."""
    path = "/var/log/corosync/corosync.stderr"
    try:
        if os.stat(path).st_mtime >= since - 1:
            with open(path, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().strip().splitlines()
            return f": {lines[-1]}" if lines else ""
    except OSError:
        pass
    return ""


def stop(init: int, timeout: float) -> str:
    was_enabled = enable(False)
    if not daemons(init):
        return "stopped" if was_enabled else "already stopped"
    os.kill(init, signal.SIGUSR2)
    deadline = time.monotonic() + timeout
    while daemons(init):
        if time.monotonic() > deadline:
            left = ", ".join(f"{name} {pid}" for name, pid in daemons(init).items())
            raise Failure(f"the cluster did not stop within {timeout:g}s ({left} still run)")
        time.sleep(0.2)
    return "stopped"


def main(argv: list[str]) -> int:
    os.environ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    timeout = None
    if len(argv) == 3 and argv[1] == "--timeout" and argv[2].replace(".", "", 1).isdigit():
        timeout, argv = float(argv[2]), argv[:1]
    if len(argv) != 1 or argv[0] not in ("start", "stop", "status"):
        print(USAGE, file=sys.stderr)
        return 2
    action = argv[0]
    try:
        init = init_pid()
        if action == "status":
            up, now = running(init), state().get("state")
            if up:
                print("running" if enabled() else "running\nnot started at boot")
            else:
                print("stopped" if now == "stopped" else f"stopped ({now})")
            return 0 if up else STOPPED
        act = start if action == "start" else stop
        print(act(init, timeout or TIMEOUTS[action]))
    except Failure as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
