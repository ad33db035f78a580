"""Shared logic of hakit's OpenStack agents (openstack-service, cinder-volume,
nova-scheduler, nova-consoleauth): one `Profile` per agent, one set of actions.

Process handling is `ocf:hakit:service`'s (state files, spawn, stop with TERM→KILL of
the tree). On top of it, health by depth, cheap first:

- 0: the master process (dead → 7). Workers are the master's business: a worker it
  respawns is never a failure.
- 10: the configuration is read with configparser (no oslo import); then the broker
  connections of the process tree to the transport_url hosts (from /proc, exact inode,
  address and port), the heartbeat in the `services` table (`updated_at` against
  `service_down_time`, measured with the database's own clock), or for console proxies
  an HTTP answer from the tree's listening port and the token database.
- 20: the queues' consumers through the RabbitMQ management API (`management_url`),
  counted only when the consumer's connection belongs to this process tree.

A running service that is hung (stale heartbeat) or disconnected fails (1), never 7;
a service whose first heartbeat is late by design (cinder-scheduler waits for the volume
backends' capabilities first) is degraded (190) until that heartbeat is due.
Each instance publishes its dependencies' health as transient node attributes
(`hakit-<resource>-broker`, `hakit-<resource>-db` = ok|down). A dependency that stays
down longer than `reconnect_grace` fails the instance only if another instance still
reaches it; when it is down for every instance the result is degraded (190), so
Pacemaker does not restart every clone in a storm that cannot help. A node without
quorum never asks for recovery (190). Outside a cluster the agent behaves as a single
instance.
"""

from __future__ import annotations

import os
import time

from hakit.ocf import (
    Action,
    Agent,
    BooleanParam,
    Context,
    IntegerParam,
    ListParam,
    OCFError,
    OCFExit,
    PathParam,
    PortParam,
    SecretParam,
    StringParam,
    proc,
)
from hakit.ocf._typing import TYPE_CHECKING
from hakit.resource_agents import service

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from configparser import RawConfigParser
    from typing import Any

    from hakit.ocf import Parameter

    Hook = Callable[[Context, "Facts"], None]

VERSION = "1.0.0"
DEBIAN_DIST_PACKAGES = "/usr/lib/python3/dist-packages"
HEALTH_REPUBLISH_SECONDS = 300
#: Services that save their row at start but heartbeat only later, by design: cinder-scheduler
#: first waits up to scheduler_driver_init_wait_time for the volume backends' capabilities
#: (cinder/service.py: init_host_with_rpc runs before the report timer starts).
LATE_FIRST_HEARTBEAT = {"cinder-scheduler": ("DEFAULT", "scheduler_driver_init_wait_time", "60")}
#: The dependencies published as node attributes (the health file keeps more).
PUBLISHED = ("broker", "db")
DEFAULT_AMQP_PORT = 5672

# --- parameters ------------------------------------------------------------------------------


def binary_param(default: str | None) -> PathParam:
    return PathParam(
        "binary",
        "Program to run",
        "The service's executable (an absolute path, e.g. in a "
        "venv, or a name in PATH). It must stay in the foreground.",
        default=default,
        required=default is None,
        executable=True,
    )


def config_param(default: str | None) -> ListParam:
    return ListParam(
        "config",
        "Configuration files",
        "oslo.config files, in order (later ones override "
        "earlier ones), passed as --config-file. The agent reads them too (transport_url, "
        "[database] connection, host, service_down_time) without importing oslo.",
        default=default,
        required=default is None,
    )


HOST = StringParam(
    "host",
    "Service host name",
    "The service's `host` (the services-table key and RPC "
    "queue suffix), passed in a generated last --config-file. Empty: for a clone, the "
    "cluster node name (each instance must be distinct); otherwise [DEFAULT] host from "
    "the configuration, else the node name.",
    default="",
)
SERVICE_DOWN_TIME = IntegerParam(
    "service_down_time",
    "Heartbeat age that means hung (s)",
    "A heartbeat older than this "
    "is a hung service. Empty: [DEFAULT] service_down_time from the configuration (60).",
    minimum=1,
)
RECONNECT_GRACE = IntegerParam(
    "reconnect_grace",
    "Seconds a lost broker/database may take to come back",
    "A dependency lost for less than this is degraded (190), not failed: services "
    "reconnect by themselves. Afterwards, failed if another instance still reaches it, "
    "degraded if it is down for every instance.",
    default="30",
    minimum=0,
)
PUBLISH = BooleanParam(
    "publish_health",
    "Publish dependency health as node attributes",
    "Set transient node attributes hakit-<resource>-broker and hakit-<resource>-db "
    "(ok|down) for the cluster-wide verdict and for operators.",
    default="true",
)
MANAGEMENT_URL = StringParam(
    "management_url",
    "RabbitMQ management API (depth 20)",
    "e.g. http://10.0.0.5:15672. When set, monitor depth 20 checks that this process "
    "tree consumes from the service's queues. Credentials: management_user and "
    "management_password, else those of transport_url.",
    default="",
)
MANAGEMENT_USER = StringParam("management_user", "RabbitMQ management user", default="")
MANAGEMENT_PASSWORD = SecretParam(
    "management_password",
    "RabbitMQ management password",
    "Never logged; empty = the transport_url password.",
    default="",
)
QUEUES = ListParam(
    "queues",
    "Queues to check at depth 20",
    "Queue names ({host} is replaced by the service host). Empty: the agent's defaults.",
    default="",
)
PORT = PortParam(
    "port",
    "HTTP port the service serves",
    "Start waits until the process tree listens on it and answers HTTP; depth 10 checks "
    "both. Console proxies: empty = the proxy's port option from the configuration.",
)
BROKER = BooleanParam(
    "broker",
    "Check the broker connections",
    "false for services that connect to the broker only on demand (API services).",
    default="true",
)

