"""The `hakit` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import cli_sections
from .cli_format import HakitParser, VersionAction

if TYPE_CHECKING:
    from typing import TypeAlias

    from .topology.load import Loaded

    Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def _agents_install(args: argparse.Namespace) -> int:
    from hakit.ocf import exits

    from .install_agents import InstallError, install

    try:
        root = Path(args.ocf_root) if args.ocf_root else None
        report = install(python=args.python, root=root, dry_run=args.dry_run)
    except InstallError as error:
        print(f"hakit agents install: {error}", file=sys.stderr)
        return exits.ENVIRONMENT
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    would = "would " if args.dry_run else ""
    for path in report.written:
        print(f"{would}write  {path}" if would else f"wrote   {path}")
    for path in report.removed:
        print(f"{would}remove {path}" if would else f"removed {path}")
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

    found = [(agent_type, import_module(AGENTS[agent_type]).AGENT) for agent_type in sorted(AGENTS)]
    if args.json:
        from .cli_json import dumps

        agents = [
            {"name": f"ocf:hakit:{agent_type}", "type": agent_type, "shortdesc": agent.shortdesc}
            for agent_type, agent in found
        ]
        print(dumps({"agents": agents}))
        return 0
    for agent_type, agent in found:
        print(f"ocf:hakit:{agent_type:<20} {agent.shortdesc}")
    return 0


def _topology(args: argparse.Namespace) -> int:
    from .topology.render import render, to_text
    from .topology.validate import validate

    if getattr(args, "lab", None):
        return _in_lab(args)
    unloaded = {
        "import": _topology_import,
        "reference": _topology_reference,
        "schema": _topology_schema,
        "corosync-conf": cli_sections.topology_corosync,
        "correlation-rules": cli_sections.topology_correlation,
        "qos": cli_sections.topology_qos,
    }
    if args.verb in unloaded:
        return unloaded[args.verb](args)
    loaded = validate(Path(args.file), agents=not args.no_agents)
    if getattr(args, "json", False) and args.verb in ("validate", "diff"):
        return _topology_json(args, loaded)
    if not _report(args, loaded) or loaded.topology is None:
        return 1
    if args.verb == "validate":
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


def _topology_reference(args: argparse.Namespace) -> int:
    from .topology.reference import markdown

    print(markdown(), end="")
    return 0


def _topology_schema(args: argparse.Namespace) -> int:
    import json

    from .topology.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _report(args: argparse.Namespace, loaded: Loaded) -> bool:
    """Print every problem and every check not run; whether the topology is valid."""
    from .topology.render import VALIDATE_WITH

    for problem in loaded.problems:
        print(problem, file=sys.stderr)
    for warning in loaded.warnings:  # allowed, likely unwise: the file stays valid
        print(f"warning: {warning}", file=sys.stderr)
    for skipped in loaded.skipped if args.verb == "validate" or loaded.problems else ():
        print(f"{args.file}: not checked: {skipped}", file=sys.stderr)
    if loaded.problems or loaded.topology is None:
        print(f"{args.file}: {len(loaded.problems)} problem(s)", file=sys.stderr)
        return False
    if args.verb == "validate":
        agents = "" if args.no_agents else "agents, "
        print(f"{args.file}: valid (types, names, values, {agents}{VALIDATE_WITH}.rng, crm_verify)")
    return True


def _topology_json(args: argparse.Namespace, loaded: Loaded) -> int:
    """validate and diff --json: one JSON document on stdout (tools/cli_json.py says its
    shape), the same exit codes as the text."""
    from . import cli_json
    from .topology import apply as changes

    valid = not loaded.problems and loaded.topology is not None
    if args.verb == "validate":
        print(cli_json.dumps(cli_json.validation(args.file, loaded)))
        return 0 if valid else 1
    change = None
    if valid and loaded.topology is not None:
        keep = not args.replace_unexpressed
        change = changes.compute(loaded.topology, live_file=args.cib, keep_unexpressed=keep)
    print(cli_json.dumps(cli_json.diff(args.file, loaded, change)))
    return 0 if change is not None and change.empty else 1


def _topology_export(args: argparse.Namespace, topology: object) -> int:
    from .topology.export import ExportError, pcs_script, pcs_unexported
    from .topology.export_crm import crm_script
    from .topology.model import Topology

    assert isinstance(topology, Topology)  # noqa: S101 — validated above
    try:
        script = crm_script(topology) if args.crm else pcs_script(topology)
    except ExportError as error:
        print(f"hakit: not exported: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(script)
    dropped = [] if args.crm else pcs_unexported(topology)
    for note in dropped:
        print(f"hakit: not exported: {note}", file=sys.stderr)
    return 1 if dropped else 0


def _topology_change(args: argparse.Namespace, topology: object) -> int:
    """diff: 0 when the cluster already matches, 1 when it differs (crm_diff's codes);
    apply: 0 once applied."""
    from hakit.ocf import exits

    from .topology import apply as changes
    from .topology.model import Topology

    assert isinstance(topology, Topology)  # noqa: S101 — validated above
    applying = args.verb == "apply" and not args.dry_run
    keep = not args.replace_unexpressed
    if applying:
        exits.confirm(args, f"apply {args.file} to the live cluster")
        change = changes.apply(topology, keep_unexpressed=keep)
    else:
        change = changes.compute(
            topology, live_file=getattr(args, "cib", None), keep_unexpressed=keep
        )
    if getattr(args, "patch", False) and change.patch is not None:
        print(change.patch, end="")
    else:
        print(changes.report(change, applied=applying))
    if change.empty:
        return 0
    return 1 if args.verb == "diff" else 0


def _topology_simulate(args: argparse.Namespace, topology: object) -> int:
    import json
    import tempfile

    from .topology.capacity import lines, report
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
    with tempfile.TemporaryDirectory(prefix="hakit-simulate-") as kept:
        try:
            placed, reaction = what_if(
                topology,
                fail_node=args.fail_node,
                fail_op=args.fail_op,
                tickets=args.ticket,
                cib_file=args.cib,
                keep=Path(kept),
            )
        except ValueError as error:
            print(f"hakit: {error}", file=sys.stderr)
            return 2
        capacity = report(Path(kept, "placed.xml"), Path(kept, "after.xml"))
    if args.json:
        print(json.dumps({**as_json(placed, reaction), "capacity": capacity}, indent=2))
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
    for line in lines(capacity) if capacity else []:
        print(line)
    return 0


def _topology_import(args: argparse.Namespace) -> int:
    from hakit.ocf import cluster, exits

    from .topology.importer import import_cib, to_yaml

    xml = Path(args.cib).read_text(encoding="utf-8") if args.cib else cluster.cib_text(timeout=30)
    try:
        imported = import_cib(xml)
    except ValueError as error:
        raise exits.UsageError(f"cannot import {args.cib or 'the live CIB'}: {error}") from None
    for note in imported.skipped:
        print(f"hakit: not imported: {note}", file=sys.stderr)
    if imported.skipped and not args.partial:
        print(
            f"hakit: nothing written: the topology would not say the {len(imported.skipped)} "
            "object(s) above (--partial writes it anyway; diff and apply keep them)",
            file=sys.stderr,
        )
        return 1
    text = to_yaml(imported.topology)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 1 if imported.skipped else 0


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


JSON_HELP = "one JSON document on stdout (its shape: README, The command line)"

TOPOLOGY_VERBS = (
    ("validate", "check everything, report every problem with file:line:col"),
    ("render", "print the CIB XML (validated first)"),
    ("diff", "what would change in the live CIB, and what would start/stop (exit 1 if any)"),
    ("apply", "push the change in one cibadmin --patch (idempotent)"),
    ("export", "the equivalent pcs (default) or crmsh commands"),
    ("simulate", "what-if: a node or an operation fails (crm_simulate)"),
)


def _add_topology(commands: Commands, *, lab: bool = True) -> None:
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
        if verb == "validate":
            sub.add_argument("--json", action="store_true", help=JSON_HELP)
        if verb in ("diff", "apply") and lab:
            sub.add_argument("--lab", metavar="NODE", help="run inside this lab node")
        if verb in ("diff", "apply"):
            sub.add_argument(
                "--replace-unexpressed",
                action="store_true",
                help="also delete or rewrite objects a topology cannot express "
                "(by default they are kept and listed)",
            )
        if verb == "diff":
            sub.add_argument("--cib", help="compare with this CIB file instead of the live one")
            output = sub.add_mutually_exclusive_group()
            output.add_argument("--patch", action="store_true", help="print crm_diff's XML patch")
            output.add_argument("--json", action="store_true", help=JSON_HELP)
        if verb == "apply":
            from hakit.ocf import exits

            exits.add_confirmation(sub)
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
    corosync = verbs.add_parser(
        "corosync-conf",
        help="print corosync.conf for the topology's nodes (knet, cluster.corosync timing)",
    )
    corosync.add_argument("file")
    corosync.add_argument(
        "--address",
        action="append",
        default=[],
        metavar="NODE=ADDR[,ADDR...]",
        help="a node's link addresses, one per knet link (repeat for every node)",
    )
    corosync.add_argument("-o", "--output", help="write to this file")
    rules = verbs.add_parser(
        "correlation-rules", help="print the correlation section as the publisher's JSON rules"
    )
    rules.add_argument("file")
    qos = verbs.add_parser(
        "qos", help="print the QoS tiers as nova, cinder and neutron take them (--json)"
    )
    qos.add_argument("file")
    qos.add_argument("--json", action="store_true", help=JSON_HELP)
    cli_sections.add_qos_options(qos)
    verbs.add_parser("schema", help="the topology's JSON Schema")
    verbs.add_parser("reference", help="the topology reference (markdown)")
    importer = verbs.add_parser("import", help="a CIB (live by default) as topology YAML")
    importer.add_argument("--cib", help="read this CIB file instead of the live CIB")
    importer.add_argument("-o", "--output", help="write to this file")
    importer.add_argument(
        "--partial",
        action="store_true",
        help="write the YAML even if it cannot say every object (those are listed; exit 1)",
    )
    topology.set_defaults(func=_topology)


def _lab_parsers() -> tuple[Callable[[Commands], None], Callable[[Commands], None]] | None:
    """`add_parser` of `hakit lab` and of `hakit drill`; None when the hakit.lab package is
    not installed (it may ship apart from the operator's tools)."""
    try:
        from hakit.lab.cli import add_parser as add_lab
        from hakit.lab.drill.cli import add_parser as add_drill
    except ModuleNotFoundError as error:
        name = error.name or ""
        if name == "hakit.lab" or name.startswith("hakit.lab."):
            return None
        raise
    return add_lab, add_drill


def _completion(args: argparse.Namespace) -> int:
    from .completion import bash

    sys.stdout.write(bash(build_parser()))
    return 0


def _man(args: argparse.Namespace) -> int:
    from .manpage import page

    sys.stdout.write(page(build_parser()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = HakitParser(  # its sub-parsers are HakitParsers
        prog="hakit",
        description="High availability for the OpenStack control plane on Pacemaker/Corosync.",
        epilog="`hakit COMMAND --help` for each command; `hakit man` for all of them.",
    )
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    agents = commands.add_parser("agents", help="hakit's OCF resource agents")
    verbs = agents.add_subparsers(dest="verb", required=True)
    install = verbs.add_parser("install", help="install as ocf:hakit:* (needs root)")
    install.add_argument(
        "--python",
        default="/usr/bin/python3",
        help="interpreter for the agents (default: %(default)s)",
    )
    install.add_argument("--ocf-root", help="default: $OCF_ROOT or /usr/lib/ocf")
    install.add_argument(
        "--dry-run", action="store_true", help="count what would change, write nothing"
    )
    install.set_defaults(func=_agents_install)
    uninstall = verbs.add_parser("uninstall", help="remove ocf:hakit:*")
    uninstall.add_argument("--ocf-root", help="default: $OCF_ROOT or /usr/lib/ocf")
    uninstall.set_defaults(func=_agents_uninstall)
    listing = verbs.add_parser("list", help="list the agents")
    listing.add_argument("--json", action="store_true", help=JSON_HELP)
    listing.set_defaults(func=_agents_list)
    from hakit.resource_agents.health.cli import add_parser as add_health

    lab = _lab_parsers()
    if lab is not None:
        lab[0](commands)
    _add_topology(commands, lab=lab is not None)
    add_health(commands)
    if lab is not None:
        lab[1](commands)
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description="Install: hakit completion bash > /etc/bash_completion.d/hakit "
        "(or, in ~/.bashrc: source <(hakit completion bash)).",
    )
    completion.add_argument("shell", choices=("bash",))
    completion.set_defaults(func=_completion)
    man = commands.add_parser("man", help="print the hakit(1) man page (roff)")
    man.set_defaults(func=_man)
    return parser


def main(argv: list[str] | None = None) -> int:
    from hakit.ocf import exits

    def parse(_: argparse.Namespace) -> int:
        args = build_parser().parse_args(argv)
        return exits.run(args.func, args, "hakit")

    return exits.run(parse, argparse.Namespace(), "hakit")  # a parser that cannot be built


if __name__ == "__main__":
    sys.exit(main())
