"""Force nova-compute down (and back up), list and evacuate servers, through the compute
API, microversion 2.53.

Only for a host whose fencing is confirmed (HOST_DOWN_FENCED): nova then lets its
servers be evacuated at once instead of waiting for the heartbeat to go stale; the
flag is cleared when the host is healthy again. Authentication is Keystone's, through a
clouds.yaml entry (`hakit.resource_agents.clouds`); the endpoint is the catalog's
compute endpoint unless `endpoint` overrides it.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from hakit.resource_agents.clouds import CloudError, CloudSession

MICROVERSION = "2.53"
HEADERS = {
    "OpenStack-API-Version": f"compute {MICROVERSION}",
    "X-OpenStack-Nova-API-Version": MICROVERSION,
}


class NovaError(CloudError):
    """The compute API could not be reached or refused the request (`kind` says which:
    auth when Keystone refused the credentials)."""


@dataclass(frozen=True)
class ComputeService:
    id: str
    host: str
    state: str
    forced_down: bool
    status: str = "enabled"


@dataclass(frozen=True)
class Server:
    id: str
    host: str
    status: str
    task_state: str | None
    flavor: str = ""  # the flavor's name at boot (the server keeps its own copy)
    dedicated_cpus: int = 0  # the dedicated cores (PCPU) its flavor guarantees
    fault: str = ""  # nova's message for its last failure (ERROR servers only)


@dataclass(frozen=True)
class ComputeAPI:
    """The compute API of a cloud (clouds.yaml), at `endpoint` when given, e.g.
    http://10.0.0.5:8774/v2.1, else at the catalog's."""

    cloud: CloudSession
    endpoint: str | None = None

    def request(self, method: str, path: str, body: object = None) -> object:
        """One JSON call; the decoded answer (NovaError when refused or unreachable)."""
        try:
            return self.cloud.request(
                "compute", method, path, body=body, headers=HEADERS, endpoint=self.endpoint
            )
        except CloudError as error:
            raise NovaError(error.reason, kind=error.kind, status=error.status) from None

    def compute_services(self, host: str) -> list[ComputeService]:
        query = urllib.parse.urlencode({"binary": "nova-compute", "host": host})
        answer = self.request("GET", f"/os-services?{query}")
        items = answer.get("services", []) if isinstance(answer, dict) else []
        return [
            ComputeService(
                str(s["id"]),
                str(s["host"]),
                str(s.get("state", "")),
                bool(s.get("forced_down")),
                str(s.get("status", "enabled")),
            )
            for s in items
            if isinstance(s, dict) and s.get("host") == host
        ]

    def set_forced_down(self, host: str, down: bool) -> list[ComputeService]:
        """Set the flag on every nova-compute service of `host`; returns those changed."""
        changed = []
        for service in self.compute_services(host):
            if service.forced_down != down:
                self.request("PUT", f"/os-services/{service.id}", {"forced_down": down})
                changed.append(service)
        return changed

    def set_disabled(self, host: str, reason: str) -> list[ComputeService]:
        """Disable every nova-compute service of `host` (the scheduler then skips it), with
        the reason operators see in `openstack compute service list --long`; those changed."""
        changed = []
        for service in self.compute_services(host):
            if service.status != "disabled":
                body = {"status": "disabled", "disabled_reason": reason[:255]}
                self.request("PUT", f"/os-services/{service.id}", body)
                changed.append(service)
        return changed

    def servers(self, host: str | None = None) -> list[Server]:
        """Every project's servers (on `host`, when given), as the admin sees them."""
        query = {"all_tenants": "1", **({"host": host} if host else {})}
        answer = self.request("GET", f"/servers/detail?{urllib.parse.urlencode(query)}")
        items = answer.get("servers", []) if isinstance(answer, dict) else []
        return [
            Server(
                str(s["id"]),
                str(s.get("OS-EXT-SRV-ATTR:host") or ""),
                str(s.get("status", "")),
                s.get("OS-EXT-STS:task_state"),
                str(_mapping(s.get("flavor")).get("original_name", "")),
                dedicated_cpus(_mapping(s.get("flavor"))),
                str(_mapping(s.get("fault")).get("message", "")),
            )
            for s in items
            if isinstance(s, dict) and "id" in s
        ]

    def evacuate(self, server_id: str) -> None:
        """Rebuild the server on a host the scheduler picks (its host must be down)."""
        self.request("POST", f"/servers/{server_id}/action", {"evacuate": {}})


def dedicated_cpus(flavor: dict[str, object]) -> int:
    """The dedicated cores (PCPU) a server's embedded flavor guarantees: its vCPUs under
    hw:cpu_policy=dedicated (a QoS tier's guaranteed_percent 100), else an explicit
    resources:PCPU; 0 when none or unreadable."""
    specs = _mapping(flavor.get("extra_specs"))
    if specs.get("hw:cpu_policy") == "dedicated":
        count = flavor.get("vcpus", 0)
    else:
        count = specs.get("resources:PCPU", 0)
    try:
        return max(0, int(str(count)))
    except ValueError:
        return 0


def _mapping(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}
