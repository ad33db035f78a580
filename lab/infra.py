"""The lab's infra node: MariaDB and RabbitMQ started by hand inside a network namespace.

The lab creates the namespace (`ip netns add`, an address on the lab bridge, lo up); this
module starts, checks and stops Debian's `mariadbd` and RabbitMQ in it. Everything they
write lives under one state directory:

    credentials.json   generated passwords (0600, root)
    infra.json         netns, address, namespace inode and the PIDs recorded at start
    mariadb/           (mysql) data/, mariadbd.sock, mariadbd.pid, mariadbd.err
    rabbitmq/          (rabbitmq) HOME with the Erlang cookie, rabbitmq.conf,
                       rabbitmq-env.conf, definitions.json, mnesia/, log/

Daemons are started as `ip netns exec NETNS setsid -f ...` with two marker variables in
their environment, which every child inherits (epmd, erl_child_setup, ...); stop and
status find processes by marker and by /proc/PID/ns/net, so only this infra node's
processes are ever signalled. RabbitMQ is `rabbit@localhost`; epmd and Erlang
distribution listen on the namespace's own 127.0.0.1, AMQP on ADDRESS:5672.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import errno
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hakit.lab.errors import LabError
from hakit.ocf import proc

PACKAGES = ("mariadb-server", "rabbitmq-server")
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
POLICY_DENY = b"#!/bin/sh\n# hakit lab: no daemon starts during apt-get install\nexit 101\n"

MYSQL_PORT = 3306
AMQP_PORT = 5672
DIST_PORT = AMQP_PORT + 20000
DB_USER = "hakit"
DB_NAME = "hakit"
RABBIT_USER = "hakit"
NODENAME = "rabbit@localhost"
MARKER = "HAKIT_LAB_INFRA"  # = resolved state dir
SERVICE_MARKER = "HAKIT_LAB_SERVICE"  # = mariadb | rabbitmq
SERVICES = ("mariadb", "rabbitmq")
MAIN_PROCESS = {"mariadb": "mariadbd", "rabbitmq": "beam.smp"}
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # not the /usr/sbin su wrapper
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"  # idem: the wrapper changes HOME
CLONE_NEWNET = 0x40000000
SOCKET_PATH_MAX = 107


T = TypeVar("T")


@dataclass
class InfraInfo:
    """How to reach the infra node's services (URLs carry the password: kept out of repr)."""

    address: str
    mysql_port: int
    amqp_port: int
    mysql_url: str = field(repr=False)
    transport_url: str = field(repr=False)
    pids: dict[str, int]


# --- packages ---------------------------------------------------------------------------


def _require_root() -> None:
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
    _require_root()
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


def _require_packages() -> None:
    for path in (
        "/usr/sbin/mariadbd",
        "/usr/bin/mariadb-install-db",
        "/usr/bin/mariadb",
        RABBITMQ_SERVER,
    ):
        if not Path(path).exists():
            raise LabError(f"{path} is missing (hint: run ensure_packages() / install the lab)")


# --- namespaces and processes -----------------------------------------------------------


def _netns_path(netns: str) -> Path:
    return Path("/run/netns") / netns


def _netns_inode(netns: str) -> int:
    path = _netns_path(netns)
    if not path.exists():
        raise LabError(f"network namespace {netns!r} not found (hint: the lab creates it first)")
    return path.stat().st_ino


