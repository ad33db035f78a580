"""MariaDB and RabbitMQ of the test session: the lab's infra node (`hakit.lab.infra`) on
127.0.0.1 in the test runner's own network namespace, with ports of its own; and the
session's Keystone (`hakit.lab.keystone`) on that MariaDB.

Both servers live under one private directory (datadir, socket, mnesia, logs) and carry
the infra node's marker variables, which every child inherits (epmd, erl_child_setup...),
so teardown signals exactly the processes these classes started, by PID.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hakit.lab import infra as lab_infra
from hakit.lab import keystone
from hakit.lab.errors import LabError
from hakit.lab.infra import probes
from hakit.ocf import proc
from hakit.resource_agents.clouds import CloudSession

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


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Keystone:
    """Keystone of the session (`hakit.lab.keystone`): keystone.conf on the session's
    MariaDB (database `keystone`, created by the caller), served by the WSGI server on a
    free loopback port, with the users, roles and catalog; clouds.yaml (`clouds_yaml`,
    0600) with cloud `hakit` (hakit's user, admin in project service) and `demo` (a member
    of project demo). The process is the session's own, stopped by PID."""

    def __init__(self, root: Path, venv: Path, database_url: str) -> None:
        self.venv = venv
        self.directory = root / "keystone"
        self.port = free_port()
        passwords = keystone.passwords(self.directory / "users.json")
        self.identity = keystone.Identity(f"http://127.0.0.1:{self.port}/v3", passwords)
        self.conf = keystone.write_config(self.directory, database_url)
        self.clouds_yaml = root / "clouds.yaml"
        self.clouds: dict[str, dict[str, Any]] = {
            "hakit": self.identity.cloud(),
            "demo": self.identity.cloud(keystone.DEMO_USER, "demo"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "keystone.log"

    def start(self, endpoints: Mapping[str, str]) -> None:
        """db_sync, keys, bootstrap; serve; users, roles, `endpoints`; clouds.yaml."""
        keystone.setup(self.venv, self.conf, self.identity)
        argv, env = keystone.command(self.venv, self.conf, port=self.port)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not http_answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise LabError(f"Keystone did not answer on port {self.port}:\n{tail}")
            time.sleep(0.2)
        keystone.ensure_catalog(self.identity, endpoints)
        keystone.clouds_yaml(self.clouds_yaml, self.clouds)

    def admin(self) -> keystone.Admin:
        return keystone.Admin(self.identity.url, self.identity.admin_password)

    def project_cloud(self, project: str) -> str:
        """Cloud `hakit-<project>` in clouds.yaml: hakit's user as the admin of a project of
        its own (servers and quotas apart from other modules'); created once."""
        name = f"hakit-{project}"
        if name not in self.clouds:
            admin = self.admin()
            domain = admin.find("domains", name=keystone.DOMAIN)
            assert domain is not None
            body = {"name": project, "domain_id": domain["id"]}
            made = admin.ensure("projects", body, name=project)
            user = admin.find("users", name=keystone.HAKIT_USER)
            assert user is not None
            admin.grant(user["id"], made["id"], "admin")
            self.clouds[name] = self.identity.cloud(keystone.HAKIT_USER, project)
            keystone.clouds_yaml(self.clouds_yaml, self.clouds)
        return name

    def application_credential(self, name: str) -> tuple[str, str]:
        """A new application credential of hakit's user in project service, made with the
        user's own token: (id, secret)."""
        session = CloudSession(str(self.clouds_yaml), "hakit").session()
        url = f"{self.identity.url}/users/{session.get_user_id()}/application_credentials"
        body = {"application_credential": {"name": f"{name}-{secrets.token_hex(4)}"}}
        made = session.post(url, json=body).json()["application_credential"]
        return str(made["id"]), str(made["secret"])

    def delete_application_credential(self, credential: str) -> None:
        """Delete it (Keystone then refuses its tokens and the credential itself)."""
        session = CloudSession(str(self.clouds_yaml), "hakit").session()
        url = f"{self.identity.url}/users/{session.get_user_id()}/application_credentials"
        session.delete(f"{url}/{credential}")

    def application_cloud(self, credential: str, secret: str) -> dict[str, Any]:
        """A clouds.yaml entry authenticating with an application credential."""
        return {
            "auth_type": "v3applicationcredential",
            "auth": {
                "auth_url": self.identity.url,
                "application_credential_id": credential,
                "application_credential_secret": secret,
            },
            "region_name": keystone.REGION,
            "interface": "public",
        }

    def stop(self) -> None:
        if self.process is not None:
            left = proc.terminate_tree(self.process.pid, time.monotonic() + 15, kill_margin=5)
            self.process.wait(timeout=5)
            assert not left, f"Keystone: {left} survived"