COMMON_PARAMETERS: list[Parameter[Any]] = [
    HOST,
    service.ARGUMENTS,
    service.USER,
    service.ENVIRONMENT_FILE,
    service.WORKDIR,
    service.LOG_FILE,
    SERVICE_DOWN_TIME,
    RECONNECT_GRACE,
    PUBLISH,
    MANAGEMENT_URL,
    MANAGEMENT_USER,
    MANAGEMENT_PASSWORD,
    QUEUES,
]


# --- oslo configuration, read without oslo -------------------------------------------------------


def read_config(files: Sequence[str]) -> RawConfigParser:
    """The files merged like oslo.config does (later wins); [DEFAULT] is an ordinary
    section (configparser would leak it into every other one)."""
    import configparser

    parser = configparser.RawConfigParser(
        default_section="\0none", strict=False, interpolation=None, allow_no_value=True
    )
    for path in files:
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle, source=path)
        except FileNotFoundError:
            raise OCFError(OCFExit.ERR_INSTALLED, f"config file {path} does not exist") from None
        except OSError as error:
            raise OCFError(OCFExit.ERR_INSTALLED, f"config file {path}: {error}") from None
        except (configparser.Error, UnicodeDecodeError) as error:
            text = " ".join(str(error).split())
            raise OCFError(OCFExit.ERR_CONFIGURED, f"config file {path}: {text}") from None
    return parser


def checked_config(ctx: Context, param: StringParam) -> str | None:
    """The file `param` names, when it is to be checked: not when empty, nor when it is
    the default and absent from this node; an explicit path that does not exist is
    OCF_ERR_INSTALLED."""
    path = ctx.params.get(param) or ""
    if not path or (not os.path.exists(path) and param.name not in ctx.params.raw):
        return None
    if not os.path.isfile(path):
        raise OCFError(OCFExit.ERR_INSTALLED, f"{param.name} {path} does not exist")
    return path


def option(config: RawConfigParser, section: str, name: str, default: str = "") -> str:
    if config.has_option(section, name):
        return (config.get(section, name) or "").strip()
    return default


def _unquote(text: str) -> str:
    """Percent-decoding (urllib.parse costs an `re` import)."""
    if "%" not in text:
        return text
    out, i, raw = bytearray(), 0, text.encode()
    while i < len(raw):
        pair = raw[i + 1 : i + 3]
        if raw[i] == 0x25 and len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair):
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode(errors="replace")


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `host` → (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if port and not port.isdigit():
        raise ValueError(f"bad port {port!r}")
    return host or "localhost", int(port) if port else default_port


class Endpoint:
    """One host of a URL (credentials kept out of repr)."""

    __slots__ = ("host", "password", "port", "user")

    def __init__(self, host: str, port: int, user: str = "", password: str = "") -> None:
        self.host, self.port, self.user, self.password = host, port, user, password

    def __repr__(self) -> str:
        return f"{self.host}:{self.port}"


class TransportURL:
    """oslo.messaging's transport_url: driver://[user:pass@]host[:port][,...]/vhost[?query]."""

    def __init__(self, url: str) -> None:
        driver, sep, rest = url.partition("://")
        if not sep or not driver:
            raise ValueError("not driver://hosts/vhost")
        self.driver = driver
        rest = rest.partition("?")[0]
        at = rest.rfind("@")
        slash = rest.find("/", at + 1)
        netloc, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash + 1 :])
        self.vhost = _unquote(path) or "/"
        default_port = DEFAULT_AMQP_PORT if driver.startswith(("rabbit", "amqp", "kombu")) else 0
        self.hosts: list[Endpoint] = []
        for item in netloc.split(","):
            creds, _, hostport = item.rpartition("@")
            user, _, password = creds.partition(":")
            host, port = _host_port(hostport, default_port)
            self.hosts.append(Endpoint(host, port, _unquote(user), _unquote(password)))

    def __repr__(self) -> str:
        return f"{self.driver}://{','.join(map(repr, self.hosts))}/{self.vhost}"


