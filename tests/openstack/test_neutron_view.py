"""neutron's view of its HA routers (`hakit.resource_agents.health.neutron`) read as the
publisher reads it: hakit's user authenticates with the session's real Keystone and finds
the network endpoint in its catalog. neutron-server itself is not installed here (the
OpenStack venv has nova, cinder, placement and keystone), so a stand-in on 127.0.0.1
answers the two calls the reading makes, as neutron's API reference documents them
(GET /v2.0/routers with fields, GET /v2.0/routers/{id}/l3-agents with each agent's
ha_state, admin only), and accepts only tokens the real Keystone validates."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from hakit.lab import keystone
from hakit.resource_agents.clouds import CloudError, CloudSession
from hakit.resource_agents.health import neutron
from hakit.resource_agents.health.periodic import PeriodicReading
from tests.openstack.conftest import Cloud

ROUTERS = [
    {"id": "r-ha", "ha": True},
    {"id": "r-legacy", "ha": False},  # not HA: no keepalived, nothing to compare
    {"id": "r-new", "ha": True},
]
AGENTS = {
    "r-ha": [
        {"id": "a1", "host": "net1", "ha_state": "active"},
        {"id": "a2", "host": "net2.example.com", "ha_state": "standby"},
        {"id": "a3", "host": "net3", "ha_state": "unknown"},  # its agent is dead
    ],
    "r-legacy": [{"id": "a1", "host": "net1", "ha_state": None}],
    "r-new": [],  # not scheduled yet
}


class StandInNeutron:
    """The two calls, for tokens Keystone validates; `broken` answers 503 (a neutron
    that is down behind its load balancer)."""

    def __init__(self, admin: keystone.Admin) -> None:
        self.admin = admin
        self.broken = False
        self.requests: list[str] = []
        neutron_ = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, body = neutron_.answer(self.path, self.headers.get("X-Auth-Token", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self, path: str, token: str) -> tuple[int, Any]:
        self.requests.append(path)
        valid = self.admin.session.request(
            f"{self.admin.url}/auth/tokens",
            "GET",
            headers={"X-Subject-Token": token},
            raise_exc=False,
            authenticated=True,
        )
        if valid.status_code != 200:
            return 401, {"error": {"message": "The request you have made requires authentication."}}
        if self.broken:
            return 503, {"error": "unavailable"}
        parts = urlsplit(path)
        if parts.path == "/v2.0/routers":
            fields = parse_qs(parts.query).get("fields", [])
            return 200, {"routers": [{k: r[k] for k in fields} for r in ROUTERS]}
        head, _, tail = parts.path.rpartition("/")
        router = head.removeprefix("/v2.0/routers/")
        if tail == "l3-agents" and router in AGENTS:
            return 200, {"agents": AGENTS[router]}
        return 404, {"NeutronError": {"message": f"{path} not found"}}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def network(cloud: Cloud) -> Iterator[StandInNeutron]:
    """The stand-in, as the catalog's network endpoint (removed after)."""
    admin = cloud.keystone.admin()
    stand_in = StandInNeutron(admin)
    service = admin.ensure("services", {"type": "network", "name": "neutron"}, type="network")
    created = [
        admin.call(
            "POST",
            "/endpoints",
            {
                "endpoint": {
                    "service_id": service["id"],
                    "interface": interface,
                    "url": stand_in.url,
                    "region_id": keystone.REGION,
                }
            },
        )["endpoint"]["id"]
        for interface in ("public", "internal")
    ]
    try:
        yield stand_in
    finally:
        for endpoint in created:
            admin.call("DELETE", f"/endpoints/{endpoint}")
        admin.call("DELETE", f"/services/{service['id']}")
        stand_in.stop()


def test_the_ha_routers_agents_as_neutron_says(cloud: Cloud, network: StandInNeutron) -> None:
    """Only HA routers, only the agents that say active or standby; one call for the
    routers and one per HA router."""
    session = CloudSession(str(cloud.clouds_yaml), "hakit")
    states = neutron.ha_states(session)
    assert states == {"r-ha": {"net1": "active", "net2.example.com": "standby"}, "r-new": {}}
    assert network.requests == [
        "/v2.0/routers?fields=id&fields=ha",
        "/v2.0/routers/r-ha/l3-agents",
        "/v2.0/routers/r-new/l3-agents",
    ]
    # as the router watch takes it: the cluster's nodes, FQDNs to their first label
    assert neutron.on_nodes(states, {"net1", "net2"}, seen={"r-ha"}) == {
        "r-ha": {"net1": "active", "net2": "standby"}
    }


def test_a_neutron_that_fails_leaves_no_opinion_and_is_logged_once(
    cloud: Cloud, network: StandInNeutron
) -> None:
    """The publisher's periodic reading: neutron down (503) → logged once, no view (the
    last one is not kept: a stale ha_state would raise mismatches); back → read again.
    A user Keystone refuses is an auth CloudError."""
    session = CloudSession(str(cloud.clouds_yaml), "hakit")
    now = [0.0]
    reading = PeriodicReading[neutron.HaStates](
        lambda: neutron.ha_states(session),
        {},
        "neutron's ha_state not read",
        10.0,
        lambda: now[0],
        background=False,
        failed={},
    )
    logged: list[str] = []
    assert reading(logged.append)["r-ha"]["net1"] == "active"
    network.broken = True
    for now[0] in (10.0, 20.0):
        assert reading(logged.append) == {}
    assert len(logged) == 1 and logged[0].startswith("neutron's ha_state not read: "), logged
    assert "503" in logged[0]
    network.broken = False
    now[0] = 30.0
    assert "r-ha" in reading(logged.append) and len(logged) == 1

    wrong = cloud.root / "wrong-clouds.yaml"
    entry = dict(cloud.keystone.clouds["hakit"])
    entry["auth"] = {**entry["auth"], "password": "not-the-password"}
    keystone.clouds_yaml(wrong, {"hakit": entry})
    with pytest.raises(CloudError) as refused:
        neutron.ha_states(CloudSession(str(wrong), "hakit"))
    assert refused.value.kind == "auth"
