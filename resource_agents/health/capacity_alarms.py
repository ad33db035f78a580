"""QoS alarms from Pacemaker's utilization (the topology's node capacities and resource
needs; `hakit topology qos` and `simulate` show them before the fact):

- NODE_OVER_CAPACITY: what runs on a node needs more of an attribute than the node has
  (placement-strategy default ignores capacity; a capacity lowered under running work);
- CAPACITY_EXHAUSTED: a resource meant to run is stopped and no online node has what it
  needs left, e.g. after a failover took the room;
- with a compute API, from placement (`placement`): COMPUTE_OVER_COMMITTED (a compute
  host's usage beyond its capacity) and GUARANTEED_CPU_SHARED (its dedicated cores, PCPU,
  beyond theirs: the guaranteed CPU of its servers' flavors is not there). A server whose
  guaranteed CPU no host has after a failover is the evacuation's alarm
  (`evacuation.CPU_UNAVAILABLE`).

Read from the CIB's configuration (one `cibadmin --query --scope configuration` on each
resync of the leader, every 5 s and on a CIB change) and the publisher's crm_mon
snapshot; no finding when no utilization is configured. A finding is an alarm once it
has lasted `GRACE` (a transition in flight), raised, changed and cleared like the host
alarms.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hakit.resource_agents.health.alarm_table import AlarmTable
from hakit.resource_agents.health.sol003 import (
    ALARM_NAMESPACE,
    Context,
    FaultyResource,
    Outgoing,
    alarm_body,
    cleared_notification,
    raised_notification,
)

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

    from hakit.ocf.status import ClusterStatus
    from hakit.resource_agents.health.outbox import Outbox

GRACE = 10.0
CAUSES = {
    "NODE_OVER_CAPACITY": "Resources on the node need more than its capacity",
    "CAPACITY_EXHAUSTED": "Resource stopped: no online node has the capacity it needs",
    "COMPUTE_OVER_COMMITTED": "Servers on the host use more than its capacity in placement",
    "GUARANTEED_CPU_SHARED": "Dedicated cores (PCPU) used beyond the host's: guarantee broken",
}
HOST_KINDS = frozenset(CAUSES) - {"CAPACITY_EXHAUSTED"}  # the subject is a node


@dataclass(frozen=True)
class Finding:
    kind: str
    subject: str  # a node or a resource id
    detail: str

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.subject}"


@dataclass
class Utilization:
    """Capacities and needs from the CIB configuration."""

    capacity: dict[str, dict[str, int]] = field(default_factory=dict)  # node → attribute → n
    needs: dict[str, dict[str, int]] = field(default_factory=dict)  # primitive → attr → n
    stopped: set[str] = field(default_factory=set)  # primitives meant to be stopped
    cloned: set[str] = field(default_factory=set)  # primitives inside a clone

    @classmethod
    def from_configuration(cls, configuration: Element) -> Utilization:
        found = cls()
        for node in configuration.iter("node"):
            found.capacity[node.get("uname") or node.get("id") or ""] = _numbers(node)
        for parent in configuration.iter():
            if parent.tag not in ("primitive", "group", "clone", "bundle"):
                continue
            off = _meta(parent, "target-role").lower() == "stopped"
            for primitive in parent.iter("primitive"):
                name = primitive.get("id", "")
                if primitive is parent and (needs := _numbers(primitive)):
                    found.needs[name] = needs
                if off:
                    found.stopped.add(name)
                if parent.tag in ("clone", "bundle"):
                    found.cloned.add(name)
        return found

    def findings(self, status: ClusterStatus) -> list[Finding]:
        if not self.needs:
            return []
        used: dict[str, dict[str, int]] = {node: {} for node in self.capacity}
        for name, needs in self.needs.items():
            for instance in status.instances(name):
                for node in instance.nodes if instance.active else []:
                    for attribute, amount in needs.items():
                        row = used.setdefault(node, {})
                        row[attribute] = row.get(attribute, 0) + amount
        found = []
        for node, use in sorted(used.items()):
            have = self.capacity.get(node, {})
            over = [
                f"{a} {n}/{have.get(a, 0)}" for a, n in sorted(use.items()) if n > have.get(a, 0)
            ]
            if over:
                found.append(Finding("NODE_OVER_CAPACITY", node, f"{node} uses {', '.join(over)}"))
        room = {
            n.name: {
                a: c - used.get(n.name, {}).get(a, 0) for a, c in self.capacity[n.name].items()
            }
            for n in status.nodes
            if n.online and not n.standby and n.name in self.capacity
        }
        for name, needs in sorted(self.needs.items()):
            if name in self.stopped or name in self.cloned or status.active_on(name):
                continue
            if not any(
                all(left.get(a, 0) >= n for a, n in needs.items()) for left in room.values()
            ):
                wanted = ", ".join(f"{a} {n}" for a, n in sorted(needs.items()))
                detail = f"{name} needs {wanted}; no online node has it left"
                found.append(Finding("CAPACITY_EXHAUSTED", name, detail))
        return found


def _numbers(element: Element) -> dict[str, int]:
    numbers = {}
    for utilization in element.findall("utilization"):
        for pair in utilization.iter("nvpair"):
            try:
                numbers[pair.get("name", "")] = int(pair.get("value", ""))
            except ValueError:
                continue
    return numbers


def _meta(element: Element, name: str) -> str:
    for meta in element.findall("meta_attributes"):
        for pair in meta.iter("nvpair"):
            if pair.get("name") == name:
                return pair.get("value", "")
    return ""


class CapacityAlarms:
    """The leader's capacity stage: `derive` findings into alarms in `capacity_alarms`."""

    def __init__(
        self,
        outbox: Outbox,
        store: Callable[[Outgoing], bool],
        configuration: Callable[[], Element],
        context: Context | None = None,
        placement: Callable[[Callable[[str], None]], list[Finding]] | None = None,
    ) -> None:
        self.outbox, self.store, self.configuration = outbox, store, configuration
        self.placement = placement  # findings from placement (`placement.PlacementCheck`)
        self.context = context or Context()
        self.table = AlarmTable(outbox.db, "capacity_alarms")
        self.utilization: Utilization | None = None
        self.first_seen: dict[str, float] = {}
        self.grace = GRACE

    def tick(self, status: ClusterStatus, now: float, log: Callable[[str], None]) -> int:
        """Notifications stored (the configuration read again, placement when due); a CIB
        that cannot be read is logged once and leaves the alarms as they are."""
        try:
            self.utilization = Utilization.from_configuration(self.configuration())
        except Exception as error:  # cibadmin away or its answer unreadable: next resync
            if self.utilization is not None:
                log(f"capacity not checked: {error}")
            self.utilization = None
            return 0
        found = self.utilization.findings(status)
        return self.derive(found + (self.placement(log) if self.placement else []), now)

    def derive(self, findings: list[Finding], now: float) -> int:
        current = {f.key: f for f in findings}
        self.first_seen = {k: self.first_seen.get(k, now) for k in current}
        with self.outbox.transaction() as db:
            book = self.table.read(db)
            after: dict[str, dict[str, Any]] = {}
            out: list[Outgoing] = []
            for key, finding in current.items():
                state = book.get(key)
                if state is None and now - self.first_seen[key] < self.grace:
                    continue
                if state is None or state["detail"] != finding.detail:
                    raised = state["raised"] if state else self.first_seen[key]
                    ident = state["alarm_id"] if state else _alarm_id(key, raised)
                    state = {"alarm_id": ident, "raised": raised, "changed": now}
                    state |= {"kind": finding.kind, "subject": finding.subject}
                    state["detail"] = finding.detail
                    out.append(self._raised(state, now))
                after[key] = state
            for key in book.keys() - after.keys():
                gone = book[key]
                out.append(
                    cleared_notification(
                        gone["subject"], gone["alarm_id"], "MAJOR", now, now, self.context
                    )
                )
            self.table.write(db, book, after)
            return sum(1 for item in out if self.store(item))

    def _raised(self, state: dict[str, Any], now: float) -> Outgoing:
        on_node = state["kind"] in HOST_KINDS
        body = alarm_body(
            state["alarm_id"],
            state["subject"],
            FaultyResource(state["subject"], "host" if on_node else "resource", "COMPUTE"),
            raised=state["raised"],
            changed=state["changed"],
            severity="MAJOR",
            event_type="QOS_ALARM",
            fault_type=state["kind"],
            probable_cause=CAUSES[state["kind"]],
            root=True,
            correlated=[],
            details=[state["detail"]],
            event_time=state["changed"],
            context=self.context,
        )
        return raised_notification(body, state["subject"], state["changed"], now, state["changed"])


def _alarm_id(key: str, raised: float) -> str:
    return str(uuid.uuid5(ALARM_NAMESPACE, f"capacity/{key}/{raised:.6f}"))
