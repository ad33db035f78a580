"""Real OpenStack services for tests and the lab: a cached, pinned venv, configs, db syncs.

    venv = ensure_venv()                   # /opt/hakit/openstack-venv, or $HAKIT_OPENSTACK_VENV
    write_config(path, cinder_config(...)) # oslo .conf files from plain dicts
    create_databases(venv, server_url, ["cinder"]); cinder_db_sync(venv, [path])

The venv holds cinder, nova and placement from PyPI, pinned by `openstack-constraints.txt`
(the `pip freeze` of a venv that worked). It is keyed on a hash of the constraints, the
requirements and the interpreter: a second `ensure_venv` is a stamp-file read. The
agents never import anything from it; they run the services' console scripts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hakit.lab.errors import LabError

if TYPE_CHECKING:
    from hakit.lab.keystone import Identity

DEFAULT_VENV = Path("/opt/hakit/openstack-venv")
VENV_ENV = "HAKIT_OPENSTACK_VENV"
SYSTEM_PYTHON = "/usr/bin/python3"
REQUIREMENTS = (
    "cinder==29.0.0",
    "nova==34.0.0",
    "openstack-placement==16.0.0",
    "keystone==30.0.0",
    "PyMySQL",
)
CONSTRAINTS = Path(__file__).with_name("openstack-constraints.txt")
STAMP = ".hakit-openstack-stamp"
#: The only driver in the cinder wheel that supports active/active (no LVM, no sudo).
FAKE_HA_DRIVER = "cinder.tests.fake_driver.FakeHAReplicatedLoggingVolumeDriver"
#: Its parent: a fine backend for active/passive, refused by cinder when clustered.
FAKE_DRIVER = "cinder.tests.fake_driver.FakeLoggingVolumeDriver"

Sections = Mapping[str, Mapping[str, object]]
Progress = Callable[[str], None]


def venv_path() -> Path:
    """Where the venv lives: $HAKIT_OPENSTACK_VENV, else /opt/hakit/openstack-venv."""
    return Path(os.environ.get(VENV_ENV) or DEFAULT_VENV)


def venv_key(python: str = SYSTEM_PYTHON) -> str:
    """Hash of what the venv is built from: constraints, requirements, interpreter."""
    digest = hashlib.sha256()
    digest.update(CONSTRAINTS.read_bytes())
    digest.update("\n".join(REQUIREMENTS).encode())
    digest.update(os.path.realpath(python).encode())
    return digest.hexdigest()[:16]


def venv_is_current(path: Path | None = None, python: str = SYSTEM_PYTHON) -> bool:
    path = path or venv_path()
    try:
        stamp = (path / STAMP).read_text().strip()
    except OSError:
        return False
    return stamp == venv_key(python) and (path / "bin" / "python").exists()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time (parallel test sessions, lab nodes sharing the path)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_venv(
    path: Path | None = None, *, python: str = SYSTEM_PYTHON, progress: Progress | None = None
) -> Path:
    """The pinned venv, built on first use (about a minute) and reused while its key holds."""
    path = path or venv_path()
    key = venv_key(python)
    if venv_is_current(path, python):
        return path
    with _locked(path):
        if venv_is_current(path, python):  # built by someone else while we waited
            return path
        began = time.monotonic()
        (path / STAMP).unlink(missing_ok=True)
        if not (path / "bin" / "python").exists():
            if path.exists():
                shutil.rmtree(path)
            _run([python, "-m", "venv", str(path)], "creating the venv")
        pip = [
            str(path / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-c",
            str(CONSTRAINTS),
        ]
        if progress:
            progress(f"pip install {' '.join(REQUIREMENTS)} into {path}")
        _run([*pip, *REQUIREMENTS], "pip install", timeout=1800)
        (path / STAMP).write_text(key + "\n")
        if progress:
            progress(f"venv ready in {time.monotonic() - began:.0f} s")
    return path


def _run(
    argv: Sequence[str], what: str, *, timeout: float = 600, env: Mapping[str, str] | None = None
) -> str:
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LabError(f"{what} failed: {error}") from None
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise LabError(f"{what} failed (exit {done.returncode}): {last}")
    return done.stdout


# --- configuration files ------------------------------------------------------------------


def render_config(sections: Sections) -> str:
    """oslo.config INI text; booleans as true/false, lists comma-joined."""
    out = []
    for name, options in sections.items():
        out.append(f"[{name}]")
        for key, value in options.items():
            if value is None:
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, list | tuple):
                text = ",".join(str(v) for v in value)
            else:
                text = str(value)
            out.append(f"{key} = {text}")
        out.append("")
    return "\n".join(out)


def write_config(path: Path, sections: Sections, *, mode: int = 0o640) -> Path:
    """Write the file atomically, private (it holds database and broker passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(render_config(sections))
    os.chmod(tmp, mode)
    tmp.replace(path)
    return path


def cinder_config(
    *,
    transport_url: str,
    database_url: str,
    state_dir: Path,
    backend: str = "fake",
    volume_driver: str = FAKE_HA_DRIVER,
    cluster: str | None = None,
    coordination_url: str | None = None,
    host: str | None = None,
    report_interval: int = 10,
    service_down_time: int = 60,
    api_port: int | None = None,
    api_paste_config: Path | None = None,
    api_listen: str = "127.0.0.1",
    identity: Identity | None = None,
) -> dict[str, dict[str, object]]:
    """cinder.conf for cinder-volume/-scheduler (and cinder-api when `api_port` is given:
    `api_paste_config` is the venv's etc/cinder/api-paste.ini) on one backend. cinder-api
    authenticates through Keystone (`identity`, required with `api_port`)."""
    default: dict[str, object] = {
        "transport_url": transport_url,
        "enabled_backends": backend,
        "host": host,
        "cluster": cluster,
        "report_interval": report_interval,
        "service_down_time": service_down_time,
        "state_path": state_dir,
        "auth_strategy": "keystone",
        "debug": False,
        "use_stderr": True,
    }
    if api_port is not None and identity is None:
        raise LabError("cinder-api needs Keystone: pass identity")
    if api_port is not None:
        default |= {
            "osapi_volume_listen": api_listen,
            "osapi_volume_listen_port": api_port,
            "osapi_volume_workers": 1,
            "api_paste_config": api_paste_config,
        }
    sections: dict[str, dict[str, object]] = {
        "DEFAULT": default,
        "database": {"connection": database_url},
        "oslo_concurrency": {"lock_path": state_dir / "locks"},
        backend: {"volume_driver": volume_driver, "volume_backend_name": backend},
    }
    if coordination_url:
        sections["coordination"] = {"backend_url": coordination_url}
    if identity is not None:
        sections["keystone_authtoken"] = identity.authtoken("cinder")
        sections["nova"] = identity.credentials("cinder")  # external events to nova
    return sections


def nova_config(
    *,
    transport_url: str,
    database_url: str,
    api_database_url: str,
    state_dir: Path,
    host: str | None = None,
    report_interval: int = 10,
    service_down_time: int = 60,
    scheduler_workers: int = 2,
    novncproxy_port: int = 6080,
    novncproxy_host: str = "127.0.0.1",
    placement_url: str = "http://127.0.0.1:8778",
    identity: Identity | None = None,
) -> dict[str, dict[str, object]]:
    """nova.conf for every nova service: nova-api validates tokens with Keystone
    (`identity`), and nova reaches placement and cinder as its service user, sending its
    service token along (cinder deletes an evacuated server's attachment only then).
    Without `identity` (nova-scheduler and the console proxies alone) nothing reaches
    placement; nova-scheduler still starts and heartbeats. nova-novncproxy serves
    `<state_dir>/novnc` (create it; empty is fine: 404 on /)."""
    sections: dict[str, dict[str, object]] = {
        "DEFAULT": {
            "transport_url": transport_url,
            "web": state_dir / "novnc",
            "host": host,
            "report_interval": report_interval,
            "service_down_time": service_down_time,
            "state_path": state_dir,
            "debug": False,
            "use_stderr": True,
        },
        "api_database": {"connection": api_database_url},
        "database": {"connection": database_url},
        "scheduler": {"workers": scheduler_workers},
        "vnc": {
            "enabled": True,
            "novncproxy_host": novncproxy_host,
            "novncproxy_port": novncproxy_port,
        },
        "oslo_concurrency": {"lock_path": state_dir / "locks"},
        "placement": {"endpoint_override": placement_url},
    }
    if identity is not None:
        sections["keystone_authtoken"] = identity.authtoken("nova")
        sections["service_user"] = {
            "send_service_user_token": True,
            **identity.credentials("nova"),
        }
        sections["placement"] |= identity.credentials("nova")
        sections["cinder"] = {**identity.credentials("nova"), "os_region_name": identity.region}
    return sections


# --- databases ----------------------------------------------------------------------------


def manage(
    venv: Path,
    program: str,
    configs: Sequence[Path],
    *args: str,
    prefix: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
) -> str:
    """Run a `*-manage` program of the venv on `configs`; its output."""
    argv = [*prefix, str(venv / "bin" / program)]
    for config in configs:
        argv += ["--config-file", str(config)]
    env = {
        "PATH": f"{venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/root"),
        **(extra_env or {}),
    }
    return _run([*argv, *args], f"{program} {' '.join(args)}", timeout=600, env=env)