class DatabaseURL:
    """An SQLAlchemy URL as OpenStack writes it: mysql[+driver]://u:p@host[:port]/db[?...]
    (also ?unix_socket=...) or sqlite:///relative, sqlite:////absolute."""

    def __init__(self, url: str) -> None:
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ValueError("not a database URL")
        self.kind = scheme.partition("+")[0]
        rest, _, query = rest.partition("?")
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        self.path = ""
        self.endpoint = Endpoint("", 0)
        self.database = ""
        self.unix_socket = _unquote(params.get("unix_socket", ""))
        self.charset = params.get("charset", "utf8")
        ssl_keys = ("ssl_ca", "ssl_cert", "ssl_key", "ssl_verify_cert", "ssl_verify_identity")
        self.ssl = {key: _unquote(params[key]) for key in ssl_keys if params.get(key)}
        self.tls = bool(self.ssl)
        if self.kind == "sqlite":
            self.path = rest.removeprefix("/") if rest.startswith("/") else rest
            if not self.path:
                raise ValueError("sqlite URL without a file")
            return
        if self.kind not in ("mysql", "mariadb"):
            raise ValueError(f"unsupported database {self.kind!r} (mysql/mariadb or sqlite)")
        at = rest.rfind("@")
        slash = rest.find("/", at + 1)
        netloc, self.database = (rest, "") if slash < 0 else (rest[:slash], rest[slash + 1 :])
        creds, _, hostport = netloc.rpartition("@")
        user, _, password = creds.partition(":")
        host, port = _host_port(hostport, 3306)
        self.endpoint = Endpoint(host, port, _unquote(user), _unquote(password))

    def __repr__(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite {self.path}"
        where = self.unix_socket or repr(self.endpoint)
        return f"{self.kind} {where}/{self.database}"


# --- what an action knows about the service --------------------------------------------------


class Profile:
    """What differs between the OpenStack agents."""

    def __init__(
        self,
        *,
        name: str,
        shortdesc: str,
        longdesc: str,
        binary: str | None,
        config: str | None,
        kind: str | Callable[[str], str] = "rpc",
        service_binary: Callable[[Facts], str | None] | None = None,
        rows: Callable[[Facts], list[str]] | None = None,
        queues: Callable[[Facts], list[str]] | None = None,
        extra_parameters: Sequence[Parameter[Any]] = (),
        validate: Hook | None = None,
        notify: Callable[[Context], int] | None = None,
        requires_transport: bool = True,
        stop_timeout: float = 60,
        start_timeout: float = 120,
    ) -> None:
        self.name = name
        self.shortdesc = shortdesc
        self.longdesc = longdesc
        self.binary = binary_param(binary)
        self.config = config_param(config)
        #: "rpc" (broker + heartbeat) or "console" (HTTP + token database), or a function
        #: of the program's name
        self.kind = kind
        self.service_binary = service_binary
        self.rows = rows
        self.queues = queues
        self.extra_parameters = list(extra_parameters)
        self.validate = validate
        self.notify = notify
        self.requires_transport = requires_transport
        self.stop_timeout = stop_timeout
        self.start_timeout = start_timeout


class Facts:
    """The configuration as the service will see it, parsed once per action."""

    def __init__(self, ctx: Context, profile: Profile) -> None:
        self.ctx = ctx
        self.profile = profile
        self.files = ctx.params[profile.config]
        if not self.files:
            raise OCFError(OCFExit.ERR_CONFIGURED, "parameter config names no file")
        self.config = read_config(self.files)
        self.binary_path = ctx.params[profile.binary]
        self.program = os.path.basename(self.binary_path)
        self.kind = profile.kind if isinstance(profile.kind, str) else profile.kind(self.program)
        self.clone_max = ctx.clone.max if ctx.clone is not None else 1
        self.node = ctx.node or os.uname().nodename
        self.host = self._host()
        self.transport = self._url("DEFAULT", "transport_url", TransportURL)
        self.database = self._url("database", "connection", DatabaseURL)
        configured = option(self.config, "DEFAULT", "service_down_time", "60")
        override = ctx.params.get(SERVICE_DOWN_TIME)
        try:
            self.service_down_time = override or int(configured)
        except ValueError:
            raise OCFError(
                OCFExit.ERR_CONFIGURED,
                f"[DEFAULT] service_down_time={configured!r} is not a number",
            ) from None
        self.uses_broker = (
            self.kind == "rpc"
            and self.transport is not None
            and ctx.params.get(BROKER) is not False
        )
        self.http_port = console_port(self) if self.kind == "console" else ctx.params.get(PORT)
        secrets = [e.password for e in self.transport.hosts] if self.transport else []
        if self.database is not None:
            secrets.append(self.database.endpoint.password)
        ctx.log.add_secrets(secrets)

    def _host(self) -> str:
        explicit = self.ctx.params.get(HOST)
        if explicit:
            return explicit
        if self.clone_max > 1:
            return self.node
        return option(self.config, "DEFAULT", "host") or self.node

    def _url(self, section: str, name: str, parse: Callable[[str], Any]) -> Any:
        text = option(self.config, section, name)
        if not text:
            return None
        try:
            return parse(text)
        except ValueError as error:
            raise OCFError(
                OCFExit.ERR_CONFIGURED, f"[{section}] {name} in {' '.join(self.files)}: {error}"
            ) from None

    @property
    def service_binary(self) -> str | None:
        return self.profile.service_binary(self) if self.profile.service_binary else None

    @property
    def rows(self) -> list[str]:
        """The `services` rows (host column) this instance heartbeats in."""
        return self.profile.rows(self) if self.profile.rows else []

    @property
    def heartbeat(self) -> bool:
        return self.service_binary is not None and bool(self.rows)

    def queue_names(self) -> list[str]:
        configured = self.ctx.params.get(QUEUES)
        if configured:
            return [q.replace("{host}", self.host) for q in configured]
        return self.profile.queues(self) if self.profile.queues else []


# --- local state: the host override and the dependency health --------------------------------


def override_path(ctx: Context) -> str:
    return f"{service.run_dir(ctx)}/{ctx.state_name}.host.conf"


def health_path(ctx: Context) -> str:
    return f"{service.run_dir(ctx)}/{ctx.state_name}.health"


class Health:
    """Per dependency: state (ok|down), since when, when publishing was last tried,
    whether the node attribute holds the state, and whether "ok" ended an outage."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.entries: dict[str, list[Any]] = {}
        self.changed = False
        try:
            with open(health_path(ctx), encoding="ascii") as handle:
                for line in handle:
                    name, state, since, tried, published, after = line.split()
                    self.entries[name] = [
                        state,
                        float(since),
                        float(tried),
                        published == "1",
                        after == "1",
                    ]
        except (OSError, ValueError):
            self.entries = {}

    def set(self, name: str, ok: bool) -> float:
        """Record the state; return how long it has been in it (seconds)."""
        state = "ok" if ok else "down"
        now = time.time()
        entry = self.entries.get(name)
        if entry is None or entry[0] != state:
            entry = [state, now, 0.0, bool(entry and entry[3]), entry is not None]
            self.entries[name] = entry
            self.changed = True
        return now - float(entry[1])

    def recovered_within(self, name: str, seconds: float) -> bool:
        entry = self.entries.get(name)
        return bool(
            entry and entry[0] == "ok" and entry[4] and time.time() - float(entry[1]) < seconds
        )

    def publish(self) -> None:
        """Publish new states at once and old ones every HEALTH_REPUBLISH_SECONDS (a failed
        attempt, e.g. outside a cluster, is retried as rarely); save the file if changed."""
        now = time.time()
        if self.ctx.params.get(PUBLISH) is not False:
            for name, entry in self.entries.items():
                if name not in PUBLISHED or (
                    entry[2] and now - entry[2] < HEALTH_REPUBLISH_SECONDS
                ):
                    continue
                entry[2] = now
                entry[3] = set_attribute(self.ctx, attribute_name(self.ctx, name), entry[0])
                self.changed = True
        if self.changed:
            self.save()

    def save(self) -> None:
        os.makedirs(service.run_dir(self.ctx), mode=0o755, exist_ok=True)
        path = health_path(self.ctx)
        with open(path + ".new", "w", encoding="ascii") as handle:
            for name, (state, since, tried, published, after) in sorted(self.entries.items()):
                handle.write(f"{name} {state} {since:.3f} {tried:.3f} {published:d} {after:d}\n")
        os.replace(path + ".new", path)


def attribute_name(ctx: Context, dependency: str) -> str:
    return f"hakit-{ctx.state_name}-{dependency}"


def _cluster_timeout(ctx: Context) -> float:
    return max(min(5.0, ctx.remaining(2)), 0.5)


def set_attribute(ctx: Context, name: str, value: str) -> bool:
    """attrd_updater -U; False (logged at debug) outside a cluster or on failure."""
    from hakit.ocf import cluster

    try:
        cluster.set_transient_attribute(name, value, timeout=_cluster_timeout(ctx))
    except cluster.ClusterCommandError as error:
        ctx.log.debug(f"not published ({error})")
        return False
    return True


def peer_values(ctx: Context, dependency: str) -> dict[str, str] | None:
    """Other nodes' published values; None outside a cluster."""
    from hakit.ocf import cluster

    try:
        values = cluster.transient_attribute_values(
            attribute_name(ctx, dependency), timeout=_cluster_timeout(ctx)
        )
    except cluster.ClusterCommandError as error:
        ctx.log.debug(f"no cluster view of {dependency} ({error})")
        return None
    me = ctx.node or os.uname().nodename
    return {node: value for node, value in values.items() if node != me}


def quorate(ctx: Context) -> bool:
    """False only when the cluster answers that this partition has no quorum."""
    from hakit.ocf import cluster

    try:
        return cluster.is_quorate(timeout=_cluster_timeout(ctx))
    except cluster.ClusterCommandError:
        return True


def dependency_verdict(
    dependency: str, down_for: float, grace: float, peers: dict[str, str] | None
) -> tuple[int, str]:
    """What a lost dependency means for this instance: (OCF code, reason).

    Down for less than `grace`: degraded (services reconnect by themselves). Then: failed
    if no other instance reports (single instance, or no cluster: recovery is the only
    remedy) or another instance still reaches it (only this node is cut off); degraded
    when every other instance reports it down too (a restart storm cannot help).
    """
    if down_for < grace:
        return OCFExit.DEGRADED, (
            f"{dependency} lost {down_for:.0f}s ago; waiting up to {grace:.0f}s for reconnection"
        )
    if not peers:
        return OCFExit.ERR_GENERIC, f"{dependency} lost for {down_for:.0f}s"
    reaching = sorted(node for node, value in peers.items() if value == "ok")
    if reaching:
        return OCFExit.ERR_GENERIC, (
            f"{dependency} lost for {down_for:.0f}s here only (reached from {', '.join(reaching)})"
        )
    return OCFExit.DEGRADED, (
        f"{dependency} down for every instance (here and on {', '.join(sorted(peers))}): "
        "not asking for recovery"
    )


# --- probes ---------------------------------------------------------------------------------


def resolve(endpoints: Sequence[Endpoint]) -> set[tuple[bytes, int]]:
    """(packed address, port) of every endpoint (names resolved once)."""
    import socket

    found: set[tuple[bytes, int]] = set()
    for endpoint in endpoints:
        try:
            infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            continue
        for family, _, _, _, address in infos:
            packed = socket.inet_pton(family, str(address[0]))
            if len(packed) == 16 and packed[:12] == b"\0" * 10 + b"\xff\xff":
                packed = packed[12:]
            found.add((packed, endpoint.port))
    return found


def broker_connections(pids: Sequence[int], transport: TransportURL) -> list[int]:
    """PIDs of the tree holding an established connection to a transport_url host."""
    wanted = resolve(transport.hosts)
    return sorted({c[0] for c in proc.established(pids) if (c[3], c[4]) in wanted})


def tcp_answers(host: str, port: int, timeout: float, hello: bytes = b"") -> bytes | None:
    """Connect, send `hello`, return the first bytes of the answer (b"" if none); None if
    the connection fails."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if hello:
                sock.sendall(hello)
                return sock.recv(64)
            return b""
    except OSError:
        return None


def amqp_answers(endpoint: Endpoint, timeout: float) -> bool:
    answer = tcp_answers(endpoint.host, endpoint.port, timeout, b"AMQP\x00\x00\x09\x01")
    return bool(answer and answer[:1] == b"\x01")


def http_answers(host: str, port: int, timeout: float) -> str | None:
    """None when `host:port` answers HTTP (any status), else why not."""
    hello = f"GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: hakit-monitor\r\n\r\n".encode()
    answer = tcp_answers(host, port, timeout, hello)
    if answer is None:
        return f"no connection to {host}:{port}"
    if not answer.startswith(b"HTTP/"):
        return f"{host}:{port} does not answer HTTP"
    return None


def stopped_processes(pids: Sequence[int]) -> list[int]:
    """Processes of the tree stopped by a signal (SIGSTOP: state T)."""
    return [pid for pid in pids if (info := proc.stat(pid)) is not None and info.state == "T"]


# --- the database ----------------------------------------------------------------------------


class DatabaseError(Exception):
    """`unreachable`: the server did not answer (a dependency problem), else a
    configuration problem (credentials, wrong database, missing table)."""

    def __init__(self, message: str, *, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable


UNREACHABLE_MYSQL_ERRORS = frozenset({2002, 2003, 2005, 2006, 2013, 2055})


def _pymysql(tls: bool = False) -> Any:
    """Debian's python3-pymysql, imported only when a monitor needs the database (agents
    run as `python3 -IS`, so dist-packages is added here, last).

    Two optional imports of pymysql are kept out to save ~25 ms per monitor: `ssl` unless
    the URL asks for TLS, and `cryptography`, needed only for the RSA exchange of MySQL
    8's sha256/caching_sha2 full authentication (`_connect` loads it if a server asks).
    """
    import importlib
    import sys

    if DEBIAN_DIST_PACKAGES not in sys.path:
        sys.path.append(DEBIAN_DIST_PACKAGES)
    blocked = [m for m in ("cryptography", *(() if tls else ("ssl",))) if m not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        return importlib.import_module("pymysql")
    except ImportError:
        raise OCFError(
            OCFExit.ERR_INSTALLED, "python3-pymysql is not installed (apt install python3-pymysql)"
        ) from None
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def _connect(pymysql: Any, **options: Any) -> Any:
    try:
        return pymysql.connect(**options)
    except RuntimeError as error:  # the server wants RSA: load cryptography after all
        if "cryptography" not in str(error):
            raise
        import importlib

        importlib.reload(pymysql._auth)
        return pymysql.connect(**options)


def query(
    url: DatabaseURL, sql: str, args: Sequence[object], timeout: float
) -> list[tuple[Any, ...]]:
    """Run one query (`%s` placeholders) and return its rows; raise DatabaseError."""
    if url.kind == "sqlite":
        import sqlite3

        try:
            database = sqlite3.connect(f"file:{url.path}?mode=ro", uri=True, timeout=timeout)
            try:
                return list(database.execute(sql.replace("%s", "?"), tuple(args)))
            finally:
                database.close()
        except sqlite3.Error as error:
            raise DatabaseError(f"{url}: {error}", unreachable=False) from None
    pymysql = _pymysql(tls=url.tls)
    endpoint = url.endpoint
    timeout = max(timeout, 0.5)
    try:
        conn = _connect(
            pymysql,
            host=endpoint.host,
            port=endpoint.port,
            user=endpoint.user,
            password=endpoint.password,
            database=url.database or None,
            unix_socket=url.unix_socket or None,
            charset=url.charset,
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            **url.ssl,
        )
    except pymysql.err.MySQLError as error:
        code = error.args[0] if error.args else 0
        raise DatabaseError(
            _mysql_message(url, error), unreachable=code in UNREACHABLE_MYSQL_ERRORS
        ) from None
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, tuple(args))
            return list(cursor.fetchall())
    except pymysql.err.MySQLError as error:
        code = error.args[0] if error.args else 0
        raise DatabaseError(
            _mysql_message(url, error), unreachable=code in UNREACHABLE_MYSQL_ERRORS
        ) from None
    finally:
        conn.close()


def _mysql_message(url: DatabaseURL, error: BaseException) -> str:
    text = str(error.args[1]) if len(error.args) > 1 else str(error)
    return f"database {url}: {' '.join(text.split())}"


def database_now(url: DatabaseURL, timeout: float) -> str:
    """The database's UTC time, as it compares with updated_at."""
    sql = "SELECT datetime('now')" if url.kind == "sqlite" else "SELECT UTC_TIMESTAMP()"
    return str(query(url, sql, (), timeout)[0][0])


