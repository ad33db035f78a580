"""Agents and their parameters, checked against the installed agents' own metadata
(what crmsh's `configure verify` checks and crm_verify does not)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from lxml import etree

from hakit.ocf import cluster
from hakit.tools.topology import model, values
from hakit.tools.topology.conventions import effective, text_value
from hakit.tools.topology.load import Loaded
from hakit.tools.topology.problems import suggest


@dataclass(frozen=True)
class AgentParameter:
    """What an agent's metadata says of one parameter."""

    required: bool
    kind: str  # string, integer, boolean, select, ...
    options: tuple[str, ...]


@cache
def agent_parameters(agent: str) -> dict[str, AgentParameter] | None:
    """The agent's parameters by name, from its metadata; None if there is no such agent."""
    metadata = cluster.agent_metadata(agent)
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
        )
    return params


def check_agents(loaded: Loaded, topology: model.Topology) -> None:
    for i, resource in enumerate(topology.resources):
        full = effective(resource, topology)
        if full.agent:
            _check_agent(loaded, full.agent, full.params, ("resources", i))
    for i, device in enumerate(topology.fencing.devices):
        _check_agent(loaded, f"stonith:{device.agent}", device.params, ("fencing", "devices", i))


def _check_agent(
    loaded: Loaded, agent: str, params: dict[str, model.Scalar], path: tuple[str | int, ...]
) -> None:
    known = agent_parameters(agent)
    if known is None:
        hint = (
            "see `stonith_admin --list-installed` (fence-agents; fence_hakit_lab exists "
            "while a lab runs)"
            if agent.startswith("stonith:")
            else "check the spelling (`crm_resource --list-agents ocf:PROVIDER`), or install "
            "it (`hakit agents install` for ocf:hakit:*)"
        )
        loaded.problem((*path, "agent"), f"agent {agent} is not installed here", hint)
        return
    stonith = agent.startswith("stonith:")
    for name, facts in known.items():
        implicit = stonith and name in ("port", "plug")  # Pacemaker passes the target
        if facts.required and name not in params and not implicit:
            loaded.problem(
                (*path, "params"),
                f"required parameter {name!r} is missing",
                f"`crm_resource --show-metadata {agent}` describes it",
            )
    for name, value in params.items():
        if name not in known:
            if stonith and name.startswith("pcmk_"):
                continue
            loaded.problem(
                (*path, "params", name),
                f"{agent} has no parameter {name!r}",
                suggest(name, list(known)),
            )
            continue
        kind = values.Kind(known[name].kind, known[name].options)
        if (why := values.problem(kind, text_value(value))) is not None:
            loaded.problem((*path, "params", name), why)