def create_databases(
    venv: Path, server_url: str, names: Sequence[str], *, prefix: Sequence[str] = ()
) -> None:
    """CREATE DATABASE IF NOT EXISTS each name, through the venv's PyMySQL.

    `server_url` is mysql+pymysql://user:password@host:port/... with enough privileges;
    it is passed on stdin, never on a command line. `prefix` runs the command through
    another (e.g. `ip netns exec NODE`), as in the db-sync functions.
    """
    script = (
        "import sys, urllib.parse, pymysql\n"
        "url = urllib.parse.urlsplit(sys.stdin.readline().strip())\n"
        "conn = pymysql.connect(host=url.hostname, port=url.port or 3306,\n"
        "    user=urllib.parse.unquote(url.username or ''),\n"
        "    password=urllib.parse.unquote(url.password or ''))\n"
        "with conn.cursor() as cur:\n"
        "    for name in sys.argv[1:]:\n"
        "        cur.execute(f'CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4')\n"
        "conn.close()\n"
    )
    for name in names:
        if not name.replace("_", "").isalnum():
            raise LabError(f"bad database name {name!r}")
    try:
        done = subprocess.run(
            [*prefix, str(venv / "bin" / "python"), "-c", script, *names],
            input=server_url + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LabError(f"creating databases failed: {error}") from None
    if done.returncode != 0:
        last = (done.stderr.strip() or "no output").splitlines()[-1]
        raise LabError(f"creating databases {', '.join(names)} failed: {last}")


def cinder_db_sync(venv: Path, configs: Sequence[Path], *, prefix: Sequence[str] = ()) -> None:
    manage(venv, "cinder-manage", configs, "db", "sync", prefix=prefix)


def nova_db_sync(venv: Path, configs: Sequence[Path], *, prefix: Sequence[str] = ()) -> None:
    """API database, cell0 (the [database] name + `_cell0`, so no URL on a command line),
    cell1 (from [database] and transport_url), then the cell databases. Idempotent."""
    for args in (("api_db", "sync"), ("cell_v2", "map_cell0")):
        manage(venv, "nova-manage", configs, *args, prefix=prefix)
    cells = manage(venv, "nova-manage", configs, "cell_v2", "list_cells", prefix=prefix)
    if " cell1 " not in cells:
        manage(
            venv, "nova-manage", configs, "cell_v2", "create_cell", "--name", "cell1", prefix=prefix
        )
    manage(venv, "nova-manage", configs, "db", "sync", prefix=prefix)


# --- WSGI services (nova-api, placement, keystone) -------------------------------------

#: requests one API process serves at once, as uwsgi's or mod_wsgi's fixed threads would;
#: the others wait their turn. Unbounded, a burst of boots ran hundreds of placement
#: requests at once: its connection pool ran dry (500 after pool_timeout), InnoDB
#: deadlocked on allocation inserts and starved transactions hit the lock wait timeout.
#: Kept below half of PLACEMENT_POOL's connections (a claim may hold two).
WSGI_THREADS = 16
#: serves a WSGI application (argv: host port sys.path-entry module:attribute) with the
#: standard library's threaded wsgiref server, WSGI_THREADS requests at a time; no gunicorn
#: or uwsgi in the venv
WSGI_SERVER = f"""\
import importlib, sys, threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer, make_server
host, port, path, app = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if path:
    sys.path.insert(0, path)
sys.argv = sys.argv[:1]  # nova parses sys.argv as its own command line
module, _, name = app.partition(":")
application = getattr(importlib.import_module(module), name)
class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 resets a burst of clients
    serving = threading.BoundedSemaphore({WSGI_THREADS})
    def process_request_thread(self, request, client_address):
        with self.serving:
            super().process_request_thread(request, client_address)
make_server(host, port, application, Server).serve_forever()
"""


def service_env(venv: Path, **extra: str) -> dict[str, str]:
    """A service's environment: the venv's bin first on PATH, plus `extra`."""
    return {
        "PATH": f"{venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/root"),
        **extra,
    }