def heartbeat_query(
    url: DatabaseURL, binary: str, hosts: Sequence[str], since: str
) -> tuple[str, tuple[object, ...]]:
    """SQL and arguments for `heartbeats`."""
    marks = ", ".join(["%s"] * len(hosts))
    last = "COALESCE(updated_at, created_at)"
    if url.kind == "sqlite":
        age = f"CAST((julianday('now') - julianday({last})) * 86400 AS INTEGER)"
    else:
        age = f"TIMESTAMPDIFF(SECOND, {last}, UTC_TIMESTAMP())"
    sql = (
        f"SELECT host, {age}, updated_at >= %s FROM services "  # noqa: S608 — values bound
        f"WHERE deleted = 0 AND `binary` = %s AND host IN ({marks})"
    )
    return sql, (since, binary, *hosts)


def heartbeat_rows(rows: Sequence[tuple[Any, ...]]) -> dict[str, tuple[float | None, bool]]:
    return {str(r[0]): (None if r[1] is None else float(r[1]), bool(r[2] or 0)) for r in rows}


def heartbeats(
    url: DatabaseURL, binary: str, hosts: Sequence[str], since: str, timeout: float
) -> dict[str, tuple[float | None, bool]]:
    """{host: (age in seconds by the database clock, heartbeat at or after `since`)} for
    the services rows that exist. The age counts from the creation of a row that has
    not reported yet (as nova's servicegroup does); "since" needs a real report."""
    sql, args = heartbeat_query(url, binary, hosts, since)
    return heartbeat_rows(query(url, sql, args, timeout))


