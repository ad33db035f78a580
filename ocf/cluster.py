"""The one module that runs cluster commands: crm_node, attrd_updater, crm_attribute,
crm_mon, stonith_admin and cibadmin. Every call has a timeout, XML output is parsed
into small objects, and every failure is a ClusterCommandError with the command's
own message — agents and tools never call these programs themselves.
"""

from __future__ import annotations

import os

from ._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from xml.etree.ElementTree import Element

DEFAULT_TIMEOUT = 10.0


class ClusterCommandError(Exception):
    """A cluster command failed, timed out or is missing."""

    def __init__(self, command: Sequence[str], message: str, returncode: int | None = None):
        super().__init__(f"{' '.join(command)}: {message}")
        self.command = list(command)
        self.returncode = returncode


def run(
    args: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    stdin: str | None = None,
    ok_codes: Sequence[int] = (0,),
) -> tuple[int, str]:
    """Run a cluster tool; return (exit code, stdout). Raise on other codes or a timeout."""
    import subprocess

    env = dict(os.environ, LC_ALL="C")
    try:
        done = subprocess.run(
            list(args),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=max(timeout, 0.1),
            env=env,
            check=False,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise ClusterCommandError(args, "not installed on this node") from None
    except subprocess.TimeoutExpired:
        raise ClusterCommandError(args, f"no answer within {timeout:g}s") from None
    if done.returncode not in ok_codes:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise ClusterCommandError(
            args, message[-1] if message else f"exit code {done.returncode}", done.returncode
        )
    return done.returncode, done.stdout


def run_xml(args: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> Element:
    """Run a tool that prints XML and parse it."""
    from xml.etree import ElementTree

    _, output = run(args, timeout=timeout)
    try:
        return ElementTree.fromstring(output)  # noqa: S314 — output of local Pacemaker tools
    except ElementTree.ParseError as error:
        raise ClusterCommandError(args, f"unreadable XML output: {error}") from None


# --- the local node -----------------------------------------------------------------


def local_node_name(*, timeout: float = DEFAULT_TIMEOUT) -> str:
    """This node's name as the cluster knows it (`crm_node -n`)."""
    return run(["crm_node", "-n"], timeout=timeout)[1].strip()


def is_quorate(*, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether this node's partition has quorum (`crm_node -q`)."""
    return run(["crm_node", "-q"], timeout=timeout)[1].strip() == "1"


# --- node attributes ------------------------------------------------------------------


def set_transient_attribute(
    name: str, value: str, *, node: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Set a node attribute that lives until the node leaves (attrd_updater -U)."""
    run(["attrd_updater", "-n", name, "-U", value, *_node(node)], timeout=timeout)


def get_transient_attribute(
    name: str, *, node: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> str | None:
    """The value of a transient node attribute, None when it is not set."""
    # Pacemaker 2.1.5 answers a missing attribute with 78 ("attribute does not exist").
    code, output = run(
        ["attrd_updater", "-Q", "-n", name, *_node(node)], timeout=timeout, ok_codes=(0, 78, 105)
    )
    if code != 0:
        return None
    for word in output.split():
        if word.startswith('value="'):
            value = word[len('value="') : -1]
            return value or None
    return None


def transient_attribute_values(name: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, str]:
    """{node: value} of a transient attribute on every node that has it (attrd_updater -QA)."""
    code, output = run(
        ["attrd_updater", "-Q", "-A", "-n", name], timeout=timeout, ok_codes=(0, 78, 105)
    )
    values: dict[str, str] = {}
    if code != 0:
        return values
    for line in output.splitlines():
        fields = _quoted_fields(line)
        if fields.get("name", name) == name and "host" in fields and fields.get("value"):
            values[fields["host"]] = fields["value"]
    return values


def _quoted_fields(line: str) -> dict[str, str]:
    """`a="x" b="y z"` → {"a": "x", "b": "y z"}."""
    fields: dict[str, str] = {}
    rest = line.strip()
    while "=" in rest:
        key, _, rest = rest.partition("=")
        if not rest.startswith('"'):
            break
        value, _, rest = rest[1:].partition('"')
        fields[key.strip()] = value
        rest = rest.strip()
    return fields


def delete_transient_attribute(
    name: str, *, node: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> None:
    run(["attrd_updater", "-n", name, "-D", *_node(node)], timeout=timeout)


def set_node_attribute(
    name: str, value: str, *, node: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Set a permanent node attribute in the CIB (crm_attribute -l forever)."""
    run(
        ["crm_attribute", "-t", "nodes", "-l", "forever", "-n", name, "-v", value, *_node(node)],
        timeout=timeout,
    )


def get_node_attribute(
    name: str, *, node: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> str | None:
    code, output = run(
        ["crm_attribute", "-t", "nodes", "-l", "forever", "-n", name, "-G", "-q", *_node(node)],
        timeout=timeout,
        ok_codes=(0, 105),
    )
    return output.strip() if code == 0 else None


def delete_node_attribute(
    name: str, *, node: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> None:
    run(
        ["crm_attribute", "-t", "nodes", "-l", "forever", "-n", name, "-D", *_node(node)],
        timeout=timeout,
    )


def _node(node: str | None) -> list[str]:
    return ["-N", node] if node else []


# --- status ------------------------------------------------------------------------------


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


class Failure:
    """A failed operation crm_mon reports."""

    __slots__ = ("exit_code", "exit_reason", "interval_ms", "node", "op_key", "task")

    def __init__(self, element: Element) -> None:
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
        """Nodes where the resource (or an instance of it) is active."""
        return sorted({n for r in self.instances(resource_id) if r.active for n in r.nodes})


def cluster_status(*, timeout: float = DEFAULT_TIMEOUT) -> ClusterStatus:
    """Current status, including node history (fail counts) and failures."""
    return ClusterStatus(
        run_xml(
            ["crm_mon", "--one-shot", "--inactive", "--output-as=xml", "--include=all"],
            timeout=timeout,
        )
    )


# --- fencing -----------------------------------------------------------------------------


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


def fencing_history(node: str = "*", *, timeout: float = DEFAULT_TIMEOUT) -> list[FenceEvent]:
    """Fencing actions against `node` ("*" = all), as the fencer remembers them."""
    root = run_xml(["stonith_admin", "--history", node, "--output-as=xml"], timeout=timeout)
    return [FenceEvent(e) for e in root.iter("fence_event")]


# --- the CIB -------------------------------------------------------------------------------


def cib_query(
    scope: str | None = None, *, xpath: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> Element:
    """The live CIB, or one section (`scope`: resources, constraints, nodes, ...)."""
    args = ["cibadmin", "--query"]
    if scope:
        args += ["--scope", scope]
    if xpath:
        args += ["--xpath", xpath]
    return run_xml(args, timeout=timeout)


def cib_text(*, timeout: float = DEFAULT_TIMEOUT) -> str:
    """The whole live CIB as XML text (status included)."""
    return run(["cibadmin", "--query"], timeout=timeout)[1]


def cib_create(scope: str, xml: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Add an object to a CIB section."""
    run(["cibadmin", "--create", "--scope", scope, "--xml-pipe"], stdin=xml, timeout=timeout)


def cib_replace(scope: str, xml: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Replace an object (matched by tag and id) in a CIB section."""
    run(["cibadmin", "--replace", "--scope", scope, "--xml-pipe"], stdin=xml, timeout=timeout)


def cib_delete(xml: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Delete the object the XML names (matched by tag and id)."""
    run(["cibadmin", "--delete", "--xml-pipe"], stdin=xml, timeout=timeout)


def cib_diff(original: str, new: str, *, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """crm_diff's patch turning the `original` CIB file into `new`; None if they match."""
    code, output = run(
        ["crm_diff", "--original", original, "--new", new, "--no-version"],
        timeout=timeout,
        ok_codes=(0, 1),
    )
    return output if code == 1 and output.strip() else None


def cib_patch(patch_file: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Apply a crm_diff patch to the live CIB in one transaction."""
    run(["cibadmin", "--patch", "--xml-file", patch_file], timeout=timeout)


def simulate_transition(
    cib_file: str, *extra: str, save: str | None = None, timeout: float = 60
) -> list[str]:
    """The "Transition Summary" crm_simulate predicts for a CIB file (with status), after
    the events in `extra` (--node-up/--node-fail/--op-inject ...); `save` keeps the result."""
    args = ["crm_simulate", "--xml-file", cib_file, "--simulate", *extra]
    args += ["--save-output", save] if save else []
    _, output = run(args, timeout=timeout)
    lines = output.splitlines()
    if "Transition Summary:" not in lines:
        return []
    summary = lines[lines.index("Transition Summary:") + 1 :]
    result = []
    for line in summary:
        if not line.strip():
            break
        result.append(line.strip().lstrip("* ").strip())
    return result


def set_cluster_property(name: str, value: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    run(["crm_attribute", "-t", "crm_config", "-n", name, "-v", value], timeout=timeout)


def _true(element: Element, name: str) -> bool:
    return element.get(name, "false") == "true"