def wsgi_command(
    venv: Path, app: str, *, port: int, host: str = "127.0.0.1", path: Path | None = None
) -> list[str]:
    """argv serving `app` ("module:attribute") on host:port, `path` first on sys.path."""
    return [str(venv / "bin" / "python"), "-c", WSGI_SERVER, host, str(port), str(path or ""), app]


def nova_api_command(
    venv: Path, configs: Sequence[Path], *, port: int, host: str = "127.0.0.1"
) -> tuple[list[str], dict[str, str]]:
    """argv and environment of nova-api (nova.wsgi.osapi_compute) under `wsgi_command`:
    the venv's own api-paste.ini (keystonemiddleware's authtoken), then the nova.conf
    files."""
    paste = venv / "etc" / "nova" / "api-paste.ini"
    argv = wsgi_command(venv, "nova.wsgi.osapi_compute:application", port=port, host=host)
    files = ";".join(str(p) for p in [paste, *configs])
    env = service_env(venv, OS_NOVA_CONFIG_DIR=str(paste.parent), OS_NOVA_CONFIG_FILES=files)
    return argv, env


#: Placement's in-transaction retry of a conflicting claim over-allocates (a placement bug,
#: docs/placement-overallocation.md); one attempt turns the conflict into a 409 that nova
#: retries as a new request. The nova-scheduler agent's validate-all enforces it.
SAFE_CLAIMS = {"allocation_conflict_retry_count": 1}
#: A conflicting claim holds its transaction's connection while placement re-reads the
#: providers on a second one: with SQLAlchemy's default pool (5 + 10) a burst of claims
#: takes every connection and placement stalls for pool_timeout, then answers 500.
PLACEMENT_POOL = {"max_pool_size": 10, "max_overflow": 50}


