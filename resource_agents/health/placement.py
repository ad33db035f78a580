"""Compute hosts used beyond their capacity, from placement: what a failover, a lowered
allocation ratio or placement's own claim race (docs/placement-overallocation.md) left
over-committed. Capacity is placement's, `(total - reserved) x allocation_ratio` per
resource class. PCPU beyond capacity breaks the guarantee of every server whose flavor
has dedicated cores (hw:cpu_policy=dedicated, a QoS tier's guaranteed_percent 100):
GUARANTEED_CPU_SHARED; any other class: COMPUTE_OVER_COMMITTED. Findings feed the
capacity alarms (`capacity_alarms`) like the CIB's. One list call and two calls per
provider, every `PlacementCheck.interval` seconds, beside the publisher's cycle."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hakit.resource_agents.clouds import CloudError, CloudSession
from hakit.resource_agents.health.capacity_alarms import Finding
from hakit.resource_agents.health.periodic import PeriodicReading

if TYPE_CHECKING:
    from hakit.resource_agents.health.nova import ComputeAPI

HEADERS = {"OpenStack-API-Version": "placement 1.14"}
GUARANTEED = "PCPU"  # dedicated cores: never shared, allocation ratio 1
GUARANTEED_KIND = "GUARANTEED_CPU_SHARED"
OVER_KIND = "COMPUTE_OVER_COMMITTED"


@dataclass(frozen=True)
class Usage:
    provider: str  # the provider's name: the compute host
    resource_class: str
    used: int
    capacity: int


def usages(cloud: CloudSession, endpoint: str | None = None) -> list[Usage]:
    """Every provider's usage and capacity per resource class (CloudError when placement
    cannot be asked; KeyError, TypeError or ValueError when its answer is not placement's)."""

    def get(path: str) -> dict[str, Any]:
        answer = cloud.request("placement", "GET", path, headers=HEADERS, endpoint=endpoint)
        if not isinstance(answer, dict):
            raise CloudError(f"GET {path}: not a JSON object", kind="api")
        return answer

    found = []
    for provider in get("/resource_providers")["resource_providers"]:
        uuid, name = str(provider["uuid"]), str(provider["name"])
        inventories = get(f"/resource_providers/{uuid}/inventories")["inventories"]
        used = get(f"/resource_providers/{uuid}/usages")["usages"]
        for resource_class, inventory in sorted(inventories.items()):
            total = int(inventory["total"]) - int(inventory.get("reserved", 0))
            capacity = int(total * float(inventory.get("allocation_ratio", 1.0)))
            found.append(Usage(name, resource_class, int(used.get(resource_class, 0)), capacity))
    return found


def findings(found: list[Usage]) -> list[Finding]:
    """One finding per host and kind, naming each class beyond its capacity."""
    over: dict[tuple[str, str], list[str]] = {}
    for usage in found:
        if usage.used > usage.capacity:
            kind = GUARANTEED_KIND if usage.resource_class == GUARANTEED else OVER_KIND
            words = f"{usage.resource_class} {usage.used}/{usage.capacity}"
            over.setdefault((kind, usage.provider), []).append(words)
    return [
        Finding(kind, host, f"{host} uses {', '.join(words)} (placement)")
        for (kind, host), words in sorted(over.items())
    ]


class PlacementCheck(PeriodicReading[list[Finding]]):
    """The findings of the latest reading (`PeriodicReading`: a hung placement never
    holds the health path; a reading that fails keeps the previous findings)."""

    def __init__(
        self,
        read: Callable[[], list[Usage]],
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        background: bool = True,
    ) -> None:
        super().__init__(
            lambda: findings(read()),
            [],
            "placement not checked",
            interval,
            clock,
            background=background,
        )


def check_of(nova: ComputeAPI | None) -> PlacementCheck | None:
    """With a compute API, its cloud's placement (the catalog's endpoint)."""
    return None if nova is None else PlacementCheck(lambda: usages(nova.cloud))
