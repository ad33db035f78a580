"""The `hakit` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _agents_install(args: argparse.Namespace) -> int:
    from .install_agents import install

    report = install(python=args.python, root=Path(args.ocf_root) if args.ocf_root else None)
    for path in report.written:
        print(f"wrote   {path}")
    for path in report.removed:
        print(f"removed {path}")
    print(f"{len(report.written)} written, {len(report.removed)} removed, "
          f"{report.unchanged} unchanged")  # fmt: skip
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hakit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    agents = commands.add_parser("agents", help="hakit's OCF resource agents")
    verbs = agents.add_subparsers(dest="verb", required=True)
    install = verbs.add_parser("install", help="install as ocf:hakit:* (needs root)")
    install.add_argument("--python", default="/usr/bin/python3",
                         help="interpreter for the agents (default: %(default)s)")  # fmt: skip
    install.add_argument("--ocf-root", help="default: $OCF_ROOT or /usr/lib/ocf")
    install.set_defaults(func=_agents_install)
    uninstall = verbs.add_parser("uninstall", help="remove ocf:hakit:*")
    uninstall.add_argument("--ocf-root", help="default: $OCF_ROOT or /usr/lib/ocf")
    uninstall.set_defaults(func=_agents_uninstall)
    verbs.add_parser("list", help="list the agents").set_defaults(func=_agents_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except PermissionError as error:
        print(f"hakit: {error.strerror}: {error.filename} (run as root?)", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"hakit: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
