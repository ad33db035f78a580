"""The lab's OpenStack as its users reach it: Keystone (its configuration, the users'
passwords, clouds.yaml), the compute API and placement.

Every node serves Keystone on port 5000 from one configuration directory (shared keys
and database). clouds.yaml (`clouds_path`) holds cloud `hakit` (Keystone at 127.0.0.1,
for the agents inside the nodes: the catalog's endpoints are each node's own APIs) and
`hakit@<node>` (Keystone at the node's address, for clients outside the cluster, which
name the endpoint they call).
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from hakit.lab import keystone
from hakit.lab.lab import Lab

if TYPE_CHECKING:
    from hakit.resource_agents.clouds import CloudSession
    from hakit.resource_agents.health.nova import ComputeAPI

KEYSTONE_PORT = 5000
NOVA_API_PORT = 8774
#: the catalog every node's services and agents see (each node runs every API)
ENDPOINTS = {
    "compute": f"http://127.0.0.1:{NOVA_API_PORT}/v2.1",
    "volumev3": "http://127.0.0.1:8776/v3",
    "placement": "http://127.0.0.1:8778",
}
CLOUD = "hakit"  # the agents' cloud in clouds.yaml


def directory(lab: Lab) -> Path:
    return lab.dir / "openstack" / "keystone"


def clouds_path(lab: Lab) -> Path:
    return lab.dir / "openstack" / "clouds.yaml"


def identity(lab: Lab) -> keystone.Identity:
    """Keystone as the services inside a node reach it, with the lab's passwords."""
    return keystone.Identity(
        f"http://127.0.0.1:{KEYSTONE_PORT}/v3", keystone.passwords(directory(lab) / "users.json")
    )


def prepare(lab: Lab, venv: Path, database_url: str, *, sync: bool = True) -> keystone.Identity:
    """keystone.conf, its environment file, keys, schema and bootstrap (inside node1; the
    database exists; without `sync` only when the keys are missing), and clouds.yaml: all
    Keystone needs before its clone starts."""
    ident = identity(lab)
    conf = keystone.write_config(directory(lab), database_url)
    env = keystone.environment(venv, conf)
    (directory(lab) / "keystone.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    if sync or not any((directory(lab) / "fernet-keys").glob("[0-9]*")):
        keystone.setup(venv, conf, ident, prefix=tuple(lab.netns_prefix("node1")))
    clouds = {CLOUD: ident.cloud()}
    for node in sorted(lab.nodes):
        url = f"http://{lab.address(node)}:{KEYSTONE_PORT}/v3"
        clouds[f"{CLOUD}@{node}"] = keystone.Identity(url, ident.passwords).cloud()
    keystone.clouds_yaml(clouds_path(lab), clouds)
    return ident


def ensure_catalog(lab: Lab, timeout: float = 120) -> None:
    """Users, roles and endpoints, through node1's Keystone (waiting for it to answer)."""
    admin_url = f"http://{lab.address('node1')}:{KEYSTONE_PORT}/v3"
    lab.as_client(
        lambda: keystone.ensure_catalog(
            identity(lab), ENDPOINTS, admin_url=admin_url, timeout=timeout
        )
    )


@cache
def session(lab_dir: Path, node: str, timeout: float) -> CloudSession:
    """hakit's cloud through `node`'s Keystone, for a client namespace (`Lab.as_client`)."""
    from hakit.resource_agents.clouds import CloudSession

    path = str(lab_dir / "openstack" / "clouds.yaml")
    return CloudSession(path, f"{CLOUD}@{node}", timeout=timeout)


def compute_api(lab: Lab, node: str, timeout: float = 30) -> ComputeAPI:
    """`node`'s nova-api as hakit's admin user; call it from a client namespace."""
    from hakit.resource_agents.health.nova import ComputeAPI

    endpoint = f"http://{lab.address(node)}:{NOVA_API_PORT}/v2.1"
    return ComputeAPI(session(lab.dir, node, timeout), endpoint)


def token(lab: Lab, node: str = "node1") -> str:
    """A token of hakit's admin user (for scripts run inside a node: pass it on stdin)."""
    return lab.as_client(lambda: session(lab.dir, node, 30.0).token())


def any_token(lab: Lab) -> str:
    """A token from the first node whose Keystone answers (a drill may have cut others;
    every node's Keystone accepts it); call it from a client namespace."""
    from hakit.resource_agents.clouds import CloudError

    problems = []
    for node in sorted(lab.nodes):
        try:
            return session(lab.dir, node, 5.0).token()
        except CloudError as error:
            problems.append(error.reason)
    raise CloudError("; ".join(problems), kind="unreachable")


#: Run inside a node with a token on stdin: placement's VCPU usage, capacity and consumers
#: per provider, as JSON.
PLACEMENT_USAGES = """\
import json, sys, urllib.request
TOKEN = sys.stdin.readline().strip()
def get(path):
    request = urllib.request.Request("http://127.0.0.1:8778" + path,
                                     headers={"X-Auth-Token": TOKEN})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)
out = {}
for rp in get("/resource_providers")["resource_providers"]:
    vcpu = get(f"/resource_providers/{rp['uuid']}/inventories")["inventories"].get("VCPU")
    if vcpu:
        used = get(f"/resource_providers/{rp['uuid']}/usages")["usages"].get("VCPU", 0)
        consumers = get(f"/resource_providers/{rp['uuid']}/allocations")["allocations"]
        out[rp["name"]] = [used, int((vcpu["total"] - vcpu["reserved"]) * vcpu["allocation_ratio"]),
                           sorted(consumers)]
print(json.dumps(out))
"""
#: Run inside a node with a token on stdin: delete placement allocations of the consumers
#: in argv (stale claims).
PLACEMENT_FORGET = """\
import sys, urllib.request
TOKEN = sys.stdin.readline().strip()
for consumer in sys.argv[1:]:
    request = urllib.request.Request("http://127.0.0.1:8778/allocations/" + consumer,
                                     method="DELETE", headers={"X-Auth-Token": TOKEN})
    urllib.request.urlopen(request, timeout=30).close()
"""


def placement_providers(lab: Lab, node: str = "node1") -> dict[str, tuple[int, int, list[str]]]:
    """{provider: (VCPU used, capacity, consumers)} from placement, asked on `node`."""
    argv = [sys.executable, "-I", "-c", PLACEMENT_USAGES]
    done = lab.run(node, argv, timeout=120, stdin=token(lab, node) + "\n")
    return {
        name: (used, capacity, consumers)
        for name, (used, capacity, consumers) in json.loads(done.stdout).items()
    }


def placement_usages(lab: Lab, node: str = "node1") -> dict[str, tuple[int, int]]:
    """{provider: (VCPU used, capacity)} from placement, asked on `node`."""
    return {
        name: (used, capacity)
        for name, (used, capacity, _) in placement_providers(lab, node).items()
    }


def placement_forget(lab: Lab, consumers: list[str], node: str = "node1") -> None:
    """Delete the placement allocations of `consumers`."""
    argv = [sys.executable, "-I", "-c", PLACEMENT_FORGET, *consumers]
    lab.run(node, argv, timeout=120, stdin=token(lab, node) + "\n")
