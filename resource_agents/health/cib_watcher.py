"""Tells the publisher when the CIB changed: a resource failing on another node alerts only
there, but changes the CIB."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable

from hakit.ocf import cluster


class CibWatcher:
    """Tells when the CIB changed, from a live `crm_mon` (text) that rewrites a private file
    on every CIB change notification; checking costs one stat()."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.directory = tempfile.mkdtemp(prefix="hakit-publisher-")
        self.path = os.path.join(self.directory, "crm_mon.txt")
        self.process: subprocess.Popen[bytes] | None = None
        self.seen: int | None = None

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
                preexec_fn=_die_with_parent,  # noqa: PLW1509 — a prctl, no locks taken
            )
        except OSError as error:
            self.log(f"CIB changes not watched (crm_mon: {error}); resync only")
            self.process = None

    def changed(self) -> bool:
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except OSError:
            return False
        if stamp == self.seen:
            return False
        self.seen = stamp
        return True

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def _die_with_parent() -> None:
    """In the child: SIGTERM when the publisher dies, even by SIGKILL (prctl)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