# --- actions --------------------------------------------------------------------------------


def argv(ctx: Context, facts: Facts) -> list[str]:
    args = [facts.binary_path]
    for path in [*facts.files, override_path(ctx)]:
        args += ["--config-file", path]
    return args + service.split_arguments(ctx)


def write_override(ctx: Context, facts: Facts) -> None:
    """The last --config-file: this instance's host."""
    os.makedirs(service.run_dir(ctx), mode=0o755, exist_ok=True)
    path = override_path(ctx)
    with open(path + ".new", "w", encoding="utf-8") as handle:
        handle.write(
            f"# written by ocf:hakit:{facts.profile.name} for {ctx.instance}\n"
            f"[DEFAULT]\nhost = {facts.host}\n"
        )
    os.chmod(path + ".new", 0o644)
    os.replace(path + ".new", path)


def console_port(facts: Facts) -> int:
    """The port a console proxy serves: the `port` parameter, else its configuration."""
    sections = {
        "nova-novncproxy": ("vnc", "novncproxy_port", 6080),
        "nova-serialproxy": ("serial_console", "serialproxy_port", 6083),
        "nova-spicehtml5proxy": ("spice", "html5proxy_port", 6082),
    }
    section, key, default = sections.get(facts.program, ("vnc", "novncproxy_port", 6080))
    configured = option(facts.config, section, key, str(default))
    return facts.ctx.params.get(PORT) or (int(configured) if configured.isdigit() else default)


