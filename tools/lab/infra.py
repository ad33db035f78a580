"""The lab's infra node: MariaDB and RabbitMQ started by hand inside a network namespace."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PACKAGES = ("mariadb-server", "rabbitmq-server")
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
POLICY_DENY = b"#!/bin/sh\n# hakit lab: keep packages from starting daemons during apt-get install\nexit 101\n"


class LabError(Exception):
    """A problem the user can fix; str() is a one-line message with a hint."""


def _require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab infra node needs root (run with sudo)")


def _missing_packages() -> list[str]:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *PACKAGES],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    installed = {ln.split()[0] for ln in done.stdout.splitlines() if ln.endswith(" installed")}
    return [p for p in PACKAGES if p not in installed]


def ensure_packages() -> None:
    """apt-get install mariadb-server and rabbitmq-server if missing, without starting them."""
    _require_root()
    missing = _missing_packages()
    if not missing:
        return
    saved = POLICY_RC_D.read_bytes() if POLICY_RC_D.exists() else None
    saved_mode = POLICY_RC_D.stat().st_mode & 0o7777 if saved is not None else 0
    POLICY_RC_D.write_bytes(POLICY_DENY)
    POLICY_RC_D.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "RUNLEVEL": "1"}
    command = ["apt-get", "install", "-y", "-q", *missing]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:  # stale lists: update once and retry
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    finally:
        if saved is None:
            POLICY_RC_D.unlink(missing_ok=True)
        else:
            POLICY_RC_D.write_bytes(saved)
            POLICY_RC_D.chmod(saved_mode)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise LabError(
            f"apt-get install {' '.join(missing)} failed: {last} "
            "(hint: check the apt sources and network, or install the packages by hand)"
        )
