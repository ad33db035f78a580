"""`hakit topology` verbs that print one section's node-side file: corosync.conf, and the
publisher's correlation rules (checked with the rest of the file, not the CIB)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def topology_corosync(args: argparse.Namespace) -> int:
    """corosync.conf for the topology's nodes (types and names checked, not the CIB)."""
    from hakit.ocf import exits

    from .cli import _report
    from .topology.corosync import CorosyncError, for_topology
    from .topology.validate import validate

    loaded = validate(Path(args.file), agents=False, pacemaker=False)
    loaded.skipped.clear()  # agents and the CIB do not make corosync.conf
    if not _report(args, loaded) or loaded.topology is None:
        return 1
    addresses: dict[str, list[str]] = {}
    for given in args.address:
        name, sep, links = given.partition("=")
        if not sep or not name or not all(links.split(",")):
            print(f"--address {given!r}: expected NAME=ADDRESS[,ADDRESS...]", file=sys.stderr)
            return exits.USAGE
        addresses.setdefault(name, []).extend(links.split(","))
    try:
        text = for_topology(loaded.topology, addresses)
    except CorosyncError as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return exits.USAGE
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def topology_correlation(args: argparse.Namespace) -> int:
    """The `correlation` section as the publisher's JSON rules (`hakit health reports
    replay RULES` replays stored reports against them)."""
    from hakit.ocf import exits

    from .cli import _report
    from .topology.correlation import attribute
    from .topology.validate import validate

    loaded = validate(Path(args.file), agents=False, pacemaker=False)
    loaded.skipped.clear()  # the rules need neither agents nor the CIB
    if not _report(args, loaded) or loaded.topology is None:
        return 1
    rules = attribute(loaded.topology.correlation)
    if rules is None:
        print(f"{args.file}: no correlation rules", file=sys.stderr)
        return exits.USAGE
    print(rules)
    return 0
