"""Checks of rules and of the scored, ruled sets: a rule that parses, a score that is
one, an id that can be one (attribute and property sets, resource sets)."""

from __future__ import annotations

from hakit.tools.topology import model, rules
from hakit.tools.topology.ids import id_problem
from hakit.tools.topology.load import Loaded, Path_

SCORE_WORDS = {"INFINITY", "+INFINITY", "-INFINITY"}
SCORE_HINT = "an integer, INFINITY or -INFINITY"


def is_score(text: str) -> bool:
    return text in SCORE_WORDS or text.lstrip("+-").isdigit()


def check_rule(loaded: Loaded, text: str, path: Path_) -> rules.Rule | None:
    """The parsed rule, or None after reporting where it goes wrong."""
    try:
        return rules.parse(text)
    except rules.RuleError as error:
        loaded.problem(path, f"rule: {error}", error.hint, offset=error.column)
        return None


def check_rule_sets(loaded: Loaded, topology: model.Topology) -> None:
    """Further attribute sets of resources, property sets, and resource sets' options."""
    owners: list[tuple[Path_, list[model.NvSet]]] = [
        (("cluster", "property_sets"), topology.cluster.property_sets)
    ]
    for i, resource in enumerate(topology.resources):
        owners.append((("resources", i, "instance_sets"), resource.instance_sets))
        owners.append((("resources", i, "meta_sets"), resource.meta_sets))
    for base, sets in owners:
        for j, item in enumerate(sets):
            path = (*base, j)
            problem = id_problem(item.id)
            if problem:
                loaded.problem((*path, "id"), f"{item.id!r} cannot be an id: {problem}")
            if item.rule is not None:
                check_rule(loaded, item.rule, (*path, "rule"))
            if item.score is not None and not is_score(item.score):
                loaded.problem((*path, "score"), f"{item.score!r} is not a score", SCORE_HINT)
    c = topology.constraints
    owned: list[tuple[Path_, list[model.ResourceSet]]] = [
        *((("constraints", "colocation_sets", i), x.sets) for i, x in enumerate(c.colocation_sets)),
        *((("constraints", "order_sets", i), x.sets) for i, x in enumerate(c.order_sets)),
        *((("constraints", "tickets", i), x.sets) for i, x in enumerate(c.tickets)),
    ]
    for base, resource_sets in owned:
        for j, resource_set in enumerate(resource_sets):
            _check_resource_set(loaded, resource_set, (*base, "sets", j))


def _check_resource_set(loaded: Loaded, item: model.ResourceSet, path: Path_) -> None:
    if item.score is not None and not is_score(item.score):
        loaded.problem((*path, "score"), f"{item.score!r} is not a score", SCORE_HINT)
    if item.score is not None and item.kind is not None:
        loaded.problem(path, "a set has a score or a kind, not both", "keep one of them")
    if item.id is not None and (problem := id_problem(item.id)):
        loaded.problem((*path, "id"), f"{item.id!r} cannot be an id: {problem}")
