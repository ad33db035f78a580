"""The model of the topology's `qos:` section: one QoS spec per tier, in one set of units,
and what the cloud's back-ends can enforce. A part of `model`, which names these classes
(`model.QoS`), so that loading, the JSON Schema and the reference see one model. What a
tier becomes in nova, cinder and neutron, and its checks: `qos`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hakit.tools.topology.model_doc import doc


@dataclass
class ComputeQoS:
    """CPU time per vCPU, in percent of one host core."""

    guaranteed_percent: int = field(
        default=0, metadata=doc("0, or 100: a dedicated core per vCPU (hw:cpu_policy)")
    )
    maximum_percent: int = field(
        default=100, metadata=doc("1 to 100: a cap per vCPU (quota:cpu_quota)")
    )


@dataclass
class DiskQoS:
    """Block I/O: a server's local disks (nova) and the tier's volumes (cinder)."""

    guaranteed_iops: int = field(default=0, metadata=doc("a floor for volumes; 0: none"))
    maximum_iops: int = field(default=0, metadata=doc("a cap; 0: none"))
    maximum_bandwidth: str = field(
        default="", metadata=doc("a cap, e.g. 200MB/s or 1Gbit/s; empty: none")
    )


@dataclass
class NetworkQoS:
    """A port's bandwidth (neutron; nova's vif quotas where neutron does not apply)."""

    guaranteed_bandwidth: str = field(
        default="", metadata=doc("an egress floor, e.g. 100Mbit/s; empty: none")
    )
    maximum_bandwidth: str = field(
        default="", metadata=doc("a cap each way, e.g. 1Gbit/s; empty: none")
    )


@dataclass
class QoSTier:
    """One service level: extra specs of the nova flavors it names, a cinder volume type
    with its qos-specs and a neutron QoS policy, both named hakit-<name>."""

    name: str = field(metadata=doc("letters, digits, '.', '_' and '-'"))
    compute: ComputeQoS = field(default_factory=ComputeQoS, metadata=doc("CPU"))
    disk: DiskQoS = field(default_factory=DiskQoS, metadata=doc("block I/O"))
    network: NetworkQoS = field(default_factory=NetworkQoS, metadata=doc("bandwidth"))
    flavors: list[str] = field(
        default_factory=list,
        metadata=doc("nova flavors (names or ids) that get the tier's extra specs (--apply)"),
    )


@dataclass
class Enforcement:
    """What the cloud's back-ends enforce; hakit refuses a tier that asks for more."""

    volumes: Literal["front-end", "back-end"] = field(
        default="front-end",
        metadata=doc("cinder qos-specs consumer: front-end (libvirt, caps only) or back-end"),
    )
    volume_minimum_key: str = field(
        default="",
        metadata=doc("the back-end's qos-spec key for an IOPS floor (e.g. minIOPS); empty: none"),
    )
    network_minimum: bool = field(
        default=False,
        metadata=doc("neutron minimum-bandwidth rules work (placement-aware ML2/OVS or SR-IOV)"),
    )
    dedicated_cpus: bool = field(
        default=False, metadata=doc("the computes have [compute] cpu_dedicated_set")
    )


@dataclass
class QoS:
    """Service levels defined once. Bandwidths in bit/s, kbit/s, Mbit/s, Gbit/s or B/s,
    kB/s, MB/s, GB/s (decimal prefixes), converted to each service's own unit."""

    enforcement: Enforcement = field(
        default_factory=Enforcement, metadata=doc("what the back-ends can enforce")
    )
    tiers: list[QoSTier] = field(default_factory=list, metadata=doc("the service levels"))
