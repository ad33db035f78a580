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

    if args.apply and not args.cloud:
        print("hakit topology qos: --apply needs --cloud", file=sys.stderr)
        return exits.USAGE
    loaded = validate(Path(args.file), agents=False, pacemaker=False)
    loaded.skipped.clear()  # the tiers need neither agents nor the CIB
    if not _report(args, loaded) or loaded.topology is None:
        return 1
    tiers = plan(loaded.topology.qos)
    if not tiers:
        print(f"{args.file}: no qos tiers", file=sys.stderr)
        return exits.USAGE
    if args.cloud:
        return _qos_apply(args, loaded.topology.qos)
    if args.json:
        print(dumps({"tiers": tiers}))
        return 0
    for tier in tiers:
        print(f"tier {tier['tier']}")
        for line in qos_lines(tier):
            print(f"  {line}")
    return 0


def add_qos_options(qos: argparse.ArgumentParser) -> None:
    from hakit.resource_agents.clouds import DEFAULT_CLOUDS_YAML

    qos.add_argument(
        "--cloud", metavar="NAME", help="show what this cloud lacks (exit 1 when it differs)"
    )
    qos.add_argument("--clouds-yaml", metavar="FILE", default=DEFAULT_CLOUDS_YAML)
    qos.add_argument("--apply", action="store_true", help="with --cloud: write the difference")


#: microversions: nova's extra specs as they are; cinder's qos_specs_id in volume types
QOS_HEADERS = {
    "compute": {"OpenStack-API-Version": "compute 2.61"},
    "volumev3": {"OpenStack-API-Version": "volume 3.24"},
}


def _qos_apply(args: argparse.Namespace, section: Any) -> int:
    """The cloud's difference from the tiers (flavors, qos-specs, volume types), written
    with --apply and read again: nothing may be left."""
    from hakit.resource_agents.clouds import CloudError, CloudSession

    from .topology.qos_apply import QoSApplyError, apply, changes

    cloud = CloudSession(args.clouds_yaml, args.cloud, timeout=30)

    def call(service: str, method: str, path: str, body: object) -> Any:
        return cloud.request(service, method, path, body=body, headers=QOS_HEADERS[service])

    try:
        found = changes(section, call)
        for change in found:
            print("\n".join(change.lines()))
        if not found:
            print(f"{args.cloud}: nova and cinder have the qos section")
        elif args.apply:
            apply(found, call)
            left = changes(section, call)
            if left:
                print(f"{args.cloud}: still different after applying", file=sys.stderr)
                return 1
            print(f"{args.cloud}: applied ({len(found)} objects)")
    except (CloudError, QoSApplyError) as error:
        print(f"hakit topology qos: {error}", file=sys.stderr)
        return 1
    print("neutron QoS policies are not applied (see `hakit topology qos FILE`)")
    return 0 if args.apply or not found else 1


def qos_lines(tier: dict[str, Any]) -> list[str]:
    """One tier of `qos.plan` as text: a line per service."""

    def pairs(values: dict[str, object]) -> str:
        return " ".join(f"{k}={v}" for k, v in values.items() if k not in ("type", "direction"))

    cinder, neutron = tier["cinder"], tier["neutron"]
    rules = [f"{r['type']} {r['direction']} {pairs(r)}" for r in neutron["rules"]]
    return [
        f"nova flavor extra specs: {pairs(tier['nova']['flavor_extra_specs']) or '(none)'}"
        f"; flavors {', '.join(tier['nova']['flavors']) or '(none named)'}",
        f"cinder qos-specs {cinder['name']} ({cinder['consumer']}): "
        f"{pairs(cinder['specs']) or '(none)'}; volume type {cinder['volume_type']}",
        f"neutron QoS policy {neutron['name']}: {'; '.join(rules) or '(no rules)'}",
    ]