def http_problem(pid: int, port: int, timeout: float) -> str | None:
    """None when the tree listens on `port` and answers HTTP there (on the address it
    listens on; a wildcard is probed on loopback), else why not."""
    import socket

    addresses = proc.listening_addresses(pid, port)
    if not addresses:
        return f"nothing in the process tree of pid {pid} listens on TCP port {port}"
    problem = None
    for packed in addresses:
        family = socket.AF_INET6 if len(packed) == 16 else socket.AF_INET
        host = socket.inet_ntop(family, packed)
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
        problem = http_answers(host, port, timeout)
        if problem is None:
            return None
    return problem


def validate_common(ctx: Context, facts: Facts) -> None:
    """Configuration the monitors rely on; clone-safety of the host."""
    service.validate(ctx)
    explicit = ctx.params.get(HOST)
    if facts.clone_max > 1 and explicit:
        raise OCFError(
            OCFExit.ERR_CONFIGURED,
            f"cloned (clone-max={facts.clone_max}) with host={explicit!r}: every "
            "instance would register as the same service; leave host empty (the node name)",
        )
    if facts.clone_max > 1 and option(facts.config, "DEFAULT", "host"):
        ctx.log.warning(f"cloned: [DEFAULT] host is replaced by the node name ({facts.host})")
    if facts.kind == "rpc" and facts.profile.requires_transport and facts.transport is None:
        raise OCFError(
            OCFExit.ERR_CONFIGURED, f"[DEFAULT] transport_url is not set in {' '.join(facts.files)}"
        )
    if (facts.heartbeat or facts.kind == "console") and facts.database is None:
        what = "console_auth_tokens" if facts.kind == "console" else "the services table"
        raise OCFError(
            OCFExit.ERR_CONFIGURED,
            f"[database] connection is not set in {' '.join(facts.files)}: it holds {what}",
        )
    if facts.database is not None and facts.database.kind != "sqlite":
        _pymysql()


def make_validate(profile: Profile) -> Callable[[Context], int]:
    def validate(ctx: Context) -> int:
        facts = Facts(ctx, profile)
        validate_common(ctx, facts)
        if profile.validate is not None:
            profile.validate(ctx, facts)
        return OCFExit.SUCCESS

    return validate


def not_ready(ctx: Context, facts: Facts, pid: int, since: str | None) -> str | None:
    """Why the service is not ready yet: not serving HTTP (console proxies, `port`), no
    broker connection, no heartbeat reported since the start."""
    if facts.http_port is not None:
        problem = http_problem(pid, facts.http_port, min(2.0, max(ctx.remaining(1), 0.2)))
        if problem:
            return problem
    transport = facts.transport
    if facts.uses_broker and transport and not broker_connections(proc.tree(pid), transport):
        return f"no connection to the broker ({', '.join(map(repr, transport.hosts))})"
    if facts.heartbeat and facts.database is not None and facts.service_binary:
        try:
            seen = heartbeats(
                facts.database,
                facts.service_binary,
                facts.rows,
                since or "1970-01-01",
                min(3.0, max(ctx.remaining(1), 0.5)),
            )
        except DatabaseError as error:
            return str(error)
        for row in facts.rows:
            age, fresh = seen.get(row, (None, False))
            if age is None or not fresh or age > facts.service_down_time:
                return f"{facts.service_binary} {row} has not reported in the services table yet"
    return None


def make_start(profile: Profile) -> Callable[[Context], int]:
    def start(ctx: Context) -> int:
        facts = Facts(ctx, profile)
        pid = service.running_pid(ctx)
        since = None
        if pid is None:
            if facts.heartbeat and facts.database is not None:
                try:
                    since = database_now(facts.database, min(3.0, ctx.remaining(1)))
                except DatabaseError as error:
                    ctx.log.warning(f"start continues without the database clock: {error}")
            write_override(ctx, facts)
            pid = service.spawn(ctx, argv(ctx, facts))
        checks = facts.http_port is not None or facts.uses_broker or facts.heartbeat
        code = service.wait_until_ready(
            ctx, pid, lambda c, p: not_ready(c, facts, p, since), settle=not checks, poll=0.5
        )
        health = Health(ctx)
        for name in dependencies(facts):
            health.set(name, True)
        health.publish()
        return code

    return start


def dependencies(facts: Facts) -> list[str]:
    names = []
    if facts.uses_broker:
        names.append("broker")
    if facts.database is not None and (facts.heartbeat or facts.kind == "console"):
        names.append("db")
    return names


