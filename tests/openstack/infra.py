"""MariaDB and RabbitMQ of the test session, on 127.0.0.1 with ports of their own.

Each lives in a private directory (datadir, socket, mnesia, logs) and carries a marker
variable that every child inherits (epmd, erl_child_setup...), so teardown signals
exactly the processes these classes started, by PID.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

from hakit.lab import infra as lab_infra
from hakit.ocf import proc

MARKER = "HAKIT_OPENSTACK_TEST"
MYSQL_PORT = 3307
AMQP_PORT = 5673
MANAGEMENT_PORT = 15673
DIST_PORT = 25673
EPMD_PORT = 4370
RABBITMQ_NODE = "hakit-test@localhost"
RABBITMQ_SERVER = lab_infra.RABBITMQ_SERVER
RABBITMQCTL = lab_infra.RABBITMQCTL
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}


def marked(root: Path) -> list[int]:
    """Live PIDs whose environment carries this root's marker."""
    tag = f"{MARKER}={root}".encode()
    found = []
    for info in proc.all_processes():
        try:
            environ = Path(f"/proc/{info.pid}/environ").read_bytes()
        except OSError:
            continue
        if tag in environ.split(b"\0") and info.alive:
            found.append(info.pid)
    return found


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for(check: object, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} not ready within {timeout:.0f}s\n{tail}")


def amqp_answers(port: int = AMQP_PORT) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(1)[:1] == b"\x01"
    except OSError:
        return False


def http_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return sock.recv(5) == b"HTTP/"
    except OSError:
        return False


