"""What-if on a topology: fail a node or an operation and read crm_simulate's answer.

Without a live cluster, every node of the topology is brought up and every ticket its
constraints name is granted in the simulation first, so the failure hits a cluster that
has placed its resources. Ticket events (`revoke:T`, `standby:T`, ...) are failures too.
A remote node fails as Pacemaker sees it fail: its connection resource's monitor fails
where it runs (crm_simulate's --node-fail changes nothing for a remote node).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from lxml import etree

from hakit.ocf import cluster
from hakit.tools.topology import model, remotes
from hakit.tools.topology.apply import read_cib
from hakit.tools.topology.conventions import effective
from hakit.tools.topology.problems import did_you_mean
from hakit.tools.topology.render import render, to_text

_ACTION = re.compile(
    r"^(?P<action>\w+)(?: \((?P<kind>\w+)\))?\s+(?P<what>\S+)\s*"
    r"(?:\(\s*(?P<where>[^)]*?)\s*\))?\s*(?P<reason>.*)$"
)


@dataclass(frozen=True)
class Action:
    """One step of the predicted transition."""

    action: str  # Start, Stop, Move, Restart, Recover, Promote, Demote, Fence
    target: str  # the resource (or, for Fence, the node)
    from_node: str | None
    to_node: str | None
    reason: str

    def __str__(self) -> str:
        where = (
            f"{self.from_node} -> {self.to_node}"
            if self.from_node and self.to_node
            else (self.to_node or self.from_node or "")
        )
        return f"{self.action:<8} {self.target:<24} {where}  {self.reason}".rstrip()


def parse(line: str) -> Action:
    match = _ACTION.match(line)
    if match is None:
        return Action(line.split()[0] if line else "?", line, None, None, "")
    where = match.group("where") or ""
    from_node, _, to_node = where.partition("->")
    if not to_node:
        from_node, to_node = where, ""
    if match.group("action") in ("Start", "Promote"):
        from_node, to_node = "", from_node
    action = match.group("action") + (f" ({match.group('kind')})" if match.group("kind") else "")
    return Action(
        action,
        match.group("what"),
        from_node.strip() or None,
        to_node.strip() or None,
        match.group("reason").strip(),
    )


STANDARD_OPS = (
    "start",
    "stop",
    "monitor",
    "promote",
    "demote",
    "notify",
    "migrate_to",
    "migrate_from",
)


def what_if(
    topology: model.Topology,
    *,
    fail_node: str | None = None,
    fail_op: str | None = None,
    tickets: list[str] | None = None,
    cib_file: str | None = None,
    keep: Path | None = None,
) -> tuple[list[Action], list[Action]]:
    """(initial placement, reaction to the failure). `fail_op` is RSC:OP:NODE; `tickets`
    are ACTION:TICKET events (grant, revoke, standby, activate). ValueError names what
    does not exist (a node, a resource, an operation, a ticket, the CIB file). `keep`: a
    directory to keep the CIB before and after the failure in (placed.xml, after.xml)."""
    start_cib = _start_cib(topology, cib_file)
    nodes = [n.get("uname", "") for n in start_cib.iterfind("configuration/nodes/node")]
    nodes += [n.name for n in topology.nodes if n.name not in nodes]
    connections = _connections(start_cib)
    nodes += [name for name in connections if name not in nodes]
    events = [arg for spec in tickets or [] for arg in ticket_event(topology, spec)]
    if fail_node:
        _known("node", fail_node, nodes)
        events += [] if fail_node in connections else ["--node-fail", fail_node]
    if fail_op:
        events += ["--op-inject", op_key(remotes.expand(topology), fail_op, nodes)]
    with tempfile.TemporaryDirectory(prefix="hakit-simulate-") as workdir:
        start, placed_file = Path(workdir) / "start.xml", str(Path(workdir) / "placed.xml")
        start.write_text(to_text(start_cib))
        if cib_file:
            placed = cluster.simulate_transition(str(start), save=placed_file)
        else:
            up = [arg for node in topology.nodes for arg in ("--node-up", node.name)]
            up += [arg for name in ticket_names(topology) for arg in ("--ticket-grant", name)]
            placed = cluster.simulate_transition(
                str(start), "--quorum", "true", *up, save=placed_file
            )
        if fail_node in connections:
            events += ["--op-inject", _connection_lost(placed_file, fail_node)]
        after = str(keep / "after.xml") if keep else None
        reaction = cluster.simulate_transition(placed_file, "--quorum", "true", *events, save=after)
        if keep:
            (keep / "placed.xml").write_bytes(Path(placed_file).read_bytes())
    return [parse(line) for line in placed], [parse(line) for line in reaction]


def _connections(cib: etree._Element) -> list[str]:
    """The remote nodes: ocf:pacemaker:remote resources of the CIB, by id."""
    path = "configuration/resources//primitive[@class='ocf'][@provider='pacemaker']"
    return [str(p.get("id")) for p in cib.iterfind(f"{path}[@type='remote']")]


def _connection_lost(cib_file: str, name: str) -> str:
    """A remote node's loss, as crm_simulate can say it: its connection's recurring
    monitor fails where the connection runs (--node-fail does nothing to a remote node,
    whose state is its connection's). ValueError when the connection does not run."""
    status = read_cib(Path(cib_file).read_text(encoding="utf-8"), cib_file).find("status")
    ops = f"lrm/lrm_resources/lrm_resource[@id='{name}']/lrm_rsc_op[@operation='monitor']"
    for state in () if status is None else status.iterfind("node_state"):
        for op in state.iterfind(ops):
            if op.get("interval", "0") != "0" and op.get("rc-code") == "0":
                return f"{name}_monitor_{op.get('interval')}@{state.get('uname')}=1"
    raise ValueError(f"remote node {name!r} is not connected: its connection resource is stopped")


def _start_cib(topology: model.Topology, cib_file: str | None) -> etree._Element:
    if not cib_file:
        return render(topology)
    try:
        text = Path(cib_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {cib_file}: {error}") from None
    return read_cib(text, cib_file)


def _known(kind: str, name: str, known: list[str]) -> None:
    if name not in known:
        hint = did_you_mean(name, known) or f"known: {', '.join(known) or 'none'}"
        raise ValueError(f"no {kind} {name!r} ({hint})")


TICKET_ACTIONS = ("grant", "revoke", "standby", "activate")


def ticket_names(topology: model.Topology) -> list[str]:
    return sorted({t.ticket for t in topology.constraints.tickets})


def ticket_event(topology: model.Topology, spec: str) -> list[str]:
    """revoke:T → crm_simulate's --ticket-revoke T."""
    action, _, name = spec.partition(":")
    if action not in TICKET_ACTIONS or not name:
        raise ValueError(
            f"{spec!r}: expected ACTION:TICKET, ACTION one of {', '.join(TICKET_ACTIONS)}"
        )
    _known("ticket", name, ticket_names(topology))
    return [f"--ticket-{action}", name]


def op_key(topology: model.Topology, spec: str, nodes: list[str]) -> str:
    """RSC:OP:NODE → crm_simulate's RSC_OP_INTERVALMS@NODE=1 (a failed operation)."""
    try:
        rsc, op, node = spec.split(":")
    except ValueError:
        raise ValueError(f"{spec!r}: expected RESOURCE:OPERATION:NODE") from None
    resources = {r.name: r for r in topology.resources}
    _known("resource", rsc, sorted(resources))
    _known("node", node, nodes)
    declared = [o for o in effective(resources[rsc], topology).ops if o.name == op]
    _known(f"operation of {rsc}", op, sorted({*STANDARD_OPS, *(o.name for o in declared)}))
    interval_ms = _ms(declared[0].interval) if declared else 0
    return f"{rsc}_{op}_{interval_ms}@{node}=1"


def _ms(interval: str) -> int:
    units = {"ms": 1, "s": 1000, "m": 60000, "min": 60000, "h": 3600000}
    match = re.fullmatch(r"(\d+)\s*(ms|s|min|m|h)?", interval.strip())
    if not match:
        return 0
    return int(match.group(1)) * units[match.group(2) or "s"]


def as_json(placed: list[Action], reaction: list[Action]) -> dict[str, object]:
    return {"initial": [asdict(a) for a in placed], "reaction": [asdict(a) for a in reaction]}