def stop(ctx: Context) -> int:
    code = service.stop(ctx)
    health = Health(ctx)
    if ctx.params.get(PUBLISH) is not False:
        from hakit.ocf import cluster

        for name, entry in health.entries.items():
            if entry[3]:
                try:
                    cluster.delete_transient_attribute(
                        attribute_name(ctx, name), timeout=_cluster_timeout(ctx)
                    )
                except cluster.ClusterCommandError as error:
                    ctx.log.debug(f"attribute not deleted ({error})")
    for path in (health_path(ctx), override_path(ctx)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return code


class Findings:
    """What a depth-10/20 monitor found: local failures and dependency verdicts."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.degraded: list[str] = []

    def add(self, code: int, reason: str) -> None:
        (self.failures if code == OCFExit.ERR_GENERIC else self.degraded).append(reason)


def check_dependency(
    ctx: Context, facts: Facts, health: Health, findings: Findings, name: str, ok: bool, detail: str
) -> None:
    down_for = health.set(name, ok)
    if ok:
        return
    grace = reconnect_grace(ctx)
    peers = peer_values(ctx, name) if down_for >= grace else None
    code, reason = dependency_verdict(name, down_for, grace, peers)
    findings.add(code, f"{reason}: {detail}")


def check_service(ctx: Context, facts: Facts, pid: int, health: Health, findings: Findings) -> None:
    """Depth 10: HTTP, broker connections, token database or heartbeat."""
    pids = proc.tree(pid)
    timeout = min(3.0, max(ctx.remaining(2), 0.5))
    if facts.http_port is not None:
        problem = http_problem(pid, facts.http_port, timeout)
        if problem:
            findings.add(OCFExit.ERR_GENERIC, problem)
    broker_down = check_broker(ctx, facts, pids, health, findings, timeout)
    check_database(ctx, facts, pid, pids, health, findings, timeout, recovering=broker_down)


def check_broker(
    ctx: Context,
    facts: Facts,
    pids: Sequence[int],
    health: Health,
    findings: Findings,
    timeout: float,
) -> bool:
    """The tree's connections to the broker; True when there are none."""
    if not (facts.uses_broker and facts.transport is not None):
        return False
    hosts = facts.transport.hosts
    connected = broker_connections(pids, facts.transport)
    detail = f"no connection from pids {list(pids)} to {', '.join(map(repr, hosts))}"
    if not connected:
        refusing = [repr(e) for e in hosts if not amqp_answers(e, timeout)]
        answer = f"not answering: {', '.join(refusing)}" if refusing else "the broker answers"
        detail += f" ({answer})"
    check_dependency(ctx, facts, health, findings, "broker", bool(connected), detail)
    return not connected


def check_database(
    ctx: Context,
    facts: Facts,
    pid: int,
    pids: Sequence[int],
    health: Health,
    findings: Findings,
    timeout: float,
    *,
    recovering: bool,
) -> None:
    """Console proxies: the token table answers. Others: the heartbeat is fresh (a stale
    one right after a broker or database outage, or before a late first heartbeat is
    due, is degraded; otherwise hung)."""
    if facts.database is None:
        return
    sql: str
    args: tuple[object, ...] = ()
    if facts.kind == "console":
        sql = "SELECT 1 FROM console_auth_tokens LIMIT 1"
    elif facts.heartbeat and facts.service_binary:
        sql, args = heartbeat_query(facts.database, facts.service_binary, facts.rows, "1970-01-01")
    else:
        return
    try:
        rows = query(facts.database, sql, args, timeout)
    except DatabaseError as error:
        if error.unreachable:
            check_dependency(ctx, facts, health, findings, "db", False, str(error))
        else:
            findings.add(OCFExit.ERR_GENERIC, str(error))
        return
    check_dependency(ctx, facts, health, findings, "db", True, "")
    if facts.kind == "console":
        return
    recovering = recovering or health.recovered_within("db", reconnect_grace(ctx))
    stale = stale_heartbeats(facts, heartbeat_rows(rows), pids)
    starting = still_starting(facts, pid) if stale else None
    for reason in stale:
        if recovering:
            findings.add(OCFExit.DEGRADED, reason + " after a dependency outage")
        elif starting:
            findings.add(OCFExit.DEGRADED, f"{reason} while starting: {starting}")
        else:
            findings.add(OCFExit.ERR_GENERIC, "hung: " + reason)


def first_heartbeat_due(facts: Facts) -> float:
    """Seconds after its start by which the service must have sent its first heartbeat
    (0: at once)."""
    late = LATE_FIRST_HEARTBEAT.get(facts.service_binary or "")
    if late is None:
        return 0.0
    seconds = 0.0
    for section, name, default in (late, ("DEFAULT", "report_interval", "10")):
        try:
            seconds += float(option(facts.config, section, name, default))
        except ValueError:
            seconds += float(default)
    return seconds


def still_starting(facts: Facts, pid: int) -> str | None:
    """Why a stale heartbeat is not yet a hang: the service started recently and its first
    heartbeat is not due yet (LATE_FIRST_HEARTBEAT)."""
    due = first_heartbeat_due(facts)
    started = proc.age(pid) if due else None
    if started is None or started >= due + facts.service_down_time:
        return None
    return (
        f"started {started:.0f}s ago; {facts.service_binary} sends its first heartbeat "
        f"up to {due:.0f}s after its start"
    )


def reconnect_grace(ctx: Context) -> float:
    return float(ctx.params.get(RECONNECT_GRACE) or 0)


def stale_heartbeats(
    facts: Facts, seen: dict[str, tuple[float | None, bool]], pids: Sequence[int]
) -> list[str]:
    """Why each of this instance's services rows is missing or stale."""
    reasons = []
    for row in facts.rows:
        age = seen.get(row, (None, False))[0]
        if age is not None and age <= facts.service_down_time:
            continue
        what = "no services row" if age is None else f"heartbeat {age:.0f}s old"
        reason = (
            f"{facts.service_binary} {row}: {what} (service_down_time {facts.service_down_time}s)"
        )
        stopped = stopped_processes(pids)
        reasons.append(reason + (f"; pids {stopped} are stopped (SIGSTOP)" if stopped else ""))
    return reasons


def check_queues(ctx: Context, facts: Facts, pid: int, health: Health, findings: Findings) -> None:
    """Depth 20: each queue has a consumer on a connection of this process tree (matched
    by the connection's client address and port). The management API's statistics lag
    a few seconds, so consumers missing for less than max(reconnect_grace, 15 s) are
    only logged."""
    url = ctx.params.get(MANAGEMENT_URL)
    queues = facts.queue_names()
    if not url or not queues or facts.transport is None:
        return
    import base64
    import http.client
    import json
    import socket

    first = facts.transport.hosts[0]
    user = ctx.params.get(MANAGEMENT_USER) or first.user
    password = ctx.params.get(MANAGEMENT_PASSWORD) or first.password
    scheme, _, rest = url.partition("://")
    host, port = _host_port(rest.rstrip("/").partition("/")[0], 443 if scheme == "https" else 80)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    vhost = facts.transport.vhost.replace("%", "%25").replace("/", "%2F")
    connection_class = (
        http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    )
    conn = connection_class(host, port, timeout=min(5.0, max(ctx.remaining(1), 0.5)))
    try:
        conn.request("GET", f"/api/consumers/{vhost}", headers={"Authorization": f"Basic {token}"})
        reply = conn.getresponse()
        body = reply.read()
        consumers = json.loads(body) if reply.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError) as error:
        findings.add(OCFExit.DEGRADED, f"management API {host}:{port} unusable: {error}")
        return
    finally:
        conn.close()
    if not isinstance(consumers, list):
        findings.add(OCFExit.DEGRADED, f"management API {host}:{port}: HTTP {reply.status}")
        return
    ours = {(c[1], c[2]) for c in proc.established(proc.tree(pid))}
    consuming = set()
    for consumer in consumers:
        try:
            details = consumer["channel_details"]
            peer = str(details["peer_host"])
            family = socket.AF_INET6 if ":" in peer else socket.AF_INET
            packed = socket.inet_pton(family, peer)
            if packed[:12] == b"\0" * 10 + b"\xff\xff":
                packed = packed[12:]
            if (packed, int(details["peer_port"])) in ours:
                consuming.add(str(consumer["queue"]["name"]))
        except (KeyError, TypeError, ValueError, OSError):
            continue
    missing = [q for q in queues if q not in consuming]
    missing_for = health.set("consumers", not missing)
    if not missing:
        return
    reason = f"no consumer in this process tree for queues {', '.join(missing)}"
    if missing_for < max(float(ctx.params.get(RECONNECT_GRACE) or 0), 15.0):
        ctx.log.warning(f"{reason} ({missing_for:.0f}s; the management API lags)")
    else:
        findings.add(OCFExit.ERR_GENERIC, f"{reason} for {missing_for:.0f}s")


