"""CIB constraints → the topology's, and the ids a topology may leave to pcs's defaults
(`importer` runs these)."""

from __future__ import annotations

from lxml import etree

from hakit.tools.topology import model, roundtrip, rules
from hakit.tools.topology.render import render


def flag(element: etree._Element, key: str) -> bool | None:
    value = element.get(key)
    return None if value is None else value.lower() in ("true", "yes", "on", "1", "y")


def read_constraints(topology: model.Topology, config: etree._Element, skipped: list[str]) -> None:
    c = topology.constraints
    for element in config.iterfind("constraints/*"):
        cid = element.get("id")
        if element.find("resource_set") is not None:
            _import_set_constraint(c, element, skipped)
        elif element.tag == "rsc_location":
            _import_location(c, element, skipped)
        elif element.tag == "rsc_ticket":
            c.tickets.append(
                model.Ticket(
                    id=cid,
                    ticket=element.get("ticket", ""),
                    resource=element.get("rsc"),
                    role=element.get("rsc-role"),  # type: ignore[arg-type]
                    loss_policy=element.get("loss-policy"),  # type: ignore[arg-type]
                )
            )
        elif element.tag == "rsc_colocation":
            c.colocations.append(
                model.Colocation(
                    id=cid,
                    resource=element.get("rsc", ""),
                    with_=element.get("with-rsc", ""),
                    score=element.get("score", "INFINITY"),
                    role=element.get("rsc-role"),  # type: ignore[arg-type]
                    with_role=element.get("with-rsc-role"),  # type: ignore[arg-type]
                    node_attribute=element.get("node-attribute"),
                )
            )
        elif element.tag == "rsc_order":
            c.orders.append(
                model.Order(
                    id=cid,
                    first=element.get("first", ""),
                    then=element.get("then", ""),
                    kind=element.get("kind"),  # type: ignore[arg-type]
                    first_action=element.get("first-action"),  # type: ignore[arg-type]
                    then_action=element.get("then-action"),  # type: ignore[arg-type]
                    symmetrical=flag(element, "symmetrical"),
                    require_all=flag(element, "require-all"),
                )
            )
        else:
            skipped.append(f"{element.tag} {cid}: not in the topology model yet")


def _import_location(c: model.Constraints, element: etree._Element, skipped: list[str]) -> None:
    """A location for a node, or with one rule."""
    found = element.findall("rule")
    if len(found) > 1:
        skipped.append(
            f"rsc_location {element.get('id')}: {len(found)} rules in one constraint (a "
            "topology location has one; kept as it is by diff and apply)"
        )
        return
    try:
        text = rules.to_text(rules.from_element(found[0])) if found else None
    except ValueError as error:
        skipped.append(f"rsc_location {element.get('id')}: its rule ({error})")
        return
    common = {
        "resource": element.get("rsc"),
        "resource_pattern": element.get("rsc-pattern"),
        "resource_discovery": element.get("resource-discovery"),
    }
    if not found:
        c.locations.append(
            model.Location(
                id=element.get("id"),
                node=element.get("node", ""),
                score=element.get("score", "INFINITY"),
                role=element.get("role"),  # type: ignore[arg-type]
                **common,  # type: ignore[arg-type]
            )
        )
    for rule in found:
        c.locations.append(
            model.Location(
                id=element.get("id"),
                rule=text,
                score=rule.get("score", "INFINITY"),
                score_attribute=rule.get("score-attribute"),
                role=rule.get("role"),  # type: ignore[arg-type]
                **common,  # type: ignore[arg-type]
            )
        )


def _resource_sets(element: etree._Element) -> list[model.ResourceSet]:
    return [
        model.ResourceSet(
            id=item.get("id"),
            resources=[r.get("id", "") for r in item.iterfind("resource_ref")],
            sequential=flag(item, "sequential"),
            require_all=flag(item, "require-all"),
            ordering=item.get("ordering"),  # type: ignore[arg-type]
            role=item.get("role"),  # type: ignore[arg-type]
            action=item.get("action"),  # type: ignore[arg-type]
            kind=item.get("kind"),  # type: ignore[arg-type]
            score=item.get("score"),
        )
        for item in element.iterfind("resource_set")
    ]


