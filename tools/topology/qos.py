"""The topology's `qos:` section: one spec per tier, turned into what each service
enforces in its own units, and refused (with the reason) where a back-end cannot
enforce it. Also the checks that make Pacemaker's utilization count: a failover never
overloads a node only when `placement-strategy` is set and every node has a capacity.

    nova     flavor extra specs: hw:cpu_policy, quota:cpu_period/cpu_quota (per vCPU),
             quota:disk_total_iops_sec/disk_total_bytes_sec (bytes/s),
             quota:vif_inbound_average/vif_outbound_average (kilobytes/s)
    cinder   qos-specs hakit-<tier> (consumer front-end or back-end): total_iops_sec,
             total_bytes_sec (bytes/s), the back-end's floor key; volume type hakit-<tier>
    neutron  QoS policy hakit-<tier>: bandwidth_limit each way (max_kbps, kilobits/s;
             max_burst_kbps 80% of it, neutron's advice for TCP), minimum_bandwidth egress
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from hakit.tools.topology import model
from hakit.tools.topology.conventions import effective
from hakit.tools.topology.load import Loaded, Path_
from hakit.tools.topology.problems import Found, name_problem

PREFIX = "hakit-"
#: bits per second in one of each unit (decimal prefixes, as neutron and tc use them)
UNITS = {
    "bit/s": 1,
    "kbit/s": 10**3,
    "Mbit/s": 10**6,
    "Gbit/s": 10**9,
    "B/s": 8,
    "kB/s": 8 * 10**3,
    "MB/s": 8 * 10**6,
    "GB/s": 8 * 10**9,
}
RATE = re.compile(r"\s*(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[kMG]?(?:bit|B)/s)\s*")
RATE_HINT = f"a number and a unit, e.g. 100Mbit/s or 200MB/s ({', '.join(UNITS)})"
CPU_PERIOD = 100_000  # microseconds: quota:cpu_quota is a share of it, per vCPU


def bits_per_second(text: str) -> int | None:
    """A rate in bit/s (whole), None when it is not one or not whole."""
    match = RATE.fullmatch(text)
    if match is None:
        return None
    try:
        bits = Decimal(match.group("number")) * UNITS[match.group("unit")]
    except InvalidOperation:
        return None
    return int(bits) if bits == bits.to_integral_value() else None


def flavor_extra_specs(tier: model.QoSTier) -> dict[str, str]:
    """nova's flavor extra specs for the tier (what libvirt enforces on the host)."""
    specs: dict[str, str] = {}
    if tier.compute.guaranteed_percent == 100:
        specs["hw:cpu_policy"] = "dedicated"
    if tier.compute.maximum_percent < 100:
        specs["quota:cpu_period"] = str(CPU_PERIOD)
        specs["quota:cpu_quota"] = str(CPU_PERIOD * tier.compute.maximum_percent // 100)
    if tier.disk.maximum_iops:
        specs["quota:disk_total_iops_sec"] = str(tier.disk.maximum_iops)
    if (disk := bits_per_second(tier.disk.maximum_bandwidth)) is not None:
        specs["quota:disk_total_bytes_sec"] = str(disk // 8)
    if (network := bits_per_second(tier.network.maximum_bandwidth)) is not None:
        for direction in ("inbound", "outbound"):
            specs[f"quota:vif_{direction}_average"] = str(network // 8000)
    return specs


def cinder_qos_specs(tier: model.QoSTier, enforcement: model.Enforcement) -> dict[str, object]:
    """cinder's qos-specs for the tier's volume type (both named hakit-<tier>)."""
    specs: dict[str, str] = {}
    if tier.disk.maximum_iops:
        specs["total_iops_sec"] = str(tier.disk.maximum_iops)
    if (disk := bits_per_second(tier.disk.maximum_bandwidth)) is not None:
        specs["total_bytes_sec"] = str(disk // 8)
    if tier.disk.guaranteed_iops and enforcement.volume_minimum_key:
        specs[enforcement.volume_minimum_key] = str(tier.disk.guaranteed_iops)
    return {
        "name": PREFIX + tier.name,
        "consumer": enforcement.volumes,
        "specs": specs,
        "volume_type": PREFIX + tier.name,
    }


def neutron_policy(tier: model.QoSTier) -> dict[str, object]:
    """neutron's QoS policy for the tier: its rules in kilobits/s."""
    rules: list[dict[str, object]] = []
    if (cap := bits_per_second(tier.network.maximum_bandwidth)) is not None:
        kbps = cap // 1000
        rules += [
            {
                "type": "bandwidth_limit",
                "direction": direction,
                "max_kbps": kbps,
                "max_burst_kbps": kbps * 8 // 10,
            }
            for direction in ("egress", "ingress")
        ]
    if (floor := bits_per_second(tier.network.guaranteed_bandwidth)) is not None:
        rules.append(
            {"type": "minimum_bandwidth", "direction": "egress", "min_kbps": floor // 1000}
        )
    return {"name": PREFIX + tier.name, "rules": rules}


def plan(section: model.QoS) -> list[dict[str, object]]:
    """Each tier as the three services take it."""
    return [
        {
            "tier": tier.name,
            "nova": {"flavors": tier.flavors, "flavor_extra_specs": flavor_extra_specs(tier)},
            "cinder": cinder_qos_specs(tier, section.enforcement),
            "neutron": neutron_policy(tier),
        }
        for tier in section.tiers
    ]


# --- checks ------------------------------------------------------------------------------


def section_problems(section: model.QoS) -> list[Found]:
    """Every problem of the section: names, numbers, units, and what the back-ends
    cannot enforce (`enforcement`)."""
    found: list[Found] = []
    for i, tier in enumerate(section.tiers):
        where: Path_ = ("qos", "tiers", i)
        earlier = [item.name for item in section.tiers[:i]]
        if named := name_problem(tier.name, earlier, (*where, "name"), "tier"):
            found.append(named)
        found += _compute(tier.compute, (*where, "compute"), section.enforcement)
        found += _disk(tier.disk, (*where, "disk"), section.enforcement)
        found += _network(tier.network, (*where, "network"), section.enforcement)
        for j, flavor in enumerate(tier.flavors):
            other = next((t.name for t in section.tiers[:i] if flavor in t.flavors), None)
            if other is not None or flavor in tier.flavors[:j]:
                what = f"flavor {flavor!r} is in tier {other or tier.name} already"
                found.append(((*where, "flavors", j), what, "give each flavor one tier"))
            elif not flavor.strip():
                found.append(((*where, "flavors", j), "an empty flavor name", "name a flavor"))
    return found


def _compute(
    compute: model.ComputeQoS, where: Path_, enforcement: model.Enforcement
) -> list[Found]:
    found: list[Found] = []
    if compute.guaranteed_percent not in (0, 100):
        found.append(
            (
                (*where, "guaranteed_percent"),
                f"{compute.guaranteed_percent}%: nova guarantees CPU only as a dedicated core "
                "per vCPU (hw:cpu_policy=dedicated); a share in between would be a weight "
                "(quota:cpu_shares), not a guarantee",
                "0 (none) or 100 (dedicated)",
            )
        )
    elif compute.guaranteed_percent == 100 and not enforcement.dedicated_cpus:
        found.append(
            (
                (*where, "guaranteed_percent"),
                "a dedicated core per vCPU, but the computes have no dedicated CPUs",
                "set [compute] cpu_dedicated_set on the computes and "
                "qos.enforcement.dedicated_cpus: true, or ask for 0",
            )
        )
    if not 1 <= compute.maximum_percent <= 100:
        found.append(
            ((*where, "maximum_percent"), f"{compute.maximum_percent}% is not a cap", "1 to 100")
        )
    elif compute.guaranteed_percent > compute.maximum_percent:
        found.append(
            (
                (*where, "maximum_percent"),
                f"below the guarantee ({compute.guaranteed_percent}%)",
                "a cap at least the guarantee",
            )
        )
    return found


def _disk(disk: model.DiskQoS, where: Path_, enforcement: model.Enforcement) -> list[Found]:
    found: list[Found] = []
    for name in ("guaranteed_iops", "maximum_iops"):
        if getattr(disk, name) < 0:
            found.append(((*where, name), f"{getattr(disk, name)} is negative", "0 or more"))
    found += _rate(disk.maximum_bandwidth, (*where, "maximum_bandwidth"), 8, "1B/s (cinder, nova)")
    if disk.maximum_iops and disk.guaranteed_iops > disk.maximum_iops:
        found.append(
            (
                (*where, "guaranteed_iops"),
                f"above the cap ({disk.maximum_iops} IOPS)",
                "a floor at most the cap",
            )
        )
    if disk.guaranteed_iops > 0 and not (
        enforcement.volumes == "back-end" and enforcement.volume_minimum_key
    ):
        found.append(
            (
                (*where, "guaranteed_iops"),
                "an IOPS floor, but "
                + (
                    "front-end QoS (libvirt on the compute) only caps"
                    if enforcement.volumes == "front-end"
                    else "the back-end's floor key is not known"
                ),
                "a back-end that guarantees IOPS: qos.enforcement.volumes: back-end and its "
                "volume_minimum_key (e.g. minIOPS); or 0",
            )
        )
    return found


def _network(
    network: model.NetworkQoS, where: Path_, enforcement: model.Enforcement
) -> list[Found]:
    found = _rate(network.maximum_bandwidth, (*where, "maximum_bandwidth"), 8000, "1kB/s (nova)")
    found += _rate(network.guaranteed_bandwidth, (*where, "guaranteed_bandwidth"), 1000, "1kbit/s")
    floor = bits_per_second(network.guaranteed_bandwidth)
    cap = bits_per_second(network.maximum_bandwidth)
    if floor is not None and cap is not None and floor > cap:
        found.append(
            (
                (*where, "guaranteed_bandwidth"),
                f"above the cap ({network.maximum_bandwidth})",
                "a floor at most the cap",
            )
        )
    if floor and not enforcement.network_minimum:
        found.append(
            (
                (*where, "guaranteed_bandwidth"),
                "a bandwidth floor, but neutron's minimum-bandwidth rules are not enforced here",
                "ports on placement-aware ML2/OVS or SR-IOV agents (resource_provider_bandwidths)"
                " and qos.enforcement.network_minimum: true; or leave it empty",
            )
        )
    return found


def _rate(text: str, where: Path_, smallest: int, unit: str) -> list[Found]:
    """A rate that parses, is whole in bit/s, and is a whole multiple of `smallest` bit/s
    (the coarsest unit a service takes it in)."""
    if not text:
        return []
    bits = bits_per_second(text)
    if bits is None:
        return [(where, f"{text!r} is not a rate in whole bits per second", RATE_HINT)]
    if bits == 0 or bits % smallest:
        return [(where, f"{text!r} is not a whole number of {unit}", f"a multiple of {unit}")]
    return []


def check(loaded: Loaded, topology: model.Topology) -> None:
    """The section's problems, and utilization Pacemaker would ignore or misread."""
    for path, message, hint in section_problems(topology.qos):
        loaded.problem(path, message, hint)
    _check_utilization(loaded, topology)


def _check_utilization(loaded: Loaded, topology: model.Topology) -> None:
    """Utilization only counts with a placement-strategy; a node without a capacity that
    resources use then takes none of them (Pacemaker reads a missing capacity as 0)."""
    used = {name for r in topology.resources for name in effective(r, topology).utilization}
    strategy = str(topology.cluster.properties.get("placement-strategy", "default"))
    if used and strategy == "default":
        loaded.warn(
            ("cluster", "properties"),
            f"resources use {', '.join(sorted(used))}, but placement-strategy is default: "
            "Pacemaker ignores utilization, and a failover may overload a node",
            "placement-strategy: balanced (or utilization, minimal)",
        )
        return
    if not used or strategy == "default":
        return
    nodes: list[tuple[Path_, model.Node | model.Remote]] = [
        (("nodes", i), node) for i, node in enumerate(topology.nodes)
    ]
    nodes += [(("remotes", "nodes", i), node) for i, node in enumerate(topology.remotes.nodes)]
    for where, node in nodes:
        missing = sorted(used - set(node.utilization))
        if missing:
            loaded.warn(
                (*where, "utilization"),
                f"no capacity for {', '.join(missing)}: with placement-strategy {strategy}, "
                "nothing that uses it can run on this node",
                "give the node its capacity (e.g. cpu: 8)",
            )