class MariaDB:
    """mariadbd on 127.0.0.1:3307 with its own datadir and socket, run as root."""

    def __init__(self, root: Path, password: str) -> None:
        self.root = root / "mariadb"
        self.password = password
        self.socket = self.root / "mariadbd.sock"
        self.child: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mysql+pymysql://openstack:{self.password}@127.0.0.1:{MYSQL_PORT}"

    def start(self) -> None:
        if not port_free(MYSQL_PORT):
            raise RuntimeError(f"127.0.0.1:{MYSQL_PORT} is busy")
        datadir = self.root / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        tuning = ["--innodb-log-file-size=16M", "--innodb-buffer-pool-size=128M"]
        done = subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={datadir}",
                "--user=root",
                "--skip-test-db",
                "--skip-name-resolve",
                *tuning,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db: {done.stderr[-2000:]}")
        argv = [
            "/usr/sbin/mariadbd",
            "--no-defaults",
            "--user=root",
            f"--datadir={datadir}",
            f"--socket={self.socket}",
            f"--pid-file={self.root / 'mariadbd.pid'}",
            f"--log-error={self.root / 'mariadbd.err'}",
            "--bind-address=127.0.0.1",
            f"--port={MYSQL_PORT}",
            "--skip-name-resolve",
            "--max-connections=500",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--skip-log-bin",
            *tuning,
        ]
        env = {**BASE_ENV, MARKER: str(self.root)}
        with (self.root / "mariadbd.out").open("ab") as out:
            self.child = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        wait_for(self.socket.exists, 30, "MariaDB", self.root / "mariadbd.err")
        self.sql(
            f"CREATE USER IF NOT EXISTS 'openstack'@'%' IDENTIFIED BY '{self.password}';\n"
            "GRANT ALL PRIVILEGES ON *.* TO 'openstack'@'%';\n"
        )

    def sql(self, text: str) -> str:
        deadline = time.monotonic() + 20
        while True:
            done = subprocess.run(
                [
                    "mariadb",
                    "--no-defaults",
                    "--protocol=socket",
                    f"--socket={self.socket}",
                    "--user=root",
                    "--batch",
                    "--skip-column-names",
                ],
                input=text,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode == 0:
                return done.stdout
            if time.monotonic() > deadline:
                raise RuntimeError(f"mariadb: {done.stderr.strip()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.child is None:
            return
        left = proc.terminate([self.child.pid], time.monotonic() + 30, kill_margin=5)
        if left:
            raise RuntimeError(f"MariaDB {left} survived")
        self.child.wait(timeout=5)  # reap it


class RabbitMQ:
    """RabbitMQ node hakit-test@localhost: AMQP on 127.0.0.1:5673, management on 15673,
    epmd on 127.0.0.1:4370, Erlang distribution on 25673; user `openstack`."""

    def __init__(self, root: Path, password: str) -> None:
        self.root = root / "rabbitmq"
        self.marker_root = self.root
        self.password = password
        self.child: subprocess.Popen[bytes] | None = None

    @property
    def transport_url(self) -> str:
        return f"rabbit://openstack:{self.password}@127.0.0.1:{AMQP_PORT}/"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{MANAGEMENT_PORT}"

    def env(self) -> dict[str, str]:
        return {
            **BASE_ENV,
            MARKER: str(self.marker_root),
            **lab_infra.rabbitmq_environment(
                self.root,
                "127.0.0.1",
                nodename=RABBITMQ_NODE,
                amqp_port=AMQP_PORT,
                dist_port=DIST_PORT,
            ),
            "ERL_EPMD_PORT": str(EPMD_PORT),
        }

    def start(self) -> None:
        for port in (AMQP_PORT, MANAGEMENT_PORT, DIST_PORT, EPMD_PORT):
            if not port_free(port):
                raise RuntimeError(f"127.0.0.1:{port} is busy")
        home = self.root
        for sub in ("mnesia", "log"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        definitions = {
            "users": [
                {
                    "name": "openstack",
                    "password_hash": lab_infra.rabbit_password_hash(self.password),
                    "hashing_algorithm": "rabbit_password_hashing_sha256",
                    "tags": ["administrator"],
                }
            ],
            "vhosts": [{"name": "/"}],
            "permissions": [
                {"user": "openstack", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
            ],
        }
        files = {
            ".erlang.cookie": (secrets.token_hex(20).upper(), 0o400),
            "rabbitmq-env.conf": ("", 0o644),
            "enabled_plugins": ("[rabbitmq_management].\n", 0o644),
            "definitions.json": (json.dumps(definitions), 0o600),
            "rabbitmq.conf": (
                f"load_definitions = {home / 'definitions.json'}\n"
                f"management.tcp.port = {MANAGEMENT_PORT}\nmanagement.tcp.ip = 127.0.0.1\n"
                "log.console = false\nlog.file.level = info\n",
                0o644,
            ),
        }
        for name, (text, mode) in files.items():
            path = home / name
            path.unlink(missing_ok=True)
            path.write_text(text)
            path.chmod(mode)
        with (home / "startup.log").open("ab") as out:
            self.child = subprocess.Popen(
                [RABBITMQ_SERVER],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        log = home / "log" / f"{RABBITMQ_NODE}.log"
        wait_for(amqp_answers, 60, "RabbitMQ", log)
        wait_for(lambda: http_answers(MANAGEMENT_PORT), 60, "RabbitMQ management", log)

    def ctl(self, *args: str) -> None:
        done = subprocess.run(
            [RABBITMQCTL, "-n", RABBITMQ_NODE, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr.strip()}")

    def stop(self) -> None:
        """TERM beam.smp (orderly shutdown), then whatever else carries the marker."""
        mine = marked(self.marker_root)
        beams = [p for p in mine if (info := proc.stat(p)) and info.comm == "beam.smp"]
        for pid in beams:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(proc.is_alive(p) for p in beams):
            time.sleep(0.1)
        rest = marked(self.marker_root)
        left = proc.terminate(rest, time.monotonic() + 10, kill_margin=5)
        if left:
            raise RuntimeError(f"RabbitMQ processes {left} survived")
        if self.child is not None:
            self.child.wait(timeout=5)  # reap the rabbitmq-server script