def _import_set_constraint(
    c: model.Constraints, element: etree._Element, skipped: list[str]
) -> None:
    sets, cid = _resource_sets(element), element.get("id")
    if element.tag == "rsc_colocation":
        score = element.get("score", "INFINITY")
        c.colocation_sets.append(model.ColocationSet(id=cid, sets=sets, score=score))
    elif element.tag == "rsc_order":
        c.order_sets.append(
            model.OrderSet(
                id=cid,
                sets=sets,
                kind=element.get("kind"),  # type: ignore[arg-type]
                symmetrical=flag(element, "symmetrical"),
            )
        )
    elif element.tag == "rsc_ticket":
        c.tickets.append(
            model.Ticket(
                id=cid,
                ticket=element.get("ticket", ""),
                sets=sets,
                loss_policy=element.get("loss-policy"),  # type: ignore[arg-type]
            )
        )
    else:
        skipped.append(f"{element.tag} {cid}: resource sets here are not supported")


def _by_tag(c: model.Constraints) -> list[tuple[str, list[object]]]:
    """The model's constraint lists, each with the CIB element it renders."""
    return [
        ("rsc_location", c.locations),  # type: ignore[list-item]
        ("rsc_colocation", c.colocations),  # type: ignore[list-item]
        ("rsc_order", c.orders),  # type: ignore[list-item]
        ("rsc_colocation", c.colocation_sets),  # type: ignore[list-item]
        ("rsc_order", c.order_sets),  # type: ignore[list-item]
        ("rsc_ticket", c.tickets),  # type: ignore[list-item]
    ]


def leave_out(topology: model.Topology, lost: set[str]) -> set[str]:
    """Constraints the topology would say otherwise are left out of it (diff and apply
    keep them as they are); their keys."""
    left_out = set()
    for tag, items in _by_tag(topology.constraints):
        for item in list(items):
            key = f"{tag} {getattr(item, 'id', None)}"
            if key in lost:
                items.remove(item)
                left_out.add(key)
    return left_out


def _identified(topology: model.Topology) -> list[tuple[str, list[object]]]:
    """Per CIB object (`kind id`): the model objects whose ids it holds."""
    found: list[tuple[str, list[object]]] = []
    levels: list[object] = list(topology.fencing.levels)
    for tag, items in [*_by_tag(topology.constraints), ("fencing-level", levels)]:
        for item in items:
            given = getattr(item, "id", None)
            if given:
                found.append((f"{tag} {given}", [item, *getattr(item, "sets", [])]))
    for alert in topology.alerts:
        found.append((f"alert {alert.name}", list(alert.recipients)))
    return found


def drop_generated_ids(topology: model.Topology, original: etree._Element) -> None:
    """Leave out the ids render generates the same way; an object whose ids then come
    out differently (pcs's -1, -2 suffixes can shift) keeps them."""
    owners = _identified(topology)
    given = [(key, [(item, getattr(item, "id", None)) for item in items]) for key, items in owners]
    before = set(roundtrip.losses(original, render(topology)))
    for _, items in given:
        for item, _ in items:
            item.id = None  # type: ignore[attr-defined]
    for _ in range(4):
        lost = {line.split(":", 1)[0] for line in roundtrip.losses(original, render(topology))}
        lost -= {line.split(":", 1)[0] for line in before}
        if not lost:
            return
        for key, items in given:
            if key in lost:  # the object's own id first, then those inside it
                dropped = [(item, value) for item, value in items if item.id != value]  # type: ignore[attr-defined]
                for item, value in dropped[:1] if dropped[0][0] is items[0][0] else dropped:
                    item.id = value  # type: ignore[attr-defined]
    for _, items in given:
        for item, value in items:
            item.id = value  # type: ignore[attr-defined]
