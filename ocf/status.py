"""What Pacemaker's XML answers say, as small objects: crm_mon's nodes, resources and
failures, and the fencer's history. Parsing only; `hakit.ocf.cluster` runs the commands."""

from __future__ import annotations

from ._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element


class NodeStatus:
    """One node as crm_mon shows it."""

    __slots__ = ("is_dc", "maintenance", "name", "online", "pending", "standby", "unclean")

    def __init__(self, element: Element) -> None:
        self.name = element.get("name", "")
        self.online = _true(element, "online")
        self.standby = _true(element, "standby")
        self.maintenance = _true(element, "maintenance")
        self.unclean = _true(element, "unclean")
        self.pending = _true(element, "pending")
        self.is_dc = _true(element, "is_dc")

    def __repr__(self) -> str:
        return f"NodeStatus({self.name!r}, online={self.online}, unclean={self.unclean})"


class ResourceStatus:
    """One primitive (or clone instance) as crm_mon shows it."""

    __slots__ = ("active", "agent", "failed", "id", "managed", "nodes", "parent", "role")

    def __init__(self, element: Element, parent: str | None) -> None:
        self.id = element.get("id", "")
        self.agent = element.get("resource_agent", "")
        self.role = element.get("role", "")
        self.active = _true(element, "active")
        self.failed = _true(element, "failed")
        self.managed = _true(element, "managed")
        self.nodes = [node.get("name", "") for node in element.findall("node")]
        self.parent = parent

    def __repr__(self) -> str:
        return f"ResourceStatus({self.id!r}, role={self.role!r}, nodes={self.nodes})"

    @property
    def started(self) -> bool:
        """Active with its start done, and not failed: crm_mon shows a start in flight as
        active with role Starting (record-pending), and the agent may still fail it; and
        an instance whose start (or monitor) failed as active and failed until its stop."""
        return self.active and not self.failed and self.role != "Starting"


class Failure:
    """A failed operation crm_mon reports."""

    __slots__ = ("changed", "exit_code", "exit_reason", "interval_ms", "node", "op_key", "task")

    def __init__(self, element: Element) -> None:
        self.changed = parse_time(element.get("last-rc-change", ""))  # to the second
        self.op_key = element.get("op_key", "")
        self.node = element.get("node", "")
        self.task = element.get("task", "")
        self.exit_code = int(element.get("exitcode", "1"))
        self.exit_reason = element.get("exitreason", "")
        self.interval_ms = int(element.get("interval", "0"))


class ClusterStatus:
    """The cluster as one `crm_mon --output-as=xml` call sees it."""

    def __init__(self, root: Element) -> None:
        dc = root.find("summary/current_dc")
        self.dc = dc.get("name") if dc is not None and _true(dc, "present") else None
        self.quorate = dc is not None and _true(dc, "with_quorum")
        self.nodes = [NodeStatus(e) for e in root.findall("nodes/node")]
        self.resources: list[ResourceStatus] = []
        resources = root.find("resources")
        if resources is not None:
            self._collect(resources, None)
        self.failures = [Failure(e) for e in root.findall("failures/failure")]
        self.fail_counts: dict[tuple[str, str], int] = {}
        for node in root.findall("node_history/node"):
            for history in node.findall("resource_history"):
                count = int(history.get("fail-count", "0") or 0)
                if count:
                    self.fail_counts[(history.get("id", ""), node.get("name", ""))] = count

    def _collect(self, element: Element, parent: str | None) -> None:
        for child in element:
            if child.tag == "resource":
                self.resources.append(ResourceStatus(child, parent))
            elif child.tag in ("clone", "group", "bundle", "replica"):
                self._collect(child, child.get("id") or parent)

    def node(self, name: str) -> NodeStatus | None:
        return next((n for n in self.nodes if n.name == name), None)

    def instances(self, resource_id: str) -> list[ResourceStatus]:
        """A primitive's status, or every instance of a clone/group by the parent's id."""
        return [
            r
            for r in self.resources
            if resource_id in (r.id, r.parent) or r.id.partition(":")[0] == resource_id
        ]

    def running_on(self, resource_id: str) -> list[str]:
        """Nodes where the resource (or an instance of it) runs, its start done and not
        failed (a start in flight, or a failed instance, is not running: see
        `ResourceStatus.started`)."""
        return sorted({n for r in self.instances(resource_id) if r.started for n in r.nodes})

    def active_on(self, resource_id: str) -> list[str]:
        """Nodes where the resource (or an instance of it) is active, starting included."""
        return sorted({n for r in self.instances(resource_id) if r.active for n in r.nodes})


class FenceEvent:
    """One fencing action from the fencer's history."""

    __slots__ = ("action", "client", "completed", "delegate", "origin", "status", "target")

    def __init__(self, element: Element) -> None:
        self.target = element.get("target", "")
        self.action = element.get("action", "")
        self.status = element.get("status", "")
        self.delegate = element.get("delegate", "")
        self.origin = element.get("origin", "")
        self.client = element.get("client", "")
        self.completed = element.get("completed", "")

    @property
    def completed_epoch(self) -> float | None:
        """`completed` ("2024-11-24 10:11:12Z", "... +01:00") as a UNIX time, or None."""
        return parse_time(self.completed)

    def __repr__(self) -> str:
        return f"FenceEvent({self.action} {self.target}: {self.status})"


def parse_time(text: str) -> float | None:
    """A Pacemaker time string ("YYYY-MM-DD HH:MM:SS" then "Z", "+HH:MM", "-HHMM" or
    nothing for UTC) as a UNIX time; None when it is not one."""
    import datetime

    text = text.strip()
    try:
        date, _, rest = text.partition(" ")
        year, month, day = (int(part) for part in date.split("-"))
        clock, zone = rest[:8], rest[8:].strip().removeprefix("Z").replace(":", "")
        hour, minute, second = (int(part) for part in clock.split(":"))
        offset = 0
        if zone:
            sign = -1 if zone[0] == "-" else 1
            digits = zone.lstrip("+-")
            if len(digits) != 4 or not digits.isdigit():
                return None
            offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        when = datetime.datetime(
            year,
            month,
            day,
            hour,
            minute,
            second,
            tzinfo=datetime.timezone(datetime.timedelta(seconds=offset)),
        )
    except ValueError:
        return None
    return when.timestamp()


def _true(element: Element, name: str) -> bool:
    return element.get(name, "false") == "true"
