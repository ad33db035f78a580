"""The `hakit` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from hakit.lab.lab import Lab


def _agents_install(args: argparse.Namespace) -> int:
    from .install_agents import install

    report = install(python=args.python, root=Path(args.ocf_root) if args.ocf_root else None)
    for path in report.written:
        print(f"wrote   {path}")
    for path in report.removed:
        print(f"removed {path}")
    print(
        f"{len(report.written)} written, {len(report.removed)} removed, "
        f"{report.unchanged} unchanged"
    )
    return 0


def _agents_uninstall(args: argparse.Namespace) -> int:
    from .install_agents import uninstall

    for path in uninstall(root=Path(args.ocf_root) if args.ocf_root else None).removed:
        print(f"removed {path}")
    return 0


def _agents_list(args: argparse.Namespace) -> int:
    from importlib import import_module

    from hakit.resource_agents import AGENTS

    for agent_type, module in sorted(AGENTS.items()):
        agent = import_module(module).AGENT
        print(f"ocf:hakit:{agent_type:<20} {agent.shortdesc}")
    return 0


def _lab(args: argparse.Namespace) -> int:
    import os

    from hakit.lab.errors import LabError
    from hakit.lab.lab import Lab

    if os.geteuid() != 0:
        raise LabError("the lab needs root (namespaces, links, mounts); run it as root")
    return int(LAB_VERBS[args.verb](Lab(), args) or 0)


def _lab_up(lab: Lab, args: argparse.Namespace) -> None:
    timings = lab.up(nodes=args.nodes, profile=args.profile, infra=args.infra)
    _print_status(lab)
    print(
        f"lab up in {timings['ready']:.1f}s (online with DC after "
        f"{timings['online_with_dc']:.1f}s, profile {lab.state.profile})"
    )


def _lab_down(lab: Lab, args: argparse.Namespace) -> None:
    lab.down(purge=args.purge)
    print("lab down" + (" and purged" if args.purge else f"; state kept in {lab.dir}"))


def _lab_infra(lab: Lab, args: argparse.Namespace) -> None:
    info = lab.infra_up()
    credentials = lab.dir / "infra" / "credentials.json"
    print(
        f"infra node {info.address}: MariaDB :{info.mysql_port}, RabbitMQ "
        f":{info.amqp_port}; credentials in {credentials}"
    )


def _lab_openstack(lab: Lab, args: argparse.Namespace) -> None:
    from hakit.lab import cloud

    compute = args.verb == "cloud"
    if args.action == "down":
        cloud.down(lab)
        print("OpenStack resources removed (the demo topology is back)")
        return
    if args.action == "up":
        timings = cloud.up(lab, compute=compute, progress=print)
        print(
            f"OpenStack up in {timings['running']:.0f}s (venv {timings['venv']:.0f}s, "
            f"databases {timings['databases']:.0f}s)"
        )
    for clone, nodes in cloud.running(lab, compute=compute).items():
        print(f"  {clone:<24} {' '.join(nodes) or '-'}")
    if compute:
        print(
            f"compute API: http://<node address>:{cloud.NOVA_API_PORT}/v2.1, "
            f"X-Auth-Token {cloud.NOVA_TOKEN} (noauth, labs only)"
        )


def _lab_exec(lab: Lab, args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return lab.attach(args.node, command or ["bash", "-l"])


def _lab_power_state(lab: Lab, node: str) -> int:
    """Exit 0 when `node` is on, 2 when off (the fence agent's status)."""
    lab.check_node(node)
    return 0 if lab.powered(node) else 2


def _lab_demo(lab: Lab, args: argparse.Namespace) -> int:
    from hakit.lab.demo import main as demo

    return demo()


LAB_VERBS: dict[str, Callable[[Lab, argparse.Namespace], int | None]] = {
    "up": _lab_up,
    "down": _lab_down,
    "status": lambda lab, args: _print_status(lab),
    "infra": _lab_infra,
    "openstack": _lab_openstack,
    "cloud": _lab_openstack,
    "exec": _lab_exec,
    "cut": lambda lab, args: lab.cut(args.node),
    "power-on": lambda lab, args: lab.power_on(args.node),
    "power-state": lambda lab, args: _lab_power_state(lab, args.node),
    "isolate": lambda lab, args: lab.isolate(args.node),
    "heal": lambda lab, args: lab.heal(),
    "kill": lambda lab, args: print(f"killed {lab.kill(args.node, args.process)}"),
    "demo": _lab_demo,
}


def _print_status(lab: Lab) -> None:
    status = lab.status()
    nodes = status["nodes"]
    if not isinstance(nodes, dict):
        return
    print(
        f"profile {status['profile']}, DC {status['dc'] or '-'}, "
        f"{'quorate' if status['quorate'] else 'no quorum'}"
    )
    for name, node in nodes.items():
        print(
            f"  {name:<8} {lab.address(name):<12} power {node['power']:<4} "
            f"{'online' if node['online'] else 'offline'}"
        )


def _add_lab(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lab = commands.add_parser("lab", help="a real multi-node cluster on this machine")
    verbs = lab.add_subparsers(dest="verb", required=True)
    up = verbs.add_parser("up", help="create or repair the lab (idempotent)")
    up.add_argument("--nodes", type=int, help="number of nodes (default 3)")
    up.add_argument("--profile", choices=["default", "fast"], help="timing profile")
    up.add_argument(
        "--infra", action="store_true", help="also the infra node (MariaDB, RabbitMQ) at 10.77.0.5"
    )
    down = verbs.add_parser("down", help="stop the lab, delete namespaces and links")
    down.add_argument("--purge", action="store_true", help="also delete node state and logs")
    verbs.add_parser("status", help="power, membership, DC")
    verbs.add_parser("infra", help="start (or repair) the infra node: MariaDB, RabbitMQ")
    cloud = verbs.add_parser("openstack", help="cinder and nova services as clones (real)")
    cloud.add_argument("action", choices=("up", "status", "down"))
    cloud = verbs.add_parser(
        "cloud",
        help="the mini cloud: the OpenStack services, placement, "
        "nova-api, conductor, fake computes, evacuation",
    )
    cloud.add_argument("action", choices=("up", "status", "down"))
    run = verbs.add_parser("exec", help="run a command inside a node: exec NODE -- CMD")
    run.add_argument("node")
    run.add_argument("command", nargs=argparse.REMAINDER)
    for verb, text in (
        ("cut", "power cut (SIGKILL everything on the node)"),
        ("power-on", "boot a node"),
        ("power-state", "exit 0 if the node is on, 2 if off"),
        ("isolate", "network partition: the node's link goes down"),
    ):
        verbs.add_parser(verb, help=text).add_argument("node")
    verbs.add_parser("heal", help="bring every node's link back up")
    verbs.add_parser("demo", help="up, a small HA layout, a power cut, fencing, recovery")
    kill = verbs.add_parser("kill", help="SIGKILL a process by name on a node")
    kill.add_argument("node")
    kill.add_argument("process")
    lab.set_defaults(func=_lab)


def _topology(args: argparse.Namespace) -> int:
    from .topology.render import render, to_text
    from .topology.validate import validate

    if getattr(args, "lab", None):
        return _in_lab(args)
    if args.verb == "import":
        return _topology_import(args)
    if args.verb == "reference":
        from .topology.reference import markdown

        print(markdown(), end="")
        return 0
    if args.verb == "schema":
        import json

        from .topology.schema import json_schema

        print(json.dumps(json_schema(), indent=2))
        return 0
    loaded = validate(Path(args.file), agents=not args.no_agents)
    for problem in loaded.problems:
        print(problem, file=sys.stderr)
    if loaded.problems or loaded.topology is None:
        print(f"{args.file}: {len(loaded.problems)} problem(s)", file=sys.stderr)
        return 1
    if args.verb == "validate":
        from .topology.render import VALIDATE_WITH

        agents = "agents skipped" if args.no_agents else "agents"
        print(f"{args.file}: valid (types, names, {agents}, {VALIDATE_WITH}.rng, crm_verify)")
        return 0
    if args.verb in ("diff", "apply"):
        return _topology_change(args, loaded.topology)
    if args.verb == "simulate":
        return _topology_simulate(args, loaded.topology)
    if args.verb == "export":
        return _topology_export(args, loaded.topology)
    text = to_text(render(loaded.topology))
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _topology_export(args: argparse.Namespace, topology: object) -> int:
    from .topology.export import ExportError, pcs_script
    from .topology.export_crm import crm_script
    from .topology.model import Topology

    assert isinstance(topology, Topology)  # noqa: S101 — validated above
    try:
        script = crm_script(topology) if args.crm else pcs_script(topology)
    except ExportError as error:
        print(f"hakit: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(script)
    return 0


def _topology_change(args: argparse.Namespace, topology: object) -> int:
    from .topology import apply as changes
    from .topology.model import Topology

    assert isinstance(topology, Topology)  # noqa: S101 — validated above
    if args.verb == "apply" and not args.dry_run:
        change = changes.apply(topology)
        print("no change" if change.empty else "applied in one cibadmin --patch")
    else:
        change, _ = changes.compute(topology, live_file=getattr(args, "cib", None))
        if change.empty:
            print("no change")
        else:
            print(change.patch, end="")
    for line in change.transition:
        print(f"  would {line}" if args.verb != "apply" or args.dry_run else f"  {line}")
    return 0


def _topology_simulate(args: argparse.Namespace, topology: object) -> int:
    import json

    from .topology.model import Topology
    from .topology.simulate import as_json, what_if

    assert isinstance(topology, Topology)  # noqa: S101 — validated above
    if not (args.fail_node or args.fail_op or args.ticket):
        print(
            "hakit: say what fails: --fail-node NODE, --fail-op RESOURCE:OP:NODE or "
            "--ticket revoke:TICKET",
            file=sys.stderr,
        )
        return 2
    try:
        placed, reaction = what_if(
            topology,
            fail_node=args.fail_node,
            fail_op=args.fail_op,
            tickets=args.ticket,
            cib_file=args.cib,
        )
    except ValueError as error:
        print(f"hakit: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(as_json(placed, reaction), indent=2))
        return 0
    print("before:" if placed else "before: (nothing to do)")
    for action in placed:
        print(f"  {action}")
    events = [f"node {args.fail_node} fails"] if args.fail_node else []
    events += [f"{args.fail_op} fails"] if args.fail_op else []
    events += [f"ticket {t.replace(':', ' ', 1)}" for t in args.ticket or []]
    failure = " and ".join(events)
    print(f"when {failure}:" if reaction else f"when {failure}: nothing changes")
    for action in reaction:
        print(f"  {action}")
    return 0


def _topology_import(args: argparse.Namespace) -> int:
    from hakit.ocf import cluster

    from .topology.importer import import_cib, to_yaml

    try:
        xml = Path(args.cib).read_text() if args.cib else cluster.cib_text(timeout=30)
        imported = import_cib(xml)
    except (OSError, ValueError, cluster.ClusterCommandError) as error:
        print(f"hakit: cannot import: {error}", file=sys.stderr)
        return 1
    for note in imported.skipped:
        print(f"hakit: skipped {note}", file=sys.stderr)
    text = to_yaml(imported.topology)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _in_lab(args: argparse.Namespace) -> int:
    """Run this topology command here, its cluster programs inside a lab node (where the
    cluster answers): the same code path, with the node's runner."""
    import tempfile

    from hakit.lab import cib
    from hakit.lab.lab import Lab

    lab = Lab()
    lab.check_node(args.lab)
    cib.node_sees(tempfile.gettempdir())  # crm_diff and crm_simulate read files there
    with lab.on(args.lab):
        return _topology(argparse.Namespace(**{**vars(args), "lab": None}))


TOPOLOGY_VERBS = (
    ("validate", "check everything, report every problem with file:line:col"),
    ("render", "print the CIB XML (validated first)"),
    ("diff", "the patch against the live CIB, and what would start/stop"),
    ("apply", "push the change in one cibadmin --patch (idempotent)"),
    ("export", "the equivalent pcs (default) or crmsh commands"),
    ("simulate", "what-if: a node or an operation fails (crm_simulate)"),
)


def _add_topology(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    topology = commands.add_parser("topology", help="YAML topology → Pacemaker CIB")
    verbs = topology.add_subparsers(dest="verb", required=True)
    for verb, text in TOPOLOGY_VERBS:
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument("file")
        sub.add_argument(
            "--no-agents",
            action="store_true",
            help="skip the agent metadata checks (agents not installed here)",
        )
        if verb == "render":
            sub.add_argument("-o", "--output", help="write to this file")
        if verb in ("diff", "apply"):
            sub.add_argument("--lab", metavar="NODE", help="run inside this lab node")
        if verb == "diff":
            sub.add_argument("--cib", help="compare with this CIB file instead of the live one")
        if verb == "apply":
            sub.add_argument(
                "--dry-run",
                action="store_true",
                help="show the change and its effect, change nothing",
            )
        if verb == "simulate":
            sub.add_argument("--fail-node", metavar="NODE")
            sub.add_argument("--fail-op", metavar="RESOURCE:OP:NODE")
            sub.add_argument(
                "--ticket",
                action="append",
                metavar="ACTION:TICKET",
                help="grant, revoke, standby or activate (repeatable)",
            )
            sub.add_argument("--cib", help="start from this CIB (with status), e.g. a live one")
            sub.add_argument("--json", action="store_true", help="machine-readable")
        if verb == "export":
            flavour = sub.add_mutually_exclusive_group()
            flavour.add_argument("--pcs", action="store_true", help="commands for pcs -f cib.xml")
            flavour.add_argument("--crm", action="store_true", help="crm configure syntax")
    verbs.add_parser("schema", help="the topology's JSON Schema")
    verbs.add_parser("reference", help="the topology reference (markdown)")
    importer = verbs.add_parser("import", help="a CIB (live by default) as topology YAML")
    importer.add_argument("--cib", help="read this CIB file instead of the live CIB")
    importer.add_argument("-o", "--output", help="write to this file")
    topology.set_defaults(func=_topology)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hakit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    agents = commands.add_parser("agents", help="hakit's OCF resource agents")
    verbs = agents.add_subparsers(dest="verb", required=True)
    install = verbs.add_parser("install", help="install as ocf:hakit:* (needs root)")
    install.add_argument(
        "--python",
        default="/usr/bin/python3",
        help="interpreter for the agents (default: %(default)s)",
    )
    install.add_argument("--ocf-root", help="default: $OCF_ROOT or /usr/lib/ocf")
    install.set_defaults(func=_agents_install)
    uninstall = verbs.add_parser("uninstall", help="remove ocf:hakit:*")
    uninstall.add_argument("--ocf-root", help="default: $OCF_ROOT or /usr/lib/ocf")
    uninstall.set_defaults(func=_agents_uninstall)
    verbs.add_parser("list", help="list the agents").set_defaults(func=_agents_list)
    _add_lab(commands)
    _add_topology(commands)
    from hakit.lab.drill.cli import add_parser as add_drill
    from hakit.resource_agents.health.cli import add_parser as add_health

    add_health(commands)
    add_drill(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from hakit.lab.errors import LabError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LabError as error:
        print(f"hakit: {error}", file=sys.stderr)
        return 1
    except PermissionError as error:
        print(f"hakit: {error.strerror}: {error.filename} (run as root?)", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"hakit: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # never a traceback on the user's terminal
        return _crashed(error)


def _crashed(error: Exception) -> int:
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix="hakit-crash-", suffix=".log", delete=False
    ) as report:
        traceback.print_exception(error, file=report)
    print(
        f"hakit: internal error: {type(error).__name__}: {error} (details: {report.name}; "
        "please report it)",
        file=sys.stderr,
    )
    return 70


if __name__ == "__main__":
    sys.exit(main())
