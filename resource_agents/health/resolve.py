"""Where a VNF's error report points in the NFVI: server → its compute host (nova), volume
→ its cinder backend and the host of the server it is attached to (cinder), port → its
host binding and its network's physnet (neutron).

Answers are cached for `ttl` seconds; servers come from one listing of every server
(refreshed at most every `ttl`), with a direct lookup for one the listing missed. A
resource the cloud says does not exist, or whose service the catalog lacks, is `unresolved`
for good (the report is kept and marked); an unreachable or refusing cloud leaves the
report `pending`, retried later.
Without a cloud, only the inventory (host → instances) resolves servers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hakit.resource_agents.clouds import CloudError, CloudSession
from hakit.resource_agents.health.nova import ComputeAPI
from hakit.resource_agents.health.sol003 import Instance

PENDING, RESOLVED, UNRESOLVED = "pending", "resolved", "unresolved"


@dataclass(frozen=True)
class Resolution:
    """The NFVI scopes of one resource, or why there are none (yet)."""

    state: str
    host: str | None = None
    physnet: str | None = None
    backend: str | None = None
    reason: str = ""


class Resolver:
    """Resolves reports' resources through the cloud's APIs, with a cache."""

    def __init__(
        self,
        compute: ComputeAPI | None,
        *,
        inventory: Mapping[str, list[Instance]] | None = None,
        endpoints: Mapping[str, str] | None = None,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.compute = compute
        self.cloud: CloudSession | None = compute.cloud if compute else None
        self.inventory = inventory or {}
        self.endpoints = dict(endpoints or {})  # service type → URL, instead of the catalog's
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Resolution]] = {}
        self._servers: dict[str, str] = {}
        self._listed = float("-inf")

    def resolve(self, resource_type: str, resource_id: str) -> Resolution:
        key = (resource_type, resource_id)
        cached = self._cache.get(key)
        if cached is not None and self.clock() - cached[0] < self.ttl:
            return cached[1]
        lookup = {"server": self._server, "volume": self._volume, "port": self._port}.get(
            resource_type
        )
        if lookup is None:
            return Resolution(UNRESOLVED, reason=f"unknown resource type {resource_type!r}")
        try:
            answer = lookup(resource_id)
        except CloudError as error:
            if error.status == 404:
                answer = Resolution(UNRESOLVED, reason=f"no {resource_type} {resource_id}")
            elif error.kind == "config":  # e.g. no such service in the catalog
                answer = Resolution(UNRESOLVED, reason=error.reason)
            else:
                return Resolution(PENDING, reason=error.reason)  # retried, not cached
        self._cache[key] = (self.clock(), answer)
        return answer

    def _server(self, server_id: str) -> Resolution:
        for host, instances in self.inventory.items():
            if any(i.id == server_id for i in instances):
                return Resolution(RESOLVED, host=host)
        if self.compute is None:
            return Resolution(UNRESOLVED, reason=f"server {server_id} is in no inventory")
        if self.clock() - self._listed >= self.ttl:
            self._servers = {s.id: s.host for s in self.compute.servers()}
            self._listed = self.clock()
        host = self._servers.get(server_id) or ""
        if not host:  # created since the listing, or not listed
            answer = self.compute.request("GET", f"/servers/{server_id}")
            server = answer.get("server", {}) if isinstance(answer, dict) else {}
            host = str(server.get("OS-EXT-SRV-ATTR:host") or "")
        if not host:
            return Resolution(UNRESOLVED, reason=f"server {server_id} has no host (not placed)")
        return Resolution(RESOLVED, host=host)

    def _volume(self, volume_id: str) -> Resolution:
        volume = self._get("block-storage", f"/volumes/{volume_id}", "volume")
        backend = str(volume.get("os-vol-host-attr:host") or "").split("#", 1)[0]
        attachments = volume.get("attachments")
        hosts = {
            str(a["host_name"])
            for a in (attachments if isinstance(attachments, list) else [])
            if isinstance(a, dict) and a.get("host_name")
        }
        host = hosts.pop() if len(hosts) == 1 else None  # multi-attached: no single host
        if not backend and host is None:
            return Resolution(UNRESOLVED, reason=f"volume {volume_id} has no backend (not placed)")
        return Resolution(RESOLVED, host=host, backend=backend or None)

    def _port(self, port_id: str) -> Resolution:
        port = self._get("network", f"/v2.0/ports/{port_id}", "port")
        host = str(port.get("binding:host_id") or "") or None
        physnet = None
        if port.get("network_id"):
            path = f"/v2.0/networks/{port['network_id']}"
            physnet = str(
                self._get("network", path, "network").get("provider:physical_network") or ""
            )
        if host is None and not physnet:
            return Resolution(UNRESOLVED, reason=f"port {port_id} is bound to no host")
        return Resolution(RESOLVED, host=host, physnet=physnet or None)

    def _get(self, service_type: str, path: str, key: str) -> dict[str, object]:
        if self.cloud is None:
            raise CloudError(f"no cloud to look up {path} in", kind="config")
        endpoint = self.endpoints.get(service_type)
        answer = self.cloud.request(service_type, "GET", path, endpoint=endpoint)
        found = answer.get(key) if isinstance(answer, dict) else None
        if not isinstance(found, dict):
            raise CloudError(f"GET {path}: no {key} in the answer", kind="api")
        return found
