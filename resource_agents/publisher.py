"""ocf:hakit:publisher — hakit's health publisher, and optionally the SOL 003
subscriptions API, run by Pacemaker as a clone so that publishing itself is highly
available.

Every instance runs `hakit health publish` (the entry script `program`) over this
node's alert outbox. Only the instance on the DC of a quorate partition derives alarms
and delivers them — the publisher decides on every cycle, from crm_mon — so a clone
sends no duplicates and a node cut off from the majority sends nothing; another
instance takes over when the DC moves. With api_port the same process serves the
subscriptions API on api_address:api_port.

Start returns once the daemon holds the outbox open (and, with an API, its port is
listened on and answers HTTP). Monitor depth 0 checks the process; depth 10 that the
outbox is readable and is still the file the daemon holds, and that the API answers
(401 without a token is alive; with monitor_token_file an authenticated request must
succeed); depth 20 that the cloud's credentials get a Keystone token (degraded, 190,
with the reason otherwise: a restart cannot fix them). Stop sends TERM — the publisher
finishes the delivery in flight and closes the outbox — and KILL only near the deadline.
No secret is ever a parameter value or on a command line: subscribers' HMAC secrets and
the API's token hashes live in the subscriptions store (root only), the monitor's token
in monitor_token_file, OpenStack credentials in clouds_yaml.
"""

from __future__ import annotations

import os

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
    StringParam,
)
from hakit.resource_agents import clouds, publisher_nova, service
from hakit.resource_agents.health import constants, liveness
from hakit.resource_agents.health.liveness import holds_open, outbox_problem

VERSION = "1.0.0"
FORCED = ("1", "yes", "true")

PROGRAM = PathParam(
    "program",
    "The `hakit health` command",
    "Installed by `hakit agents install`; runs "
    "under the system python3 -IS over the OCF library.",
    default="/usr/libexec/hakit/health",
    executable=True,
)
OUTBOX = PathParam(
    "outbox",
    "Alert outbox (SQLite)",
    "The file hakit's alert agent writes (its hakit_outbox); "
    "the publisher keeps alarms, notifications and delivery cursors there too.",
    default=constants.OUTBOX_PATH,
)
SUBSCRIPTIONS = PathParam(
    "subscriptions",
    "Subscriptions and API tokens (SQLite)",
    "Subscribers, their HMAC "
    "secrets and the API's token hashes (mode 0600; `hakit health subscriptions|tokens`).",
    default=constants.SUBSCRIPTIONS_PATH,
)
INVENTORY = PathParam(
    "inventory",
    "Instance inventory",
    "JSON (or YAML, with python3-yaml): host → its "
    "instances, for per-instance alarms correlated with the host's. Empty: host alarms only.",
    must_exist=True,
)
CORRELATION = StringParam(
    "correlation",
    "VNF error-report correlation rules (JSON)",
    "Written by `hakit topology` from the topology's `correlation` section: when reports "
    "of distinct VNFs about one host, physnet or cinder backend make an NFVI fault suspect. "
    "Empty: reports are stored and resolved, never correlated.",
    default="",
)
API_PORT = PortParam(
    "api_port",
    "Serve the subscriptions API on this TCP port",
    "The SOL 003-shaped subscriptions API, in the publisher's process. Empty: no API.",
)
API_ADDRESS = StringParam(
    "api_address",
    "Address the API listens on",
    "An address of this node (0.0.0.0 or :: " "for all); only with api_port.",
    default=constants.API_ADDRESS,
)
API_BASE = StringParam(
    "api_base",
    "Public base URL of the API",
    "Used in links in alarms and subscriptions, e.g. "
    "a VIP's http://192.0.2.10:8797. Empty: http://api_address:api_port.",
    default="",
)
API_TLS_CERT = PathParam(
    "api_tls_cert",
    "API certificate (PEM)",
    "Serve the API over HTTPS with this certificate (and api_tls_key). Without it the API "
    "speaks plain HTTP, which it does only on loopback unless api_plain_http is true.",
    must_exist=True,
)
API_TLS_KEY = PathParam(
    "api_tls_key", "API private key (PEM)", "With api_tls_cert.", must_exist=True
)
API_PLAIN_HTTP = BooleanParam(
    "api_plain_http",
    "Allow plain HTTP off loopback",
    "Bearer tokens then travel in clear: only on a network you trust.",
    default="false",
)
API_ALLOW_CALLBACKS = ListParam(
    "api_allow_callbacks",
    "Private networks callbacks may reach",
    "CIDRs (e.g. 10.0.0.0/8) a subscriber's callbackUri may resolve to besides public "
    "addresses; link-local and unspecified addresses are always refused.",
    default="",
)
VIM_CONNECTION_ID = StringParam(
    "vim_connection_id", "vimConnectionId in alarms", default=constants.VIM_CONNECTION_ID
)
MONITOR_TOKEN_FILE = PathParam(
    "monitor_token_file",
    "File holding an API token for the monitor",
    "A bearer token (`hakit health tokens add NAME`), read by monitor depth 10, which then "
    "expects an authenticated request to succeed; without it any HTTP answer (401) is alive. "
    "Never logged.",
    must_exist=True,
)
CLOUD, CLOUDS_YAML = clouds.agent_parameters(
    "force a fenced host's nova-compute down (and back up once the host is OK) and, with "
    "evacuate, evacuate its servers; without an inventory, nova's servers are the "
    "per-instance alarms (the user needs nova's admin role)"
)
METRICS_PORT = PortParam(
    "metrics_port",
    "Serve Prometheus metrics on this TCP port",
    "The publisher's hakit_* metrics at /metrics (node health classes, alarms, deliveries, "
    "outbox depth, evacuations), on metrics_address; needs prometheus_client (`hakit agents "
    "install` copies it). Empty: no metrics.",
)
METRICS_ADDRESS = StringParam(
    "metrics_address",
    "Address the metrics listen on",
    "An address of this node; loopback unless a scraper elsewhere needs them (they carry no "
    "secret). Only with metrics_port.",
    default="127.0.0.1",
)
ROUTER_WATCH = BooleanParam(
    "router_watch",
    "Watch neutron's L3 HA routers",
    "Every instance reports the routers of its node's qrouter-/snat- namespaces (a private "
    "node attribute, never written to the CIB); the leading one raises SOL 003 alarms for a "
    "router with no active instance, more than one (split-brain) or too few standbys. With "
    "clouds_yaml, neutron's ha_state per agent is read too (every 10 s): neutron's hosts "
    "count as expected, and its active host differing from the data plane's is an alarm.",
    default="false",
)
ROUTER_ADVERT_INTERVAL = IntegerParam(
    "router_advert_interval",
    "The routers' VRRP advert interval (s)",
    "neutron's ha_vrrp_advert_int: the graces before an alarm are counted in it, so that "
    "a failover raises nothing.",
    default="2",
    minimum=1,
    maximum=255,
)
ROUTER_STANDBYS = IntegerParam(
    "router_standbys",
    "Standby instances each router should have",
    "neutron's max_l3_agents_per_router minus one. Empty: every host a router was seen on "
    "but the active one.",
    minimum=0,
    maximum=64,
)
ENVIRONMENT_FILE = PathParam(
    "environment_file",
    "Environment file",
    "KEY=VALUE lines added to the daemon's "
    "environment. HAKIT_HEALTH_LEADER=1 makes a single instance outside a cluster deliver "
    "(refused in a clone); CIB_file points crm_mon at a CIB file.",
    must_exist=True,
)


# --- what the daemon is ----------------------------------------------------------------------


def argv(ctx: Context) -> list[str]:
    """`health publish` with this resource's paths; no secret is ever an argument."""
    params = ctx.params
    command = [
        params[PROGRAM],
        "publish",
        "--outbox",
        params[OUTBOX],
        "--subscriptions",
        params[SUBSCRIPTIONS],
        "--vim-connection-id",
        params[VIM_CONNECTION_ID],
    ]
    inventory, base, port = params.get(INVENTORY), params.get(API_BASE), params.get(API_PORT)
    if inventory:
        command += ["--inventory", inventory]
    if params.get(CORRELATION):
        command += ["--correlation", params[CORRELATION]]
    if base:
        command += ["--api-base", base]
    if port is not None:
        command += ["--api-port", str(port), "--api-address", params[API_ADDRESS]]
        if params.get(API_TLS_CERT):
            command += ["--tls-cert", params[API_TLS_CERT], "--tls-key", params[API_TLS_KEY]]
        command += ["--plain-http"] if params.get(API_PLAIN_HTTP) else []
        for network in params.get(API_ALLOW_CALLBACKS) or []:
            command += ["--allow-callback", network]
    if params.get(CLOUD):
        command += ["--cloud", params[CLOUD], "--clouds-yaml", params[CLOUDS_YAML]]
        command += publisher_nova.argv(ctx)
    if params.get(ROUTER_WATCH):
        command += ["--routers", "--router-advert-interval", str(params[ROUTER_ADVERT_INTERVAL])]
        if params.get(ROUTER_STANDBYS) is not None:
            command += ["--router-standbys", str(params[ROUTER_STANDBYS])]
    if params.get(METRICS_PORT) is not None:
        command += ["--metrics-port", str(params[METRICS_PORT])]
        command += ["--metrics-address", params[METRICS_ADDRESS]]
    return command


def read_token(ctx: Context) -> str | None:
    """The monitor's API token (masked in every later message), None without one."""
    path = ctx.params.get(MONITOR_TOKEN_FILE)
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise OCFError(OCFExit.ERR_INSTALLED, f"monitor_token_file: {error}") from None
    if not token or len(token.split()) != 1:
        raise OCFError(OCFExit.ERR_CONFIGURED, f"monitor_token_file {path} holds no single token")
    ctx.log.add_secrets([token])
    return token


def api_problem(ctx: Context, pid: int, port: int, token: str | None) -> str | None:
    """None when the tree listens on `port` and answers HTTP there — with `token`, 200 to an
    authenticated GET of the subscriptions — else why not."""
    address = ctx.params[API_ADDRESS]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address, address)  # noqa: S104
    timeout = min(3.0, max(ctx.remaining(1), 0.2))
    tls = bool(ctx.params.get(API_TLS_CERT))
    return liveness.api_problem(pid, host, port, timeout, token, tls=tls)


def not_ready(ctx: Context, pid: int) -> str | None:
    outbox = ctx.params[OUTBOX]
    if not holds_open(pid, outbox):
        return f"the publisher has not opened the outbox {outbox} yet"
    port = ctx.params.get(API_PORT)
    return None if port is None else api_problem(ctx, pid, port, None)


# --- actions ---------------------------------------------------------------------------------


def validate(ctx: Context) -> int:
    """What the daemon would otherwise die of, with the right code: the environment file,
    forced leadership in a clone, the inventory, the API's address and base, the token."""
    env, _ = service.daemon_environment(ctx)
    clone_max = ctx.clone.max if ctx.clone is not None else 1
    forced = env.get(constants.LEADER_VARIABLE, "").strip().lower() in FORCED
    if forced and clone_max > 1:
        raise OCFError(
            OCFExit.ERR_CONFIGURED,
            f"environment_file sets {constants.LEADER_VARIABLE}=1 in a clone of {clone_max}: "
            "every instance would deliver (duplicates); the DC's instance delivers without it",
        )
    check_inventory(ctx)
    check_correlation(ctx)
    base = ctx.params.get(API_BASE)
    if base and not base.startswith(("http://", "https://")):
        raise OCFError(OCFExit.ERR_CONFIGURED, f"api_base={base!r} is not an http(s) URL")
    port = ctx.params.get(API_PORT)
    if port is not None:
        check_address(ctx.params[API_ADDRESS])
        check_api_security(ctx)
    check_metrics(ctx, port)
    publisher_nova.validate(ctx, cloud=bool(ctx.params.get(CLOUD)))
    clouds.validate_entry(ctx, CLOUD, CLOUDS_YAML)
    publisher_nova.check_service_token(ctx)
    if read_token(ctx) is not None and port is None:
        ctx.log.warning("monitor_token_file is unused without api_port")
    outbox = ctx.params[OUTBOX]
    if os.path.exists(outbox):
        problem = outbox_problem(outbox, max(ctx.remaining(5), 1.0), "PRAGMA schema_version")
        if problem:
            raise OCFError(OCFExit.ERR_INSTALLED, problem)
    return OCFExit.SUCCESS


def check_inventory(ctx: Context) -> None:
    path = ctx.params.get(INVENTORY)
    if not path:
        return
    import sys

    from hakit.resource_agents.health.sol003 import load_inventory
    from hakit.resource_agents.openstack.config import DEBIAN_DIST_PACKAGES

    if DEBIAN_DIST_PACKAGES not in sys.path:
        sys.path.append(DEBIAN_DIST_PACKAGES)  # python3-yaml, as the daemon finds it
    try:
        load_inventory(path)
    except ImportError:
        raise OCFError(
            OCFExit.ERR_INSTALLED, f"inventory {path} is not JSON, and python3-yaml is missing"
        ) from None
    except OSError as error:
        raise OCFError(OCFExit.ERR_INSTALLED, f"inventory: {error}") from None
    except Exception as error:  # ValueError, yaml.YAMLError, ...: the content is wrong
        text = " ".join(str(error).split()).removeprefix(f"{path}: ")
        raise OCFError(OCFExit.ERR_CONFIGURED, f"inventory {path}: {text}") from None


def check_correlation(ctx: Context) -> None:
    """The correlation rules parse (6 naming every problem otherwise)."""
    text = ctx.params.get(CORRELATION)
    if not text:
        return
    from hakit.resource_agents.health.correlation import RulesError, parse_rules

    try:
        parse_rules(text)
    except RulesError as error:
        raise OCFError(OCFExit.ERR_CONFIGURED, f"correlation: {error}") from None


def check_api_security(ctx: Context) -> None:
    """HTTPS (cert and key together), or plain HTTP on loopback or when allowed; the
    callback networks parse."""
    from hakit.resource_agents.health import callbacks
    from hakit.resource_agents.health.api import loopback

    if bool(ctx.params.get(API_TLS_CERT)) != bool(ctx.params.get(API_TLS_KEY)):
        raise OCFError(OCFExit.ERR_CONFIGURED, "api_tls_cert and api_tls_key go together")
    address = ctx.params[API_ADDRESS]
    plain_ok = ctx.params.get(API_PLAIN_HTTP) or loopback(address)
    if not ctx.params.get(API_TLS_CERT) and not plain_ok:
        raise OCFError(
            OCFExit.ERR_CONFIGURED,
            f"api_address {address} is not loopback: set api_tls_cert and api_tls_key "
            "(or api_plain_http=true)",
        )
    try:
        callbacks.networks(ctx.params.get(API_ALLOW_CALLBACKS) or [])
    except ValueError as error:
        raise OCFError(OCFExit.ERR_CONFIGURED, f"api_allow_callbacks: {error}") from None


def check_metrics(ctx: Context, api_port: int | None) -> None:
    """metrics_port: not the API's, on an address of this node, prometheus_client there."""
    port = ctx.params.get(METRICS_PORT)
    if port is None:
        return
    if port == api_port:
        raise OCFError(OCFExit.ERR_CONFIGURED, f"metrics_port {port} is also api_port")
    check_address(ctx.params[METRICS_ADDRESS], METRICS_ADDRESS.name)
    import importlib.util

    if importlib.util.find_spec("prometheus_client") is None:
        raise OCFError(OCFExit.ERR_INSTALLED, "metrics_port needs prometheus_client here")


def check_address(address: str, name: str = API_ADDRESS.name) -> None:
    """The API's address must be one this node has (a VIP elsewhere cannot be bound)."""
    import socket

    try:
        infos = socket.getaddrinfo(address or None, 0, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise OCFError(OCFExit.ERR_CONFIGURED, f"{name}={address!r}: {error}") from None
    family, kind, _, _, where = infos[0]
    with socket.socket(family, kind) as probe:
        try:
            probe.bind(where)
        except OSError as error:
            raise OCFError(
                OCFExit.ERR_INSTALLED, f"{name} {address} cannot be bound here: {error}"
            ) from None


def start(ctx: Context) -> int:
    pid = service.running_pid(ctx) or service.spawn(ctx, argv(ctx))
    return service.wait_until_ready(ctx, pid, not_ready, settle=False)


def monitor(ctx: Context) -> int:
    pid = service.monitored_pid(ctx)
    if pid is None:
        return OCFExit.NOT_RUNNING
    if ctx.check_level < 10:
        return OCFExit.SUCCESS
    outbox = ctx.params[OUTBOX]
    problems = []
    problem = outbox_problem(outbox, min(3.0, max(ctx.remaining(1), 0.2)))
    if problem is None and not holds_open(pid, outbox):
        problem = f"the publisher no longer holds {outbox} open (removed or replaced)"
    if problem is not None:
        problems.append(problem)
    port = ctx.params.get(API_PORT)
    if port is not None:
        try:
            token = read_token(ctx)
        except OCFError as error:  # 5/6 from a monitor would stop it everywhere
            token, problem = None, error.reason
        else:
            problem = api_problem(ctx, pid, port, token)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise OCFError(OCFExit.ERR_GENERIC, "running but not healthy: " + "; ".join(problems))
    problem = clouds.auth_problem(ctx, CLOUD, CLOUDS_YAML) if ctx.check_level >= 20 else None
    if problem is not None:  # a restart cannot fix credentials: degraded, with the reason
        raise OCFError(OCFExit.DEGRADED, problem)
    return OCFExit.SUCCESS


AGENT = Agent(
    name="publisher",
    version=VERSION,
    shortdesc="hakit's health publisher (SOL 003 alarms) and subscriptions API, as a clone",
    longdesc=__doc__ or "",
    parameters=[
        PROGRAM,
        OUTBOX,
        SUBSCRIPTIONS,
        INVENTORY,
        CORRELATION,
        API_PORT,
        API_ADDRESS,
        API_BASE,
        API_TLS_CERT,
        API_TLS_KEY,
        API_PLAIN_HTTP,
        API_ALLOW_CALLBACKS,
        VIM_CONNECTION_ID,
        MONITOR_TOKEN_FILE,
        CLOUD,
        CLOUDS_YAML,
        *publisher_nova.PARAMETERS,
        ROUTER_WATCH,
        ROUTER_ADVERT_INTERVAL,
        ROUTER_STANDBYS,
        METRICS_PORT,
        METRICS_ADDRESS,
        ENVIRONMENT_FILE,
        service.LOG_FILE,
    ],
    actions=[
        Action("start", start, timeout=60),
        Action("stop", service.stop, timeout=60),
        Action("monitor", monitor, timeout=20, interval=10),
        Action("monitor", monitor, timeout=30, interval=30, depth=10),
        Action("monitor", monitor, timeout=30, interval=300, depth=20),
    ],
    validate=validate,
)

if __name__ == "__main__":
    AGENT.main()
