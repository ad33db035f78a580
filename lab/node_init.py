"""The "init" of one lab node: runs inside the node's namespaces, as PID-tree root.

Started by the lab as `ip netns exec hakit-nodeN unshare --mount --uts --propagation
private /usr/bin/python3 -I -S node_init.py CONFIG`. It sets the hostname, a private
/run and /dev/shm, bind-mounts the node's state directories over /var/lib/pacemaker,
/var/log/pacemaker and the Corosync directories, starts `corosync -f` and then
`pacemakerd -f`, and reaps orphans (it is a child subreaper). SIGTERM means an
orderly shutdown: pacemakerd, then corosync. Standard library only: it must not
depend on the hakit install.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


class NodeInit:
    def __init__(self, config: dict[str, object]) -> None:
        self.config = config
        self.stop = False
        self.exited: dict[int, int] = {}

    @staticmethod
    def log(message: str) -> None:
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        print(f"{stamp} init[{os.getpid()}] {message}", flush=True)

    def setup(self) -> None:
        cfg = self.config
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        socket.sethostname(str(cfg["name"]))
        uid, gid = int(cfg["hacluster_uid"]), int(cfg["haclient_gid"])  # type: ignore[call-overload]
        run = (
            ["mount", "--make-rprivate", "/"],
            [
                "mount",
                "-t",
                "tmpfs",
                "-o",
                "mode=0755,size=64m",
                f"hakit-run-{cfg['name']}",
                "/run",
            ],
        )
        for args in run:
            subprocess.run(args, check=True)
        for path, mode, owner in (
            ("/run/crm", 0o750, (uid, gid)),
            ("/run/resource-agents", 0o1755, (0, 0)),
            ("/run/fence-agents", 0o1755, (0, 0)),
            ("/run/lock", 0o1777, (0, 0)),
            ("/run/hakit", 0o755, (0, 0)),
        ):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, mode)
            os.chown(path, *owner)
        os.symlink("/dev/shm", "/run/shm")  # noqa: S108 — the node's own tmpfs
        subprocess.run(
            [
                "mount",
                "-t",
                "tmpfs",
                "-o",
                "mode=1777,size=256m",
                f"hakit-shm-{cfg['name']}",
                "/dev/shm",  # noqa: S108
            ],
            check=True,
        )
        for source, target in cfg["binds"]:  # type: ignore[attr-defined]
            if not os.path.exists(target):
                os.makedirs(target)  # a mount point (e.g. /var/log/hakit)
            subprocess.run(["mount", "--bind", source, target], check=True)

    def spawn(self, args: list[str], logfile: str) -> int:
        with open(logfile, "ab") as out:
            child = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(self.config["env"]),  # type: ignore[call-overload]
                cwd="/",
            )
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

    def terminate(self, pid: int, name: str, timeout: float) -> None:
        self.reap()
        if pid in self.exited:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.reap()
            if pid in self.exited:
                self.log(f"{name} stopped")
                return
            time.sleep(0.05)
        self.log(f"{name} did not stop within {timeout:.0f}s: SIGKILL")
        os.kill(pid, signal.SIGKILL)

    def wait_for_corosync(self, pid: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.stop:
            probe = subprocess.run(["corosync-cfgtool", "-s"], capture_output=True, check=False)
            if probe.returncode == 0:
                return
            self.reap()
            if pid in self.exited:
                raise RuntimeError("corosync exited during start-up (see corosync.log)")
            time.sleep(0.1)

    def on_signal(self, signum: int, frame: object) -> None:
        self.stop = True

    def main(self) -> int:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        corosync = pacemakerd = None
        try:
            self.setup()
            self.log(f"node {self.config['name']} booting")
            corosync = self.spawn(["corosync", "-f"], "/var/log/corosync/corosync.stderr")
            self.wait_for_corosync(corosync)
            pacemakerd = self.spawn(["pacemakerd", "-f"], "/var/log/pacemaker/pacemakerd.stderr")
            self.log(f"corosync {corosync}, pacemakerd {pacemakerd}")
            while not self.stop:
                time.sleep(0.5)
                self.reap()
        except Exception as error:  # the console log is the node's only voice
            self.log(f"boot failed: {error}")
        finally:
            self.log("orderly shutdown")
            if pacemakerd is not None:
                self.terminate(pacemakerd, "pacemakerd", 60)
            if corosync is not None:
                self.terminate(corosync, "corosync", 30)
            self.reap()
            self.log("down")
        return 0


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        sys.exit(NodeInit(json.load(handle)).main())