def placement_config(
    *, database_url: str, identity: Identity | None = None, safe_claims: bool = True
) -> dict[str, dict[str, object]]:
    """placement.conf validating tokens with Keystone (`identity`). Without one, placement's
    own noauth2 (token `admin` is the admin): only for the placement-race reproducers,
    which run placement alone. `safe_claims=False` keeps placement's default retry."""
    sections: dict[str, dict[str, object]] = {
        "DEFAULT": {"debug": False, "use_stderr": True},
        "api": {"auth_strategy": "noauth2" if identity is None else "keystone"},
        "placement": dict(SAFE_CLAIMS) if safe_claims else {},
        "placement_database": {"connection": database_url, **PLACEMENT_POOL},
    }
    if identity is not None:
        sections["keystone_authtoken"] = identity.authtoken("placement")
    return sections


def placement_db_sync(venv: Path, configs: Sequence[Path], *, prefix: Sequence[str] = ()) -> None:
    manage(venv, "placement-manage", configs, "db", "sync", prefix=prefix)


def placement_command(
    venv: Path, config: Path, *, port: int, host: str = "127.0.0.1"
) -> tuple[list[str], dict[str, str]]:
    """argv and environment of placement-api under `wsgi_command`; `config` must be named
    placement.conf (placement reads it from OS_PLACEMENT_CONFIG_DIR)."""
    if config.name != "placement.conf":
        raise LabError(f"{config}: placement reads only a file named placement.conf")
    argv = wsgi_command(venv, "placement.wsgi.api:application", port=port, host=host)
    return argv, service_env(venv, OS_PLACEMENT_CONFIG_DIR=str(config.parent))
