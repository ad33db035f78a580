"""One resource as `crm_mon --output-as=xml` describes it, all its instances merged (what
the single-node cluster tests ask about)."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from typing import TypedDict


class ResourceState(TypedDict):
    """What ``crm_mon --output-as=xml`` says about one resource (all instances)."""

    id: str
    """The id asked for."""
    agent: str
    """``class:provider:type`` (or ``class:type``) of the primitive."""
    role: str
    """Promoted if any instance is, else the role of an active instance, else Stopped."""
    active: bool
    """True if at least one instance is active."""
    nodes: list[str]
    """Names of the nodes where an instance is active (sorted, may repeat for clones)."""
    instances: int
    """Number of ``<resource>`` entries (clone instances, including stopped ones)."""
    failed: bool
    """True if any instance is flagged failed by crm_mon."""
    managed: bool
    """False if any instance is unmanaged."""
    blocked: bool
    """True if any instance is blocked."""
    fail_count: int
    """Sum of the fail counts of the matching resources over all nodes."""


def resource_state(root: ET.Element, rsc_id: str) -> ResourceState:
    """State of resource ``rsc_id`` (a primitive, or a clone/group/bundle id) in the crm_mon
    XML `root`. For a primitive inside a clone, all its instances are merged. Raises
    KeyError if crm_mon does not list the resource."""
    resources = root.find("resources")
    if resources is None:
        raise KeyError(f"no <resources> in crm_mon output (resource {rsc_id!r})")
    matches = [r for r in resources.iter("resource") if r.get("id", "").split(":")[0] == rsc_id]
    if not matches:
        for parent in resources.iter():
            if parent.tag != "resource" and parent.get("id") == rsc_id:
                matches = list(parent.iter("resource"))
                break
    if not matches:
        raise KeyError(f"resource {rsc_id!r} is not in the crm_mon output")
    ids = {r.get("id", "").split(":")[0] for r in matches}
    nodes = sorted(n.get("name", "") for r in matches for n in r.findall("node"))
    roles = [r.get("role", "Stopped") for r in matches]
    active = [r for r in matches if r.get("active") == "true"]
    if "Promoted" in roles or "Master" in roles:
        role = "Promoted"
    elif active:
        role = active[0].get("role", "Started")
    else:
        role = roles[0]
    fail_count = 0
    for history in root.iter("resource_history"):
        if history.get("id", "").split(":")[0] in ids:
            with contextlib.suppress(ValueError):
                fail_count += int(history.get("fail-count", "0"))
    return ResourceState(
        id=rsc_id,
        agent=matches[0].get("resource_agent", ""),
        role=role,
        active=bool(active),
        nodes=nodes,
        instances=len(matches),
        failed=any(r.get("failed") == "true" for r in matches),
        managed=all(r.get("managed", "true") == "true" for r in matches),
        blocked=any(r.get("blocked") == "true" for r in matches),
        fail_count=fail_count,
    )
