"""MariaDB and RabbitMQ of the test session: the lab's infra node (`hakit.lab.infra`) on
127.0.0.1 in the test runner's own network namespace, with ports of its own.

Both live under one private directory (datadir, socket, mnesia, logs) and carry the infra
node's marker variables, which every child inherits (epmd, erl_child_setup...), so
teardown signals exactly the processes these classes started, by PID.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

from hakit.lab import infra as lab_infra
from hakit.lab.infra import probes

MYSQL_PORT = 3307
AMQP_PORT = 5673
MANAGEMENT_PORT = 15673
DIST_PORT = 25673
EPMD_PORT = 4370
RABBITMQ_NODE = "hakit-test@localhost"
RABBITMQ_SERVER = lab_infra.RABBITMQ_SERVER
RABBITMQCTL = lab_infra.RABBITMQCTL
USER = "openstack"
#: Speed over durability: the session's database is thrown away afterwards.
MARIADB_OPTIONS = (
    "--innodb-log-file-size=16M",
    "--innodb-buffer-pool-size=128M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--skip-log-bin",
)
START_TIMEOUT = 60.0


def settings(root: Path) -> lab_infra.Settings:
    """The infra node of the session whose files are under `root` (0755: mysql and
    rabbitmq must get through)."""
    return lab_infra.Settings(
        state_dir=root.resolve(),
        address="127.0.0.1",
        netns=None,
        mysql_port=MYSQL_PORT,
        amqp_port=AMQP_PORT,
        dist_port=DIST_PORT,
        epmd_port=EPMD_PORT,
        management_port=MANAGEMENT_PORT,
        nodename=RABBITMQ_NODE,
        db_user=USER,
        database=None,
        rabbit_user=USER,
        mariadb_options=MARIADB_OPTIONS,
    )


def _credentials(password: str) -> dict[str, str]:
    return {"mysql": password, "rabbitmq": password, "cookie": secrets.token_hex(20).upper()}


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def amqp_answers(port: int = AMQP_PORT) -> bool:
    return probes.amqp_answers("127.0.0.1", port)


def http_answers(port: int) -> bool:
    return probes.http_answers("127.0.0.1", port, 1.0, "GET")


class MariaDB:
    """mariadbd on 127.0.0.1:3307 with its own datadir and socket; user `openstack`."""

    def __init__(self, root: Path, password: str) -> None:
        self.settings = settings(root)
        self.root = self.settings.mariadb
        self.password = password
        self.socket = self.settings.mysql_socket

    @property
    def url(self) -> str:
        return f"mysql+pymysql://{USER}:{self.password}@127.0.0.1:{MYSQL_PORT}"

    def start(self) -> None:
        creds = _credentials(self.password)
        lab_infra.start_services(self.settings, ("mariadb",), creds, START_TIMEOUT)

    def sql(self, text: str) -> str:
        return lab_infra.mariadb_sql(self.settings, text, retry_for=20)

    def stop(self) -> None:
        lab_infra.stop_services(self.settings, ("mariadb",), timeout=30)


class RabbitMQ:
    """RabbitMQ node hakit-test@localhost: AMQP on 127.0.0.1:5673, management on 15673,
    epmd on 127.0.0.1:4370, Erlang distribution on 25673; user `openstack`."""

    def __init__(self, root: Path, password: str) -> None:
        self.settings = settings(root)
        self.root = self.settings.rabbitmq
        self.password = password

    @property
    def transport_url(self) -> str:
        return f"rabbit://{USER}:{self.password}@127.0.0.1:{AMQP_PORT}/"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{MANAGEMENT_PORT}"

    def start(self) -> None:
        creds = _credentials(self.password)
        lab_infra.start_services(self.settings, ("rabbitmq",), creds, START_TIMEOUT)

    def ctl(self, *args: str) -> None:
        lab_infra.rabbitmqctl(self.settings, *args)

    def stop(self) -> None:
        """TERM beam.smp (orderly shutdown), then whatever else carries the marker."""
        lab_infra.stop_services(self.settings, ("rabbitmq",), timeout=30)
