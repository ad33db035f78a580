"""Capacity in a CIB with status (crm_simulate's output): where each primitive is
active, what that uses of each node's utilization capacity, and which resources a
transition left stopped. `topology simulate` shows it after a failure, so that an
operator sees a node loss move resources only where capacity remains (and what stays
down for want of it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

#: Operations whose success leaves a resource active (a probe finding it running too).
ACTIVATING = ("start", "promote", "migrate_from", "monitor")
#: A cluster node's controller state when it is not a member (2.1.5 says "offline";
#: later releases write a timestamp when online, "0" when not).
OFFLINE = ("offline", "0", None)


@dataclass
class NodeUse:
    """One node's capacity and what its active resources use of it."""

    node: str
    capacity: dict[str, int] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)

    def over(self) -> list[str]:
        """The attributes used beyond capacity (a missing capacity is 0, as Pacemaker reads it)."""
        return [k for k, v in self.used.items() if v > self.capacity.get(k, 0)]


def _numbers(element: etree._Element | None) -> dict[str, int]:
    values: dict[str, int] = {}
    for pair in () if element is None else element.iterfind("nvpair"):
        try:
            values[str(pair.get("name"))] = int(str(pair.get("value")))
        except ValueError:
            continue
    return values


def utilization(cib: etree._Element) -> dict[str, dict[str, int]]:
    """Each primitive's utilization, by id."""
    return {
        str(p.get("id")): used
        for p in cib.iterfind("configuration/resources//primitive")
        if (used := _numbers(p.find("utilization")))
    }


def active(cib: etree._Element) -> dict[str, list[str]]:
    """Node → the primitives active there (clone instances by their primitive's id)."""
    connections = {
        str(p.get("id"))
        for p in cib.iterfind("configuration/resources//primitive[@type='remote']")
        if p.get("provider") == "pacemaker"
    }
    found: dict[str, list[str]] = {}
    for state in cib.iterfind("status/node_state"):
        if state.get("remote_node") != "true" and (
            state.get("in_ccm") in ("false", "0", None) or state.get("crmd") in OFFLINE
        ):
            continue
        for resource in state.iterfind("lrm/lrm_resources/lrm_resource"):
            if _last_succeeded(resource):
                found.setdefault(str(state.get("uname")), []).append(
                    str(resource.get("id")).partition(":")[0]
                )
    running = {r for names in found.values() for r in names}
    return {
        node: names
        for node, names in found.items()
        if node not in connections or node in running  # a remote is up with its connection
    }


def _last_succeeded(resource: etree._Element) -> bool:
    ops = [op for op in resource.iterfind("lrm_rsc_op") if op.get("interval", "0") == "0"]
    if not ops:
        return False
    last = max(ops, key=lambda op: int(op.get("call-id", "0") or 0))
    return last.get("operation") in ACTIVATING and last.get("rc-code") in ("0", "8")


def use(cib: etree._Element) -> list[NodeUse]:
    """Every node's capacity and use (nodes with a capacity or a use)."""
    capacity = {
        str(n.get("uname")): _numbers(n.find("utilization"))
        for n in cib.iterfind("configuration/nodes/node")
    }
    wanted = utilization(cib)
    result = []
    for node, names in sorted(active(cib).items()):
        used: dict[str, int] = {}
        for name in names:
            for key, value in wanted.get(name, {}).items():
                used[key] = used.get(key, 0) + value
        if used or capacity.get(node):
            result.append(NodeUse(node, capacity.get(node, {}), used))
    return result


def left_stopped(before: etree._Element, after: etree._Element) -> list[str]:
    """Primitives active before and nowhere after."""
    was = {r for names in active(before).values() for r in names}
    now = {r for names in active(after).values() for r in names}
    return sorted(was - now)


def report(before_file: Path, after_file: Path) -> dict[str, object] | None:
    """Capacity after a simulated failure, None when nothing has a utilization: each
    node's use and capacity (and what is over it), and what was left stopped."""
    from hakit.tools.topology.apply import read_cib

    before = read_cib(before_file.read_text(encoding="utf-8"), str(before_file))
    after = read_cib(after_file.read_text(encoding="utf-8"), str(after_file))
    nodes, wanted = use(after), utilization(after)
    if not wanted and not any(n.capacity for n in nodes):
        return None
    return {
        "nodes": [
            {"node": n.node, "capacity": n.capacity, "used": n.used, "over": n.over()}
            for n in nodes
        ],
        "left_stopped": [
            {"resource": name, "needs": wanted.get(name, {})}
            for name in left_stopped(before, after)
        ],
    }


def lines(found: dict[str, Any]) -> list[str]:
    """`report` as text: a line per node, then what stayed stopped."""
    text = ["capacity after it (used/capacity):"]
    for node in found["nodes"]:
        keys = sorted(set(node["capacity"]) | set(node["used"]))
        pairs = " ".join(f"{k} {node['used'].get(k, 0)}/{node['capacity'].get(k, 0)}" for k in keys)
        over = f"  OVER: {', '.join(node['over'])}" if node["over"] else ""
        text.append(f"  {node['node']:<16} {pairs}{over}")
    for stopped in found["left_stopped"]:
        needs = " ".join(f"{k} {v}" for k, v in stopped["needs"].items())
        reason = f" (needs {needs}: no node has it left)" if needs else ""
        text.append(f"  left stopped: {stopped['resource']}{reason}")
    return text
