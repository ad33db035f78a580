"""Debian's MariaDB and RabbitMQ for an infra node: installed without starting a daemon."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from hakit.lab.errors import LabError

PACKAGES = ("mariadb-server", "rabbitmq-server")
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
POLICY_DENY = b"#!/bin/sh\n# hakit lab: no daemon starts during apt-get install\nexit 101\n"
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # not the /usr/sbin su wrapper
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"  # idem: the wrapper changes HOME
PROGRAMS = (
    "/usr/sbin/mariadbd",
    "/usr/bin/mariadb-install-db",
    "/usr/bin/mariadb",
    RABBITMQ_SERVER,
)


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab infra node needs root (hint: run it with sudo)")


def _missing_packages() -> list[str]:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *PACKAGES],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {ln.split()[0] for ln in done.stdout.splitlines() if ln.endswith(" installed")}
    return [p for p in PACKAGES if p not in installed]


@contextlib.contextmanager
def _no_daemon_starts() -> Iterator[None]:
    """A policy-rc.d denying every start (exit 101) while in the block; then the old state."""
    saved = POLICY_RC_D.read_bytes() if POLICY_RC_D.exists() else None
    mode = POLICY_RC_D.stat().st_mode & 0o7777 if saved is not None else 0
    if saved is not None and saved.rstrip().endswith(b"exit 101") and mode & 0o100:
        yield  # already denies (Docker-style images): leave it untouched
        return
    POLICY_RC_D.write_bytes(POLICY_DENY)
    POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        if saved is None:
            POLICY_RC_D.unlink(missing_ok=True)
        else:
            POLICY_RC_D.write_bytes(saved)
            POLICY_RC_D.chmod(mode)


def ensure_packages() -> None:
    """apt-get install mariadb-server and rabbitmq-server if missing, starting no daemon."""
    require_root()
    missing = _missing_packages()
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", *missing]
    with _no_daemon_starts():
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:  # stale package lists: update once and retry
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise LabError(
            f"apt-get install {' '.join(missing)} failed: {last} "
            "(hint: check the apt sources, or install the packages by hand)"
        )


def require_packages() -> None:
    for path in PROGRAMS:
        if not Path(path).exists():
            raise LabError(f"{path} is missing (hint: run ensure_packages() / install the lab)")
