"""`hakit lab`: bring the lab up and down, inject faults, run the mini cloud and the demo."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from hakit.ocf import exits

if TYPE_CHECKING:
    from collections.abc import Callable

    from hakit.lab.lab import Lab


def _lab(args: argparse.Namespace) -> int:
    import os

    from hakit.lab.errors import LabError
    from hakit.lab.lab import Lab

    if os.geteuid() != 0:
        raise LabError("the lab needs root (namespaces, links, mounts); run it as root")
    if args.verb in FAULTS or (args.verb == "down" and args.purge):
        exits.confirm(args, FAULTS.get(args.verb, "delete every lab node's state and logs"))
    return int(LAB_VERBS[args.verb](Lab(), args) or 0)


#: verbs that hurt a node, and what the confirmation says
FAULTS = {
    "cut": "cut a lab node's power",
    "isolate": "cut a lab node off the network",
    "kill": "SIGKILL a process on a lab node",
}


def _lab_up(lab: Lab, args: argparse.Namespace) -> None:
    timings = lab.up(
        nodes=args.nodes,
        profile=args.profile,
        infra=args.infra,
        bare=args.bare,
        remotes=args.remotes,
    )
    if args.bare:
        from hakit.lab import hosts

        print(
            f"bare lab up in {timings['ready']:.1f}s: {', '.join(lab.nodes + lab.remotes)} "
            "run sshd; their cluster is a deployer's (none until one configures it)"
        )
        print(hosts.how_to_reach(lab))
        return
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
    from hakit.lab import cloud, cloud_access

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
            f"compute API: http://<node address>:{cloud_access.NOVA_API_PORT}/v2.1, Keystone "
            f"http://<node address>:5000/v3; credentials: clouds {cloud_access.CLOUD}@<node> "
            f"in {cloud_access.clouds_path(lab)}"
        )


def _lab_exec(lab: Lab, args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return lab.attach(args.node, command or ["bash", "-l"])


def _lab_power_state(lab: Lab, node: str) -> int:
    """Exit 0 when `node` is on, 2 when off (the fence agent's status)."""
    lab.check_node(node)
    return 0 if lab.powered(node) else 2


def _lab_power_on(lab: Lab, args: argparse.Namespace) -> None:
    if args.after:
        lab.power_on_later(args.node, args.after)
    else:
        lab.power_on(args.node)


def _lab_demo(lab: Lab, args: argparse.Namespace) -> int:
    from hakit.lab.demo import main as demo

    return demo()


LAB_VERBS: dict[str, Callable[[Lab, argparse.Namespace], int | None]] = {
    "up": _lab_up,
    "down": _lab_down,
    "status": lambda lab, args: _lab_status(lab, args),
    "infra": _lab_infra,
    "openstack": _lab_openstack,
    "cloud": _lab_openstack,
    "exec": _lab_exec,
    "cut": lambda lab, args: lab.cut(args.node),
    "power-on": _lab_power_on,
    "power-state": lambda lab, args: _lab_power_state(lab, args.node),
    "isolate": lambda lab, args: lab.isolate(args.node),
    "heal": lambda lab, args: lab.heal(),
    "kill": lambda lab, args: print(f"killed {lab.kill(args.node, args.process)}"),
    "demo": _lab_demo,
}


def _lab_status(lab: Lab, args: argparse.Namespace) -> None:
    """The status; `--json`: {"profile", "dc", "quorate", "nodes": [{"name", "address",
    "power": "on" | "off", "online", "remote"}]} (dc null and every node off when no lab
    runs; remotes after the cluster nodes)."""
    if not args.json:
        _print_status(lab)
        return
    import json

    status = lab.status()
    nodes = status["nodes"] if isinstance(status["nodes"], dict) else {}
    document = {
        "profile": status["profile"],
        "dc": status["dc"] or None,
        "quorate": bool(status["quorate"]),
        "nodes": [
            {
                "name": name,
                "address": lab.address(name),
                "power": node["power"],
                "online": bool(node["online"]),
                "remote": name in lab.remotes,
            }
            for name, node in nodes.items()
        ],
    }
    print(json.dumps(document, indent=2))


def _print_status(lab: Lab) -> None:
    status = lab.status()
    nodes = status["nodes"]
    if not isinstance(nodes, dict):
        return
    print(
        f"{'bare lab, ' if lab.state.bare else ''}profile {status['profile']}, "
        f"DC {status['dc'] or '-'}, {'quorate' if status['quorate'] else 'no quorum'}"
    )
    for name, node in nodes.items():
        print(
            f"  {name:<9} {lab.address(name):<12} power {node['power']:<4} "
            f"{'online' if node['online'] else 'offline'}"
        )


def _remote_count(text: str) -> int:
    """argparse type: 0 to MAX_REMOTES."""
    from hakit.lab.remotes import MAX_REMOTES

    if not text.isdigit() or int(text) > MAX_REMOTES:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number from 0 to {MAX_REMOTES}")
    return int(text)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`hakit lab VERB`."""
    lab = commands.add_parser("lab", help="a real multi-node cluster on this machine")
    verbs = lab.add_subparsers(dest="verb", required=True)
    up = verbs.add_parser("up", help="create or repair the lab (idempotent)")
    up.add_argument("--nodes", type=exits.count, help="number of nodes (default 3)")
    up.add_argument("--profile", choices=["default", "fast"], help="timing profile")
    up.add_argument(
        "--remotes",
        type=_remote_count,
        help="Pacemaker Remote nodes remote1..N at 10.77.0.101+ (default 0; a running lab's "
        "number may change, which applies the base layers again; with --bare, hosts whose "
        "pacemaker-remoted a deployer starts)",
    )
    up.add_argument(
        "--infra", action="store_true", help="also the infra node (MariaDB, RabbitMQ) at 10.77.0.5"
    )
    up.add_argument(
        "--bare",
        action="store_true",
        help="nodes with sshd and no cluster, for a deployer (Ansible) on the controller "
        "namespace hakit-ctl at 10.77.0.9 (docs/lab.md)",
    )
    down = verbs.add_parser("down", help="stop the lab, delete namespaces and links")
    down.add_argument("--purge", action="store_true", help="also delete node state and logs")
    exits.add_confirmation(down, dry_run=False)
    status = verbs.add_parser("status", help="power, membership, DC")
    status.add_argument(
        "--json",
        action="store_true",
        help="one JSON document on stdout (its shape: README, The command line)",
    )
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
        ("cut", "power cut (SIGKILL everything on the node; asks first)"),
        ("power-on", "boot a node"),
        ("power-state", "exit 0 if the node is on, 2 if off"),
        ("isolate", "network partition: the node's link goes down (asks first)"),
    ):
        parser = verbs.add_parser(verb, help=text)
        parser.add_argument("node")
        if verb == "power-on":
            parser.add_argument(
                "--after",
                type=float,
                default=0.0,
                metavar="SECONDS",
                help="boot that much later and return at once (a fence agent's reboot)",
            )
        if verb in FAULTS:
            exits.add_confirmation(parser, dry_run=False)
    verbs.add_parser("heal", help="bring every node's link back up")
    verbs.add_parser("demo", help="up, a small HA layout, a power cut, fencing, recovery")
    kill = verbs.add_parser("kill", help="SIGKILL a process by name on a node (asks first)")
    exits.add_confirmation(kill, dry_run=False)
    kill.add_argument("node")
    kill.add_argument("process")
    lab.set_defaults(func=_lab)
