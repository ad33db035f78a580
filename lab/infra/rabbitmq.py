"""Debian's RabbitMQ for an infra node, started by hand: HOME, configuration, mnesia and
logs under the state directory, run as rabbitmq. AMQP listens on the node's address;
epmd and Erlang distribution on the namespace's own 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
from pathlib import Path

from hakit.lab.errors import LabError
from hakit.lab.infra.netns import PATH, check_bindable, marker_env, spawn
from hakit.lab.infra.packages import RABBITMQ_SERVER, RABBITMQCTL
from hakit.lab.infra.settings import (
    AMQP_PORT,
    DIST_PORT,
    NODENAME,
    Settings,
    check_reachable,
    make_dir,
    write_private,
)

MAIN_PROCESS = "beam.smp"


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
    epmd_port: int | None = None,
) -> dict[str, str]:
    """Environment for a RabbitMQ whose files all live in `home`, listening on `address`;
    distribution and epmd stay on loopback (epmd on its default port unless `epmd_port`)."""
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
        **({"ERL_EPMD_PORT": str(epmd_port)} if epmd_port else {}),
    }


def settings_env(settings: Settings) -> dict[str, str]:
    """`rabbitmq_environment` of this node's settings."""
    return rabbitmq_environment(
        settings.rabbitmq.resolve(),
        settings.address,
        nodename=settings.nodename,
        amqp_port=settings.amqp_port,
        dist_port=settings.dist_port,
        epmd_port=settings.epmd_port,
    )


def prepare_rabbitmq(settings: Settings) -> None:
    """Every check before anything starts: the directory and every port it will take."""
    make_dir(settings.rabbitmq, "rabbitmq", 0o750)
    check_reachable(settings.rabbitmq, "rabbitmq")
    check_bindable(settings.netns, settings.address, settings.amqp_port, "RabbitMQ")
    loopback = [(settings.dist_port, "RabbitMQ distribution")]
    if settings.epmd_port:
        loopback.append((settings.epmd_port, "epmd"))
    if settings.management_port:
        loopback.append((settings.management_port, "RabbitMQ management"))
    for port, what in loopback:
        check_bindable(settings.netns, "127.0.0.1", port, what)


def start_rabbitmq(settings: Settings, creds: dict[str, str]) -> None:
    """Write the configuration (the user's password always matches: its definitions are
    imported at every boot) and start rabbitmq-server detached, as rabbitmq."""
    home = settings.rabbitmq
    for sub in ("mnesia", "log"):
        make_dir(home / sub, "rabbitmq", 0o750)
    env = settings_env(settings)
    env_file = "".join(f"{k}='{v}'\n" for k, v in env.items() if k != "HOME")
    user = settings.rabbit_user
    definitions = {
        "users": [
            {
                "name": user,
                "password_hash": rabbit_password_hash(creds["rabbitmq"]),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["administrator"],
            }
        ],
        "vhosts": [{"name": "/"}],
        "permissions": [
            {"user": user, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
        ],
    }
    conf = f"load_definitions = {home / 'definitions.json'}\n"
    plugins = "[].\n"
    if settings.management_port:
        conf += f"management.tcp.port = {settings.management_port}\nmanagement.tcp.ip = 127.0.0.1\n"
        plugins = "[rabbitmq_management].\n"
    files = {
        ".erlang.cookie": (creds["cookie"], 0o400),
        "rabbitmq-env.conf": (env_file, 0o644),
        "enabled_plugins": (plugins, 0o644),
        "definitions.json": (json.dumps(definitions, indent=1) + "\n", 0o600),
        "rabbitmq.conf": (conf + "log.console = false\nlog.file.level = info\n", 0o644),
    }
    for name, (text, mode) in files.items():
        (home / name).unlink(missing_ok=True)  # the cookie is read-only
        write_private(home / name, text, mode, owner="rabbitmq")
    argv = ["setpriv", "--reuid=rabbitmq", "--regid=rabbitmq", "--init-groups", RABBITMQ_SERVER]
    env = {**marker_env(settings.state_dir, "rabbitmq"), **env}
    spawn(settings.netns, argv, env, home / "startup.log", home)


def rabbitmqctl(settings: Settings, *args: str, timeout: float = 60) -> str:
    """rabbitmqctl against this node (run here: for a node in a netns, enter it first)."""
    env = {"PATH": PATH, "LANG": "C.UTF-8", **settings_env(settings)}
    done = subprocess.run(
        [RABBITMQCTL, "-n", settings.nodename, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise LabError(f"rabbitmqctl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout
