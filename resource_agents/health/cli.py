"""`hakit health`: the health table, the publisher, the API, subscriptions and tokens.

    hakit health [--json] [--watch [--interval S]]
    hakit health publish [--inventory FILE] [--api-base URL] [--leader] [--api-port P]
    hakit health serve [--address A] [--port P]
    hakit health subscriptions list | add URI [--type T] [--severity S] [--host H] | delete ID
    hakit health tokens list | add NAME | delete NAME
    hakit health reports list | replay RULES;  hakit health correlations list | explain ID
    hakit health receive --secret-file F --log FILE [--address A] [--port P] [--delay S]

Wire it into tools/cli.py with `add_parser(commands)`; every verb returns an exit code
and reports errors as one line. Building the parser imports nothing but `constants`: the
`hakit` command starts as fast as before. `main` is the installed entry script
(/usr/libexec/hakit/health, run by `python3 -IS`): the same verbs, without the `hakit`
command's other dependencies.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from hakit.ocf import exits
from hakit.resource_agents.clouds import DEFAULT_CLOUDS_YAML
from hakit.resource_agents.health import cli_reports, cli_store, constants
from hakit.resource_agents.health.cli_common import friendly, store_options

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socketserver

    from hakit.resource_agents.health.api import ApiServer
    from hakit.resource_agents.health.model import HealthReport
    from hakit.resource_agents.health.nova import ComputeAPI


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `health` and its verbs to the `hakit` command's subparsers."""
    health = commands.add_parser("health", help="node health, SOL 003 alarms, subscribers")
    health.add_argument("--json", action="store_true", help="JSON instead of a table")
    health.add_argument("--watch", action="store_true", help="follow: print again on change")
    health.add_argument("--interval", type=exits.positive, default=2.0, help="--watch period (s)")
    health.add_argument("--outbox", default=constants.OUTBOX_PATH, help="alert outbox (evidence)")
    health.set_defaults(func=friendly(_show))
    verbs = health.add_subparsers(dest="health_verb", metavar="VERB")

    publish = verbs.add_parser("publish", help="deliver alarms to subscribers (runs until stopped)")
    store_options(publish)
    publish.add_argument("--outbox", default=constants.OUTBOX_PATH)
    publish.add_argument("--inventory", help="JSON/YAML: host → instances, for instance alarms")
    publish.add_argument(
        "--correlation", metavar="JSON", help="correlate VNF error reports by these rules"
    )
    publish.add_argument("--report-rate", type=exits.positive, default=500.0, help="per client /s")
    publish.add_argument("--report-burst", type=exits.positive, default=1000.0, help="per client")
    publish.add_argument("--api-base", help="base of links in alarms (default: the API's)")
    publish.add_argument("--api-port", type=exits.port, help="also serve the API, in this process")
    publish.add_argument("--api-address", default=constants.API_ADDRESS, help="with --api-port")
    _api_security_options(publish)
    publish.add_argument("--vim-connection-id", default=constants.VIM_CONNECTION_ID)
    publish.add_argument("--leader", action="store_true", help="deliver without being the DC")
    publish.add_argument(
        "--cloud",
        metavar="NAME",
        help="clouds.yaml entry (Keystone): force a fenced host's nova-compute down",
    )
    publish.add_argument(
        "--clouds-yaml", metavar="FILE", default=DEFAULT_CLOUDS_YAML, help="with --cloud"
    )
    publish.add_argument(
        "--nova-api", metavar="URL", help="with --cloud: compute API …/v2.1 (not the catalog's)"
    )
    publish.add_argument(
        "--evacuate", action="store_true", help="with --cloud: evacuate a fenced host's servers"
    )
    publish.add_argument(
        "--evacuate-workers",
        type=_bounded(1, 64),
        default=constants.EVACUATE_WORKERS,
        metavar="N",
        help="evacuation requests in flight at once (default: %(default)s)",
    )
    publish.add_argument(
        "--evacuate-guard",
        type=_bounded(1, 100),
        default=constants.EVACUATE_GUARD_PERCENT,
        metavar="PERCENT",
        help="more than this share of the nodes lost at once (two at least) holds every "
        "evacuation under one alarm (default: %(default)s)",
    )
    publish.add_argument(
        "--evacuate-guard-hold",
        type=_bounded(0, 3600),
        default=constants.EVACUATE_GUARD_HOLD,
        metavar="SECONDS",
        help="once tripped, the guard holds while any host is still lost, up to this long "
        "after the count was last too high (default: %(default)s)",
    )
    publish.add_argument(
        "--evacuate-deadline",
        type=_bounded(1, 86400),
        default=constants.EVACUATE_DEADLINE,
        metavar="SECONDS",
        help="a server still on its fenced host this long after its evacuation request "
        "is alarmed (default: %(default)s)",
    )
    publish.add_argument(
        "--routers", action="store_true", help="watch L3 HA routers (report them, alarm them)"
    )
    publish.add_argument(
        "--router-advert-interval",
        type=_bounded(1, 255),
        default=2,
        metavar="SECONDS",
        help="the routers' VRRP advert interval, the unit of the graces (default: %(default)s)",
    )
    publish.add_argument(
        "--router-standbys",
        type=_bounded(0, 64),
        metavar="N",
        help="standbys each router should have (default: every host it was seen on but one)",
    )
    publish.add_argument(
        "--metrics-port", type=exits.port, help="serve Prometheus metrics (/metrics) on this port"
    )
    publish.add_argument("--metrics-address", default="127.0.0.1", help="with --metrics-port")
    publish.set_defaults(func=friendly(_publish))

    routers = verbs.add_parser(
        "routers", help="this host's L3 HA routers as the data plane shows them"
    )
    routers.add_argument("--json", action="store_true", help="JSON instead of a table")
    routers.add_argument(
        "--all", action="store_true", help="every node's, as its publisher reported them"
    )
    routers.set_defaults(func=friendly(_routers))

    _add_serve(verbs)
    cli_store.add_verbs(verbs)
    cli_reports.add_verbs(verbs)
    _add_receive(verbs)


def _bounded(low: int, high: int) -> Callable[[str], int]:
    """argparse type: an integer from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not from {low} to {high}")
        return value

    return parse


def _add_serve(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = verbs.add_parser("serve", help="the SOL 003-shaped subscriptions API")
    store_options(serve)
    serve.add_argument("--address", default=constants.API_ADDRESS)
    serve.add_argument("--port", type=exits.port, default=constants.API_PORT)
    serve.add_argument("--api-base", help="public base URL (default: http://ADDRESS:PORT)")
    _api_security_options(serve)
    serve.set_defaults(func=friendly(_serve))


def _api_security_options(parser: argparse.ArgumentParser) -> None:
    """TLS and the callback policy of the API (serve, and publish --api-port)."""
    parser.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate")
    parser.add_argument("--tls-key", metavar="PEM", help="... and this private key")
    parser.add_argument(
        "--tls-client-ca", metavar="PEM", help="require client certificates from this CA"
    )
    parser.add_argument(
        "--plain-http",
        action="store_true",
        help="allow plain HTTP on an address other than loopback (tokens travel in clear)",
    )
    parser.add_argument(
        "--allow-callback",
        action="append",
        default=[],
        metavar="CIDR",
        help="a private or loopback network callbacks may reach (repeatable; public "
        "addresses always may, link-local and unspecified never)",
    )


def _api_security(args: argparse.Namespace) -> dict[str, Any]:
    """ApiServer's keyword arguments for TLS and the callback policy."""
    from hakit.resource_agents.health.api import Tls

    if bool(args.tls_cert) != bool(args.tls_key):
        raise exits.UsageError("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        raise exits.UsageError("--tls-client-ca needs --tls-cert and --tls-key")
    tls = Tls(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    return {"tls": tls, "plain_http": args.plain_http, "allow_callbacks": args.allow_callback}


def _add_receive(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    receive = verbs.add_parser("receive", help="a reference subscriber: check and log deliveries")
    receive.add_argument("--address", default="127.0.0.1")
    receive.add_argument("--port", type=exits.port, default=8798)
    receive.add_argument("--secret-file", required=True, help="the subscription's HMAC secret")
    receive.add_argument("--log", required=True, help="JSON lines, one per arrival and answer")
    receive.add_argument("--delay", type=float, default=0.0, help="hold each answer S seconds")
    receive.set_defaults(func=friendly(_receive))


# --- hakit health --------------------------------------------------------------------


def current_report(outbox_path: str) -> HealthReport:
    """Every node's health now, with the outbox's evidence when it can be read."""
    import sqlite3

    from hakit.resource_agents.health import outbox, sources
    from hakit.resource_agents.health.model import classify

    if os.path.exists(outbox_path):
        try:
            with outbox.Outbox(outbox_path) as box:
                return classify(sources.with_devices(sources.live_view(box)))
        except (sqlite3.Error, OSError) as error:
            print(f"hakit health: outbox not read ({error})", file=sys.stderr)
    return classify(sources.with_devices(sources.live_view()))


def _show(args: argparse.Namespace) -> int:
    """The health table (or JSON); with --watch, again on every change until SIGINT or
    SIGTERM (a flag, not KeyboardInterrupt: one raised inside a finalizer is lost)."""
    from hakit.resource_agents.health.model import as_dict, health_table

    stopping = threading.Event()
    if args.watch:
        _until_terminated(stopping.set)
    previous = None
    while not stopping.is_set():
        report = current_report(args.outbox)
        state = {**as_dict(report), "taken": None}
        if state != previous:
            if args.json:
                text = json.dumps(as_dict(report), indent=None if args.watch else 2) + "\n"
            else:
                text = health_table(report)
                if args.watch and sys.stdout.isatty():
                    text = "\033[H\033[2J" + text
            sys.stdout.write(text)
            sys.stdout.flush()
            previous = state
        if not args.watch:
            return 0
        stopping.wait(args.interval)
    return 0


def _routers(args: argparse.Namespace) -> int:
    """Each qrouter- namespace here: active (it holds the HA address) or standby."""
    import socket
    import subprocess

    from hakit.resource_agents.health.routers import host_states

    if args.all:
        return _reported_routers(args)
    try:
        states = host_states()
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"hakit health routers: cannot read the namespaces: {error}", file=sys.stderr)
        return exits.ENVIRONMENT
    if args.json:
        print(json.dumps({"host": socket.gethostname(), "routers": states}, indent=2))
        return 0
    if not states:
        print("no router namespaces with an ha- interface on this host")
    for router, state in sorted(states.items()):
        print(f"{router}  {state}")
    return 0


def _reported_routers(args: argparse.Namespace) -> int:
    """Every node's routers as its publisher reported them (router_watch=true)."""
    import time

    from hakit.ocf import cluster
    from hakit.resource_agents.health.router_alarms import ATTRIBUTE, decode

    try:
        values = cluster.transient_attribute_values(ATTRIBUTE)
    except cluster.ClusterCommandError as error:
        print(f"hakit health routers: no cluster answer: {error}", file=sys.stderr)
        return exits.ENVIRONMENT
    readings = {host: found for host, value in sorted(values.items()) if (found := decode(value))}
    if args.json:
        hosts = {h: {"taken": t, "routers": r} for h, (t, r) in readings.items()}
        print(json.dumps({"hosts": hosts}, indent=2))
        return 0
    if not readings:
        print(f"no node reports routers (node attribute {ATTRIBUTE}; publisher router_watch)")
    for host, (taken, states) in readings.items():
        print(f"{host}  (reported {time.time() - taken:.0f}s ago)")
        for router, state in sorted(states.items()):
            print(f"  {router}  {state}")
    return 0


# --- publish / serve -------------------------------------------------------------------


def _until_terminated(stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT call `stop` in a thread of their own: a handler runs in the main
    thread, which may hold the very lock `stop` takes (Event.set while Event.wait holds
    its condition: a deadlock, a `--watch` that never ended on SIGINT)."""

    def handler(*_: object) -> None:
        threading.Thread(target=stop, name="stop", daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def _publish(args: argparse.Namespace) -> int:
    from hakit.resource_agents.health.publisher import Publisher, PublisherConfig
    from hakit.resource_agents.health.sol003 import Context

    if args.leader:
        os.environ[constants.LEADER_VARIABLE] = "1"
    rules = None
    if args.correlation:
        from hakit.resource_agents.health.correlation import parse_rules

        rules = parse_rules(args.correlation)  # RulesError: a ValueError, exit 2
    server = _api_server(args)  # with --api-port: serving, and args.api_base is its base
    config = PublisherConfig(
        outbox=args.outbox,
        subscriptions=args.subscriptions,
        inventory=args.inventory,
        nova=_compute_api(args),
        evacuate=args.evacuate,
        evacuate_workers=args.evacuate_workers,
        evacuate_guard=args.evacuate_guard / 100,
        evacuate_guard_hold=float(args.evacuate_guard_hold),
        evacuate_deadline=float(args.evacuate_deadline),
        watch_cib="CIB_file" not in os.environ,
        context=Context(args.vim_connection_id, args.api_base),
        correlation=rules,
        routers=args.routers,
        router_advert_interval=float(args.router_advert_interval),
        router_standbys=args.router_standbys,
    )
    metrics = None
    if args.metrics_port is not None:  # only then is prometheus_client imported
        from hakit.resource_agents.health.metrics import serve

        metrics = serve(args.metrics_address, args.metrics_port)
    try:
        publisher = Publisher(config, metrics=metrics)  # the outbox is open from here on
    except BaseException:
        _close(server)
        raise
    if server is not None and server.reports is not None:
        server.reports.writer.on_stored = publisher.wake.set
        server.reports.refusing = lambda: (
            None
            if publisher.leader.is_set()
            else "this instance does not lead (the DC's instance correlates): post to another"
        )
    _until_terminated(publisher.stop)
    _log(f"publishing from {args.outbox}" + (f"; API on {server.api_base}" if server else ""))
    publisher.run()
    _close(server)
    if metrics is not None:
        metrics.close()
    _log("stopped")
    return 0


def _compute_api(args: argparse.Namespace) -> ComputeAPI | None:
    """`--cloud`: the compute API of that clouds.yaml entry, checked before the first call
    (a bad entry is refused at start, with what to fix)."""
    if not args.cloud:
        return None
    from hakit.resource_agents.clouds import CloudSession, read_entry
    from hakit.resource_agents.health.nova import ComputeAPI

    read_entry(args.clouds_yaml, args.cloud)
    return ComputeAPI(CloudSession(args.clouds_yaml, args.cloud), args.nova_api or None)


def _api_server(args: argparse.Namespace) -> ApiServer | None:
    """`publish --api-port`: the subscriptions API in the publisher's process, serving."""
    if args.api_port is None:
        args.api_base = args.api_base or constants.API_BASE
        return None
    from hakit.resource_agents.health.api import ApiServer

    server = ApiServer(
        args.api_address,
        args.api_port,
        store_path=args.subscriptions,
        api_base=args.api_base,
        reports_path=args.outbox,
        report_rate=args.report_rate,
        report_burst=args.report_burst,
        **_api_security(args),
    )
    args.api_base = server.api_base
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _close(server: ApiServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


def _log(message: str) -> None:
    from hakit.resource_agents.health.delivery import log

    log(message)


def _serve(args: argparse.Namespace) -> int:
    from hakit.resource_agents.health.api import ApiServer

    server = ApiServer(
        args.address,
        args.port,
        store_path=args.subscriptions,
        api_base=args.api_base,
        **_api_security(args),
    )
    print(f"hakit health: API on {server.api_base}", file=sys.stderr)
    return _serve_until_terminated(server)


def _receive(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hakit.resource_agents.health.receiver import Receiver

    with open(args.secret_file, encoding="utf-8") as handle:
        secret = handle.read().strip()
    server = Receiver((args.address, args.port), secret, Path(args.log), args.delay)
    print(
        f"hakit health: receiving on {args.address}:{args.port}, logging to {args.log}",
        file=sys.stderr,
    )
    return _serve_until_terminated(server)


def _serve_until_terminated(server: socketserver.BaseServer) -> int:
    stopped = threading.Event()
    _until_terminated(stopped.set)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    while not stopped.wait(1.0):
        pass
    server.shutdown()
    server.server_close()
    return 0


# --- subscriptions and tokens ---------------------------------------------------------


# --- the installed entry script ------------------------------------------------------------

#: Debian's system packages (python3-yaml, for YAML inventories): searched last under -IS.
DEBIAN_DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def main(argv: list[str] | None = None) -> int:
    """`/usr/libexec/hakit/health VERB ...`: the `hakit health` verbs, run by `python3 -IS`
    over the OCF library directory (see tools/install_agents.py)."""
    if sys.flags.no_site and DEBIAN_DIST_PACKAGES not in sys.path:
        sys.path.append(DEBIAN_DIST_PACKAGES)
    parser = argparse.ArgumentParser(prog="hakit")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["health", *(sys.argv[1:] if argv is None else argv)])
    return exits.run(args.func, args, "hakit health")