def make_monitor(profile: Profile) -> Callable[[Context], int]:
    def monitor(ctx: Context) -> int:
        pid = service.monitored_pid(ctx)
        if pid is None:
            return OCFExit.NOT_RUNNING
        if ctx.check_level < 10:
            return OCFExit.SUCCESS
        try:
            facts = Facts(ctx, profile)
        except OCFError as error:  # 5/6 would ban or stop the resource everywhere
            raise OCFError(
                OCFExit.ERR_GENERIC, f"running, configuration unreadable: {error.reason}"
            ) from None
        health = Health(ctx)
        findings = Findings()
        check_service(ctx, facts, pid, health, findings)
        if ctx.check_level >= 20 and not findings.failures:
            check_queues(ctx, facts, pid, health, findings)
        health.publish()
        if findings.failures:
            reason = "; ".join(findings.failures + findings.degraded)
            if not quorate(ctx):
                raise OCFError(OCFExit.DEGRADED, f"no quorum, not asking for recovery: {reason}")
            raise OCFError(OCFExit.ERR_GENERIC, reason)
        if findings.degraded:
            raise OCFError(OCFExit.DEGRADED, "; ".join(findings.degraded))
        return OCFExit.SUCCESS

    return monitor


HEALTH_DOC = """Every hakit OpenStack agent: monitor depth 0 checks the master process (a
worker it respawns is not a failure), depth 10 the configuration's dependencies as the
service uses them, depth 20 the queues' consumers (with management_url). A hung
service (stale heartbeat) or a disconnected one fails (1), never "not running" (7).
Dependency health is published as node attributes hakit-<resource>-broker and
hakit-<resource>-db (ok|down): a dependency lost for less than reconnect_grace is
degraded (190); after that, failed when only this instance lost it (or it is alone),
degraded when every instance reports it down. Without quorum the agent never asks for
recovery (190). No password is ever a parameter or on a command line: URLs and
credentials come from the service's own configuration files."""


def make_agent(profile: Profile) -> Agent:
    """The declared agent for a profile."""
    parameters = [profile.binary, profile.config, *COMMON_PARAMETERS, *profile.extra_parameters]
    actions = [
        Action("start", make_start(profile), timeout=profile.start_timeout),
        Action("stop", stop, timeout=profile.stop_timeout),
        Action("monitor", make_monitor(profile), timeout=20, interval=10),
        Action("monitor", make_monitor(profile), timeout=30, interval=30, depth=10),
        Action("monitor", make_monitor(profile), timeout=40, interval=120, depth=20),
    ]
    if profile.notify is not None:
        actions.append(Action("notify", profile.notify, timeout=60))
    return Agent(
        name=profile.name,
        version=VERSION,
        shortdesc=profile.shortdesc,
        longdesc=f"{profile.longdesc.rstrip()}\n\n{HEALTH_DOC}",
        parameters=parameters,
        actions=actions,
        validate=make_validate(profile),
    )