def in_netns(netns: str, func: Callable[[], T]) -> T:
    """Run `func` in a short-lived thread that has joined `netns` (sockets it opens live there).

    The network namespace is per thread, so the rest of the process is not affected.
    """
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(_netns_path(netns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns({netns}): {os.strerror(code)}")
            finally:
                os.close(fd)
            result.append(func())
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=body, name=f"netns-{netns}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _proc_environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _proc_netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _proc_comm(pid: int) -> str:
    info = proc.stat(pid)
    return info.comm if info else "?"


def _our_processes(state_dir: Path, ns_inode: int, service: str | None = None) -> list[int]:
    """Live PIDs in the namespace carrying this state dir's marker (of one service or all)."""
    tag = str(state_dir.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if _proc_netns_inode(pid) != ns_inode:
            continue
        env = _proc_environ(pid)
        if env.get(MARKER) != tag or (service and env.get(SERVICE_MARKER) != service):
            continue
        if proc.is_alive(pid):
            found.append(pid)
    return sorted(found)


def _named(pids: list[int]) -> dict[str, int]:
    named: dict[str, int] = {}
    for pid in pids:
        comm = _proc_comm(pid)
        key, n = comm, 1
        while key in named:
            n += 1
            key = f"{comm}.{n}"
        named[key] = pid
    return named


# --- probes -----------------------------------------------------------------------------


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _mysql_answers(address: str, port: int) -> bool:
    """The server sends a protocol-10 handshake packet (or an error packet) on connect."""
    try:
        with socket.create_connection((address, port), timeout=2) as sock:
            header = _recv_exactly(sock, 4)
            if len(header) < 4:
                return False
            payload = _recv_exactly(sock, 1)
            return payload in (b"\x0a", b"\xff")
    except OSError:
        return False


def _amqp_answers(address: str, port: int) -> bool:
    """AMQP 0-9-1 protocol header → a Connection.Start method frame on channel 0."""
    try:
        with socket.create_connection((address, port), timeout=2) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            frame = _recv_exactly(sock, 11)
            return frame[:3] == b"\x01\x00\x00" and frame[7:11] == b"\x00\x0a\x00\x0a"
    except OSError:
        return False


def _bind_problem(address: str, port: int) -> int:
    """0 if (address, port) could be bound, else the errno."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as error:
            return error.errno or -1
    return 0


def _check_bindable(netns: str, address: str, port: int, what: str) -> None:
    problem = in_netns(netns, lambda: _bind_problem(address, port))
    if problem == errno.EADDRNOTAVAIL:
        if address.startswith("127."):
            raise LabError(
                f"loopback is down in netns {netns!r} (hint: ip -n {netns} link set lo up)"
            )
        raise LabError(
            f"{address} is not an address of netns {netns!r} (hint: check `ip -n {netns} addr`)"
        )
    if problem == errno.EADDRINUSE:
        raise LabError(
            f"port {port} on {address} in netns {netns!r} is busy, needed for {what} "
            "(hint: stop whatever listens there, e.g. another infra node)"
        )
    if problem:
        raise LabError(f"cannot bind {address}:{port} in netns {netns!r}: {os.strerror(problem)}")


# --- state files ------------------------------------------------------------------------


@dataclass
class _Layout:
    root: Path

    @property
    def credentials(self) -> Path:
        return self.root / "credentials.json"

    @property
    def record(self) -> Path:
        return self.root / "infra.json"

    @property
    def mariadb(self) -> Path:
        return self.root / "mariadb"

    @property
    def datadir(self) -> Path:
        return self.mariadb / "data"

    @property
    def mysql_socket(self) -> Path:
        return self.mariadb / "mariadbd.sock"

    @property
    def rabbitmq(self) -> Path:
        return self.root / "rabbitmq"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_private(path: Path, text: str, mode: int = 0o600, owner: str | None = None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    if owner:
        shutil.chown(tmp, owner, owner)
    tmp.replace(path)


def _credentials(layout: _Layout) -> tuple[dict[str, str], bool]:
    """The stored passwords and Erlang cookie, generated on first use; (creds, new)."""
    creds = _read_json(layout.credentials)
    if {"mysql", "rabbitmq", "cookie"} <= creds.keys():
        return {k: str(v) for k, v in creds.items()}, False
    creds = {
        "mysql": secrets.token_hex(16),
        "rabbitmq": secrets.token_hex(16),
        "cookie": secrets.token_hex(20).upper(),
    }
    _write_private(layout.credentials, json.dumps(creds, indent=1) + "\n")
    return creds, True


def _make_dir(path: Path, owner: str, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    shutil.chown(path, owner, owner)
    path.chmod(mode)


def _check_reachable(path: Path, user: str) -> None:
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


def _info(address: str, creds: dict[str, str], pids: dict[str, int]) -> InfraInfo:
    return InfraInfo(
        address=address,
        mysql_port=MYSQL_PORT,
        amqp_port=AMQP_PORT,
        mysql_url=f"mysql+pymysql://{DB_USER}:{creds['mysql']}@{address}/{DB_NAME}",
        transport_url=f"rabbit://{RABBIT_USER}:{creds['rabbitmq']}@{address}:{AMQP_PORT}/",
        pids=pids,
    )


# --- MariaDB ----------------------------------------------------------------------------


def _spawn(netns: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
    """Start `argv` detached (new session, reparented) inside `netns`."""
    with log.open("ab") as out:
        done = subprocess.run(
            ["ip", "netns", "exec", netns, "setsid", "-f", *argv],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            check=False,
        )
    if done.returncode != 0:
        raise LabError(f"could not start {argv[0]} in netns {netns!r} (hint: see {log})")


def _tail(path: Path, lines: int = 2) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(ln.strip() for ln in text[-lines:])


def _marker_env(state_dir: Path, service: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        MARKER: str(state_dir),
        SERVICE_MARKER: service,
    }


MARIADB_TUNING = ["--innodb-log-file-size=16M", "--innodb-buffer-pool-size=64M"]


def _prepare_mariadb(layout: _Layout, netns: str, address: str) -> None:
    _make_dir(layout.mariadb, "mysql", 0o750)
    _check_reachable(layout.mariadb, "mysql")
    if len(str(layout.mysql_socket)) > SOCKET_PATH_MAX:
        raise LabError(f"state dir path too long for a unix socket: {layout.mysql_socket}")
    _check_bindable(netns, address, MYSQL_PORT, "MariaDB")


def _start_mariadb(layout: _Layout, netns: str, address: str) -> None:
    if not (layout.datadir / "mysql").is_dir():
        shutil.rmtree(layout.datadir, ignore_errors=True)
        done = subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={layout.datadir}",
                "--user=mysql",
                "--skip-test-db",
                "--skip-name-resolve",
                *MARIADB_TUNING,
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
        f"--datadir={layout.datadir}",
        f"--socket={layout.mysql_socket}",
        f"--pid-file={layout.mariadb / 'mariadbd.pid'}",
        f"--log-error={layout.mariadb / 'mariadbd.err'}",
        f"--bind-address={address}",
        f"--port={MYSQL_PORT}",
        "--skip-name-resolve",
        "--max-connect-errors=1000000000",
        "--max-connections=500",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_general_ci",
        *MARIADB_TUNING,
    ]
    env = _marker_env(layout.root, "mariadb")
    _spawn(netns, argv, env, layout.mariadb / "mariadbd.out", layout.mariadb)


def _setup_mariadb_user(layout: _Layout, password: str) -> None:
    """Create (or re-password) the `hakit` user and database; SQL on stdin, root socket."""
    sql = (
        f"CREATE DATABASE IF NOT EXISTS {DB_NAME} CHARACTER SET utf8mb4;\n"
        f"CREATE USER IF NOT EXISTS '{DB_USER}'@'%' IDENTIFIED BY '{password}';\n"
        f"ALTER USER '{DB_USER}'@'%' IDENTIFIED BY '{password}';\n"
        f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'%' WITH GRANT OPTION;\n"
    )
    done = subprocess.run(
        [
            "mariadb",
            "--no-defaults",
            "--protocol=socket",
            f"--socket={layout.mysql_socket}",
            "--user=root",
            "--batch",
        ],
        input=sql,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise LabError(f"MariaDB user setup failed: {done.stderr.strip()}")


# --- RabbitMQ ---------------------------------------------------------------------------


def rabbit_password_hash(password: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def rabbitmq_env(state_dir: Path, address: str) -> dict[str, str]:
    """Environment for rabbitmq-server/rabbitmqctl of this infra node (run them in the netns)."""
    return rabbitmq_environment(state_dir.resolve() / "rabbitmq", address)


def rabbitmq_environment(
    home: Path,
    address: str,
    *,
    nodename: str = NODENAME,
    amqp_port: int = AMQP_PORT,
    dist_port: int = DIST_PORT,
) -> dict[str, str]:
    """Environment for a RabbitMQ whose files all live in `home`, listening on `address`;
    distribution and epmd stay on loopback."""
    loopback = "-kernel inet_dist_use_interface {127,0,0,1}"
    return {
        "HOME": str(home),  # the Erlang cookie
        "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
        "RABBITMQ_NODENAME": nodename,
        "RABBITMQ_NODE_IP_ADDRESS": address,
        "RABBITMQ_NODE_PORT": str(amqp_port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": loopback,
        "RABBITMQ_CTL_ERL_ARGS": loopback,
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }


def _prepare_rabbitmq(layout: _Layout, netns: str, address: str) -> None:
    _make_dir(layout.rabbitmq, "rabbitmq", 0o750)
    _check_reachable(layout.rabbitmq, "rabbitmq")
    _check_bindable(netns, address, AMQP_PORT, "RabbitMQ")
    _check_bindable(netns, "127.0.0.1", DIST_PORT, "RabbitMQ distribution")


def _start_rabbitmq(layout: _Layout, netns: str, address: str, creds: dict[str, str]) -> None:
    home = layout.rabbitmq
    for sub in ("mnesia", "log"):
        _make_dir(home / sub, "rabbitmq", 0o750)
    env = rabbitmq_env(layout.root, address)
    env_file = "".join(f"{k}='{v}'\n" for k, v in env.items() if k != "HOME")
    definitions = {  # imported at every boot: the user's password always matches
        "users": [
            {
                "name": RABBIT_USER,
                "password_hash": rabbit_password_hash(creds["rabbitmq"]),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["administrator"],
            }
        ],
        "vhosts": [{"name": "/"}],
        "permissions": [
            {"user": RABBIT_USER, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
        ],
    }
    conf = (
        f"load_definitions = {home / 'definitions.json'}\n"
        "log.console = false\nlog.file.level = info\n"
    )
    files = {
        ".erlang.cookie": (creds["cookie"], 0o400),
        "rabbitmq-env.conf": (env_file, 0o644),
        "enabled_plugins": ("[].\n", 0o644),
        "definitions.json": (json.dumps(definitions, indent=1) + "\n", 0o600),
        "rabbitmq.conf": (conf, 0o644),
    }
    for name, (text, mode) in files.items():
        (home / name).unlink(missing_ok=True)  # the cookie is read-only
        _write_private(home / name, text, mode, owner="rabbitmq")
    argv = ["setpriv", "--reuid=rabbitmq", "--regid=rabbitmq", "--init-groups", RABBITMQ_SERVER]
    _spawn(netns, argv, {**_marker_env(layout.root, "rabbitmq"), **env}, home / "startup.log", home)


# --- start / stop / status --------------------------------------------------------------


def _answers(netns: str, address: str, service: str) -> bool:
    if service == "mariadb":
        return in_netns(netns, lambda: _mysql_answers(address, MYSQL_PORT))
    return in_netns(netns, lambda: _amqp_answers(address, AMQP_PORT))


def _main_running(state_dir: Path, ns_inode: int, service: str) -> bool:
    pids = _our_processes(state_dir, ns_inode, service)
    return MAIN_PROCESS[service] in {_proc_comm(p) for p in pids}


def _log_of(layout: _Layout, service: str) -> Path:
    if service == "mariadb":
        return layout.mariadb / "mariadbd.err"
    return layout.rabbitmq / "log" / f"{NODENAME}.log"


def _wait_answering(
    netns: str, address: str, service: str, deadline: float, state_dir: Path, ns_inode: int
) -> bool:
    """Poll until `service` answers; give up at `deadline` or once its main process is gone."""
    last_check = time.monotonic()
    while True:
        if _answers(netns, address, service):
            return True
        now = time.monotonic()
        if now >= deadline:
            return False
        if now - last_check > 1.0:
            last_check = now
            if not _main_running(state_dir, ns_inode, service):
                return False
        time.sleep(0.1)


def _await_start(
    layout: _Layout, netns: str, address: str, service: str, deadline: float, timeout: float
) -> None:
    ns_inode = _netns_inode(netns)
    if _wait_answering(netns, address, service, deadline, layout.root, ns_inode):
        return
    log = _log_of(layout, service)
    if _main_running(layout.root, ns_inode, service):
        raise LabError(
            f"{service} in netns {netns!r} did not answer within {timeout:.0f} s (hint: see {log})"
        )
    raise LabError(f"{service} exited at start: {_tail(log)} (hint: see {log})")


def start_infra(state_dir: Path, netns: str, address: str, *, timeout: float = 60) -> InfraInfo:
    """Start MariaDB and RabbitMQ inside `netns`, listening on `address`; idempotent.

    Services already running from this state dir and answering are kept; the others (all,
    if the address or namespace changed) are cleaned up and started. Returns once both
    answer. The first start also initialises the MariaDB data directory.
    """
    _require_root()
    _require_packages()
    deadline = time.monotonic() + timeout
    state_dir = state_dir.resolve()
    ns_inode = _netns_inode(netns)
    layout = _Layout(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    record = _read_json(layout.record)
    creds, new_creds = _credentials(layout)
    moved = record and (record.get("address") != address or record.get("netns_inode") != ns_inode)
    if moved or new_creds:  # running services would not match: stop them all
        stop_infra(state_dir, str(record.get("netns", netns)), timeout=timeout)
    wanted = []
    for service in ("rabbitmq", "mariadb"):  # the slow one first
        if _main_running(state_dir, ns_inode, service):
            grace = min(deadline, time.monotonic() + 5)
            if _wait_answering(netns, address, service, grace, state_dir, ns_inode):
                continue
        _stop_services(state_dir, ns_inode, (service,), timeout)  # leftovers, if any
        wanted.append(service)
    for service in wanted:  # every check before anything starts
        prepare = _prepare_mariadb if service == "mariadb" else _prepare_rabbitmq
        prepare(layout, netns, address)
    for service in wanted:
        if service == "mariadb":
            _start_mariadb(layout, netns, address)
        else:
            _start_rabbitmq(layout, netns, address, creds)
    for service in reversed(wanted):
        _await_start(layout, netns, address, service, deadline, timeout)
        if service == "mariadb":
            _setup_mariadb_user(layout, creds["mysql"])
    pids = record.get("pids") or {}
    if wanted or not pids:
        pids = _named(_our_processes(state_dir, ns_inode))
        text = json.dumps(
            {"netns": netns, "address": address, "netns_inode": ns_inode, "pids": pids}, indent=1
        )
        _write_private(layout.record, text + "\n", 0o644)
    return _info(address, creds, {str(k): int(v) for k, v in pids.items()})


def _stop_services(
    state_dir: Path, ns_inode: int, services: tuple[str, ...], timeout: float
) -> None:
    """SIGTERM the main processes (an orderly shutdown for both), wait, SIGKILL the rest."""
    deadline = time.monotonic() + timeout

    def ours() -> list[int]:
        return [pid for s in services for pid in _our_processes(state_dir, ns_inode, s)]

    mains = {MAIN_PROCESS[s] for s in services}
    for pid in ours():
        if _proc_comm(pid) in mains:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    while time.monotonic() < deadline and any(_proc_comm(p) in mains for p in ours()):
        time.sleep(0.1)
    leftovers = ours()
    for _ in range(50):
        if not leftovers:
            return
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
        leftovers = ours()
    raise LabError(f"processes {leftovers} survived SIGKILL (hint: check `ps -o pid,stat`)")


def stop_infra(state_dir: Path, netns: str, *, timeout: float = 60) -> None:
    """Stop both services (SIGTERM, then SIGKILL for leftovers); idempotent.

    Only processes in `netns` (or, if it is gone, in the namespace recorded at start)
    carrying this state dir's marker are signalled.
    """
    _require_root()
    state_dir = state_dir.resolve()
    layout = _Layout(state_dir)
    record = _read_json(layout.record)
    try:
        ns_inode = _netns_inode(netns)
    except LabError:
        if "netns_inode" not in record:
            return
        ns_inode = int(record["netns_inode"])
    _stop_services(state_dir, ns_inode, SERVICES, timeout)
    if record.get("pids"):
        record["pids"] = {}
        _write_private(layout.record, json.dumps(record, indent=1) + "\n", 0o644)


def infra_status(state_dir: Path, netns: str) -> dict[str, Any]:
    """{"netns", "netns_exists", "address", "running", "mariadb"/"rabbitmq": {"running",
    "answering", "pids"}}; "running" is true when both services answer."""
    _require_root()
    state_dir = state_dir.resolve()
    record = _read_json(_Layout(state_dir).record)
    address = str(record.get("address", ""))
    status: dict[str, Any] = {"netns": netns, "address": address}
    try:
        ns_inode: int | None = _netns_inode(netns)
    except LabError:  # processes may outlive the netns's name: look in the recorded one
        ns_inode = record.get("netns_inode")
    status["netns_exists"] = _netns_path(netns).exists()
    for service in SERVICES:
        pids = _our_processes(state_dir, ns_inode, service) if ns_inode else []
        running = MAIN_PROCESS[service] in {_proc_comm(p) for p in pids}
        answering = running and status["netns_exists"] and _answers(netns, address, service)
        status[service] = {"running": running, "answering": answering, "pids": _named(pids)}
    status["running"] = all(status[s]["answering"] for s in SERVICES)
    return status
