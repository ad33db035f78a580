"""Debian's mariadbd for an infra node, started by hand: its own datadir and socket under
the state directory, run as mysql, listening on the node's address only."""

from __future__ import annotations

import shutil
import subprocess
import time

from hakit.lab.errors import LabError
from hakit.lab.infra.netns import check_bindable, marker_env, spawn
from hakit.lab.infra.settings import SOCKET_PATH_MAX, Settings, check_reachable, make_dir

MAIN_PROCESS = "mariadbd"


def prepare_mariadb(settings: Settings) -> None:
    """Every check before anything starts: the directory, the socket path, the port."""
    make_dir(settings.mariadb, "mysql", 0o750)
    check_reachable(settings.mariadb, "mysql")
    if len(str(settings.mysql_socket)) > SOCKET_PATH_MAX:
        raise LabError(f"state dir path too long for a unix socket: {settings.mysql_socket}")
    check_bindable(settings.netns, settings.address, settings.mysql_port, "MariaDB")


def start_mariadb(settings: Settings) -> None:
    """Initialise the datadir on first use, then start mariadbd detached."""
    if not (settings.datadir / "mysql").is_dir():
        shutil.rmtree(settings.datadir, ignore_errors=True)
        done = subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={settings.datadir}",
                "--user=mysql",
                "--skip-test-db",
                "--skip-name-resolve",
                *settings.mariadb_options,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise LabError(f"mariadb-install-db failed: {last}")
    argv = [
        "/usr/sbin/mariadbd",
        "--no-defaults",
        "--user=mysql",
        f"--datadir={settings.datadir}",
        f"--socket={settings.mysql_socket}",
        f"--pid-file={settings.mariadb / 'mariadbd.pid'}",
        f"--log-error={settings.mariadb / 'mariadbd.err'}",
        f"--bind-address={settings.address}",
        f"--port={settings.mysql_port}",
        "--skip-name-resolve",
        "--max-connect-errors=1000000000",
        "--max-connections=500",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_general_ci",
        *settings.mariadb_options,
    ]
    env = marker_env(settings.state_dir, "mariadb")
    spawn(settings.netns, argv, env, settings.mariadb / "mariadbd.out", settings.mariadb)


def mariadb_sql(settings: Settings, sql: str, *, retry_for: float = 0) -> str:
    """Run SQL (on stdin) as root over the server's socket; its output, tab-separated and
    without column names. A failure is retried for `retry_for` seconds, then a LabError."""
    deadline = time.monotonic() + retry_for
    while True:
        done = subprocess.run(
            [
                "mariadb",
                "--no-defaults",
                "--protocol=socket",
                f"--socket={settings.mysql_socket}",
                "--user=root",
                "--batch",
                "--skip-column-names",
            ],
            input=sql,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return done.stdout
        if time.monotonic() >= deadline:
            raise LabError(f"mariadb: {done.stderr.strip()}")
        time.sleep(0.2)


def setup_mariadb_user(settings: Settings, password: str) -> None:
    """Create (or re-password) the user, and its database if it has one."""
    user = settings.db_user
    sql = f"CREATE DATABASE IF NOT EXISTS {settings.database} CHARACTER SET utf8mb4;\n"
    sql = sql if settings.database else ""
    sql += (
        f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}';\n"
        f"ALTER USER '{user}'@'%' IDENTIFIED BY '{password}';\n"
        f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%' WITH GRANT OPTION;\n"
    )
    try:
        mariadb_sql(settings, sql)
    except LabError as error:
        raise LabError(f"MariaDB user setup failed: {error}") from None
