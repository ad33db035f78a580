"""One infra node's settings (where its services listen, as whom, with which state
directory) and its state files. The lab's infra node takes the defaults; the OpenStack
tests' is the same node on loopback, in the caller's own network namespace.

The state directory holds:

    credentials.json   generated passwords (0600, root)
    infra.json         netns, address, namespace inode and the PIDs recorded at start
    mariadb/           (mysql) data/, mariadbd.sock, mariadbd.pid, mariadbd.err
    rabbitmq/          (rabbitmq) HOME with the Erlang cookie, rabbitmq.conf,
                       rabbitmq-env.conf, definitions.json, mnesia/, log/
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hakit.lab.errors import LabError

MYSQL_PORT = 3306
AMQP_PORT = 5672
DIST_PORT = AMQP_PORT + 20000
DB_USER = "hakit"
DB_NAME = "hakit"
RABBIT_USER = "hakit"
NODENAME = "rabbit@localhost"
MARIADB_TUNING = ("--innodb-log-file-size=16M", "--innodb-buffer-pool-size=64M")
SOCKET_PATH_MAX = 107


@dataclass(frozen=True)
class Settings:
    """An infra node: MariaDB and RabbitMQ listening on `address` inside `netns` (None: the
    caller's own network namespace), their files under `state_dir`."""

    state_dir: Path
    address: str
    netns: str | None = None
    mysql_port: int = MYSQL_PORT
    amqp_port: int = AMQP_PORT
    dist_port: int = DIST_PORT  # Erlang distribution, on the namespace's 127.0.0.1
    epmd_port: int | None = None  # None: epmd's default (4369), on 127.0.0.1
    management_port: int | None = None  # RabbitMQ's management plugin (HTTP) if set
    nodename: str = NODENAME
    db_user: str = DB_USER
    database: str | None = DB_NAME  # created for `db_user`; None: none
    rabbit_user: str = RABBIT_USER
    mariadb_options: tuple[str, ...] = MARIADB_TUNING  # for mariadb-install-db and mariadbd

    @property
    def where(self) -> str:
        return f"netns {self.netns!r}" if self.netns else "this network namespace"

    @property
    def credentials(self) -> Path:
        return self.state_dir / "credentials.json"

    @property
    def record(self) -> Path:
        return self.state_dir / "infra.json"

    @property
    def mariadb(self) -> Path:
        return self.state_dir / "mariadb"

    @property
    def datadir(self) -> Path:
        return self.mariadb / "data"

    @property
    def mysql_socket(self) -> Path:
        return self.mariadb / "mariadbd.sock"

    @property
    def rabbitmq(self) -> Path:
        return self.state_dir / "rabbitmq"


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_private(path: Path, text: str, mode: int = 0o600, owner: str | None = None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    if owner:
        shutil.chown(tmp, owner, owner)
    tmp.replace(path)


def credentials(settings: Settings) -> tuple[dict[str, str], bool]:
    """The stored passwords and Erlang cookie, generated on first use; (creds, new)."""
    creds = read_json(settings.credentials)
    if {"mysql", "rabbitmq", "cookie"} <= creds.keys():
        return {k: str(v) for k, v in creds.items()}, False
    creds = {
        "mysql": secrets.token_hex(16),
        "rabbitmq": secrets.token_hex(16),
        "cookie": secrets.token_hex(20).upper(),
    }
    write_private(settings.credentials, json.dumps(creds, indent=1) + "\n")
    return creds, True


def make_dir(path: Path, owner: str, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    shutil.chown(path, owner, owner)
    path.chmod(mode)


def check_reachable(path: Path, user: str) -> None:
    done = subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "test", "-w", path],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise LabError(
            f"user {user} cannot write {path} (hint: every parent of the state dir needs "
            "o+x; use e.g. /var/lib/hakit-lab)"
        )


def tail(path: Path, lines: int = 2) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(ln.strip() for ln in text[-lines:])
