"""`hakit topology` verbs that print one section's output: corosync.conf, the publisher's
correlation rules, and the QoS tiers as nova, cinder and neutron take them (checked with
the rest of the file, not the CIB)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


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


def topology_qos(args: argparse.Namespace) -> int:
    """The `qos` section's tiers as nova flavor extra specs, cinder qos-specs and volume
    types, and neutron QoS policies (a tier a back-end cannot enforce is refused)."""
    from hakit.ocf import exits

    from .cli import _report
    from .cli_json import dumps
    from .topology.qos import plan
    from .topology.validate import validate

    loaded = validate(Path(args.file), agents=False, pacemaker=False)
    loaded.skipped.clear()  # the tiers need neither agents nor the CIB
    if not _report(args, loaded) or loaded.topology is None:
        return 1
    tiers = plan(loaded.topology.qos)
    if not tiers:
        print(f"{args.file}: no qos tiers", file=sys.stderr)
        return exits.USAGE
    if args.json:
        print(dumps({"tiers": tiers}))
        return 0
    for tier in tiers:
        print(f"tier {tier['tier']}")
        for line in qos_lines(tier):
            print(f"  {line}")
    return 0


def qos_lines(tier: dict[str, Any]) -> list[str]:
    """One tier of `qos.plan` as text: a line per service."""

    def pairs(values: dict[str, object]) -> str:
        return " ".join(f"{k}={v}" for k, v in values.items() if k not in ("type", "direction"))

    cinder, neutron = tier["cinder"], tier["neutron"]
    rules = [f"{r['type']} {r['direction']} {pairs(r)}" for r in neutron["rules"]]
    return [
        f"nova flavor extra specs: {pairs(tier['nova']['flavor_extra_specs']) or '(none)'}",
        f"cinder qos-specs {cinder['name']} ({cinder['consumer']}): "
        f"{pairs(cinder['specs']) or '(none)'}; volume type {cinder['volume_type']}",
        f"neutron QoS policy {neutron['name']}: {'; '.join(rules) or '(no rules)'}",
    ]
