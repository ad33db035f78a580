"""Metadata: valid against resource-agents' metadata.rng, escaped, complete, no secrets."""

from __future__ import annotations

from importlib import import_module
from xml.etree import ElementTree

import pytest
from lxml import etree

from hakit.ocf import Action, Agent, SecretParam, StringParam
from hakit.resource_agents import AGENTS
from tests.support import example_agent

METADATA_RNG = "/usr/share/resource-agents/metadata.rng"


@pytest.fixture(scope="module")
def schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(METADATA_RNG))


def _errors(schema: etree.RelaxNG, xml: str) -> list[str]:
    document = etree.fromstring(xml.encode())
    schema.validate(document)
    return [str(error) for error in schema.error_log]


@pytest.mark.parametrize("agent_type", sorted(AGENTS))
def test_every_hakit_agent_validates_against_metadata_rng(
    schema: etree.RelaxNG, agent_type: str
) -> None:
    agent = import_module(AGENTS[agent_type]).AGENT
    assert _errors(schema, agent.metadata()) == []


def test_reloadable_is_the_only_ocf_1_1_addition_metadata_rng_lacks(
    schema: etree.RelaxNG,
) -> None:
    """resource-agents 4.12's metadata.rng predates OCF 1.1's `reloadable` attribute, which
    Pacemaker itself uses (its own ocf:pacemaker:Dummy declares it). Without that one
    attribute, the example agent — every parameter type and action — validates."""
    xml = example_agent.AGENT.metadata()
    assert 'reloadable="1"' in xml
    errors = _errors(schema, xml)
    assert errors and all("reloadable" in error for error in errors)
    assert _errors(schema, xml.replace(' reloadable="1"', "")) == []


def test_every_action_has_a_timeout_and_the_version_is_ocf_1_1() -> None:
    root = ElementTree.fromstring(example_agent.AGENT.metadata())
    assert root.findtext("version") == "1.1"
    assert root.get("version") == "0.1"
    actions = root.findall("actions/action")
    assert {a.get("name") for a in actions} >= {
        "start",
        "stop",
        "monitor",
        "meta-data",
        "validate-all",
        "notify",
        "promote",
        "demote",
        "reload",
        "reload-agent",
        "migrate_to",
        "migrate_from",
    }
    assert all(a.get("timeout", "").endswith("s") for a in actions)
    depths = {a.get("depth") for a in actions if a.get("name") == "monitor"}
    assert depths == {None, "10"}


def test_text_is_escaped_and_round_trips() -> None:
    nasty = "a < b & \"c\" > 'd' \x01 ]]> <!-- x -->"
    agent = Agent(
        name="nasty&<",
        version='1"2',
        shortdesc=nasty,
        longdesc=nasty,
        parameters=[StringParam("p", nasty, nasty, default=nasty)],
        actions=[Action(n, lambda ctx: 0, timeout=5) for n in ("start", "stop", "monitor")],
    )
    root = ElementTree.fromstring(agent.metadata())
    expected = nasty.replace("\x01", "")
    assert root.get("name") == "nasty&<"
    assert root.findtext("shortdesc") == expected
    parameter = root.find("parameters/parameter")
    assert parameter is not None
    assert parameter.findtext("longdesc") == expected
    content = parameter.find("content")
    assert content is not None and content.get("default") == expected


def test_secret_defaults_never_appear_in_metadata() -> None:
    secret = SecretParam("password", "Password", default="hunter2")
    agent = Agent(
        name="s",
        version="1",
        shortdesc="s",
        longdesc="s",
        parameters=[secret],
        actions=[Action(n, lambda ctx: 0, timeout=5) for n in ("start", "stop", "monitor")],
    )
    assert "hunter2" not in agent.metadata()


def test_enum_parameters_become_select_with_options() -> None:
    root = ElementTree.fromstring(example_agent.AGENT.metadata())
    mode = root.find("parameters/parameter[@name='mode']/content")
    assert mode is not None and mode.get("type") == "select" and mode.get("default") == "safe"
    assert [o.get("value") for o in mode.findall("option")] == ["fast", "safe"]
    types = {
        p.get("name"): p.find("content").get("type")  # type: ignore[union-attr]
        for p in root.findall("parameters/parameter")
    }
    assert types["count"] == "integer" and types["port"] == "integer"
    assert types["flag"] == "boolean" and types["peers"] == "string"


def test_declaration_errors_are_caught_early() -> None:
    with pytest.raises(ValueError, match="requires a monitor action"):
        Agent(
            name="x",
            version="1",
            shortdesc="x",
            longdesc="x",
            parameters=[],
            actions=[Action(n, lambda ctx: 0, timeout=5) for n in ("start", "stop")],
        )
    with pytest.raises(ValueError, match="not an OCF 1.1 action"):
        Action("restart", lambda ctx: 0, timeout=5)
    with pytest.raises(ValueError, match="required parameter has no default"):
        StringParam("p", "p", required=True, default="x")
