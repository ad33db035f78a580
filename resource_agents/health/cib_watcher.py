"""Tells the publisher when the CIB changed: a resource failing on another node alerts only
there, but changes the CIB.

Two signs, each one stat() to check: a live crm_mon rewriting a private file (it refreshes
at once only if its last refresh is 5 s old, else within 2 s: measured 2.05 s for a second
attribute change) and, on the DC (the only node that publishes), the scheduler's input
files, written on every scheduler run, milliseconds after the change."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable

from hakit.ocf import cluster

#: Where the DC's scheduler saves its inputs: a file on every scheduler run, which follows
#: every CIB status change that matters; the series' ".last" files hold the latest number.
SCHEDULER_INPUTS = "/var/lib/pacemaker/pengine"
SCHEDULER_SERIES = ("pe-input", "pe-warn", "pe-error")


class CibWatcher:
    """Tells when the CIB changed, from a live `crm_mon` (text) that rewrites a private file
    and from the scheduler's inputs in `scheduler` (see the module's docstring)."""

    def __init__(self, log: Callable[[str], None], scheduler: str = SCHEDULER_INPUTS) -> None:
        self.log = log
        self.directory = tempfile.mkdtemp(prefix="hakit-publisher-")
        self.path = os.path.join(self.directory, "crm_mon.txt")
        self.watched = [
            self.path,
            scheduler,  # a new input file
            *(os.path.join(scheduler, f"{series}.last") for series in SCHEDULER_SERIES),
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.seen: list[int] | None = None

    def ensure_running(self) -> None:
        """(Re)start crm_mon if it is not running (cluster down earlier, or it exited)."""
        if self.process is not None and self.process.poll() is None:
            return
        try:
            self.process = subprocess.Popen(
                cluster.watch_status_command(self.path),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=die_with_parent,  # noqa: PLW1509 — a prctl, no locks taken
            )
        except OSError as error:
            self.log(f"CIB changes not watched (crm_mon: {error}); resync only")
            self.process = None

    def changed(self) -> bool:
        """Whether anything watched changed since the last call (the first call: False)."""
        stamps = [_mtime(path) for path in self.watched]
        if self.seen is None or stamps == self.seen:
            self.seen = stamps
            return False
        self.seen = stamps
        return True

    def close(self) -> None:
        stop(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str] | None) -> None:
    """End a watch process if it runs: SIGTERM, SIGKILL after 5 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def die_with_parent() -> None:
    """In the child: SIGTERM when the publisher dies, even by SIGKILL (prctl)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
