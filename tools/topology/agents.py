"""Agents and their parameters, checked against the installed agents' own metadata
(what crmsh's `configure verify` and pcs check and crm_verify does not)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

from lxml import etree

from hakit.ocf import cluster
from hakit.tools.topology import model, values
from hakit.tools.topology.conventions import effective, text_value
from hakit.tools.topology.load import Loaded, Path_
from hakit.tools.topology.problems import suggest


@dataclass(frozen=True)
class AgentParameter:
    """What an agent's metadata says of one parameter."""

    required: bool
    kind: str  # string, integer, boolean, select, ...
    options: tuple[str, ...]
    obsoletes: str | None = None  # the older name this one replaces (fence agents)
    deprecated: bool = False


@dataclass(frozen=True)  # cached_property needs __dict__: no slots
class Agent:
    """An installed agent's metadata: parameters by name and action names."""

    parameters: dict[str, AgentParameter]
    actions: frozenset[str]

    def names_of(self, name: str) -> set[str]:
        """`name` and the names it replaces or is replaced by (fence agents' `ip` and
        `ipaddr`): giving one of them gives the parameter."""
        names = {name}
        for other, facts in self.parameters.items():
            if facts.obsoletes == name:
                names.add(other)
        if obsoletes := self.parameters[name].obsoletes:
            names.add(obsoletes)
        return names

    def current(self, name: str) -> str:
        """The name to give for `name`: the one not deprecated (fence agents: ip)."""
        names = sorted(self.names_of(name))
        known = self.parameters
        return next((n for n in names if n in known and not known[n].deprecated), name)

    @cached_property
    def required(self) -> dict[str, frozenset[str]]:
        """Required parameters by the name to give, with the names that also give them."""
        return {
            self.current(name): frozenset(self.names_of(name))
            for name, facts in self.parameters.items()
            if facts.required
        }


@cache
def agent(name: str) -> Agent | None:
    """The agent's metadata (read once per process); None if there is no such agent."""
    metadata = cluster.agent_metadata(name)
    if metadata is None:
        return None
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        root = etree.fromstring(metadata.encode(), parser)  # noqa: S320 — a local agent's metadata
    except etree.XMLSyntaxError:
        return None
    params: dict[str, AgentParameter] = {}
    for param in root.iterfind("parameters/parameter"):
        content = param.find("content")
        params[param.get("name", "")] = AgentParameter(
            required=param.get("required") == "1",
            kind=content.get("type", "string") if content is not None else "string",
            options=tuple(o.get("value", "") for o in param.iterfind("content/option")),
            obsoletes=param.get("obsoletes"),
            deprecated=param.get("deprecated") == "1" or param.find("deprecated") is not None,
        )
    actions = frozenset(a.get("name", "") for a in root.iterfind("actions/action"))
    return Agent(params, actions)


def agent_parameters(name: str) -> dict[str, AgentParameter] | None:
    """The agent's parameters by name, from its metadata; None if there is no such agent."""
    found = agent(name)
    return None if found is None else found.parameters


def check_agents(loaded: Loaded, topology: model.Topology) -> None:
    resources = {r.name: effective(r, topology) for r in topology.resources}
    for i, resource in enumerate(topology.resources):
        full = resources[resource.name]
        if full.agent:
            _check_agent(loaded, full.agent, full.params, ("resources", i))
            if full.clone is not None and _promotable(full.clone):
                _check_promotable(loaded, full.agent, ("resources", i), _where(full.clone))
    for i, group in enumerate(topology.groups):
        if group.clone is None or not _promotable(group.clone):
            continue
        for member in group.members:
            member_agent = resources[member].agent if member in resources else None
            if member_agent:
                _check_promotable(loaded, member_agent, ("groups", i), _where(group.clone))
    for i, device in enumerate(topology.fencing.devices):
        _check_agent(loaded, f"stonith:{device.agent}", device.params, ("fencing", "devices", i))


def _promotable(clone: model.CloneSpec) -> bool:
    return clone.promotable or text_value(clone.meta.get("promotable", False)).lower() in (
        "true",
        "yes",
        "y",
        "on",
        "1",
    )


def _where(clone: model.CloneSpec) -> Path_:
    return ("clone", "promotable") if clone.promotable else ("clone", "meta", "promotable")


def _check_promotable(loaded: Loaded, name: str, path: Path_, where: Path_) -> None:
    """pcs's check: a promotable clone needs an OCF agent with promote and demote."""
    ocf = name.startswith("ocf:") or ":" not in name  # render: ocf:heartbeat:TYPE
    found = agent(name) if ocf else None
    if not ocf:
        loaded.problem(
            (*path, *where),
            f"{name} cannot be promotable: only OCF agents can",
            "drop promotable, or use an OCF agent that promotes (e.g. ocf:pacemaker:Stateful)",
        )
    elif found is not None and not {"promote", "demote"} <= found.actions:
        loaded.problem(
            (*path, *where),
            f"{name} has no promote and demote actions: it cannot be promotable",
            "drop promotable, or use an agent that promotes (e.g. ocf:pacemaker:Stateful)",
        )


def _check_agent(
    loaded: Loaded, name: str, params: dict[str, model.Scalar], path: tuple[str | int, ...]
) -> None:
    found = agent(name)
    if found is None:
        hint = (
            "see `stonith_admin --list-installed` (fence-agents; fence_hakit_lab exists "
            "while a lab runs)"
            if name.startswith("stonith:")
            else "check the spelling (`crm_resource --list-agents ocf:PROVIDER`), or install "
            "it (`hakit agents install` for ocf:hakit:*)"
        )
        loaded.problem((*path, "agent"), f"agent {name} is not installed here", hint)
        return
    known = found.parameters
    stonith = name.startswith("stonith:")
    for param, names in found.required.items():
        implicit = stonith and names & {"port", "plug"}  # Pacemaker passes the target
        if names.isdisjoint(params) and not implicit:
            older = sorted(names - {param})
            loaded.problem(
                (*path, "params"),
                f"required parameter {param!r} is missing"
                + (f" (or its old name {older[0]!r})" if older else ""),
                f"`crm_resource --show-metadata {name}` describes it",
            )
    for param, value in params.items():
        if param not in known:
            if stonith and param.startswith("pcmk_"):
                continue
            loaded.problem(
                (*path, "params", param),
                f"{name} has no parameter {param!r}",
                suggest(param, list(known)),
            )
            continue
        kind = values.Kind(known[param].kind, known[param].options)
        text = text_value(value)
        if (why := values.problem(kind, text)) is not None:
            loaded.problem((*path, "params", param), why, values.hint(kind, text))
