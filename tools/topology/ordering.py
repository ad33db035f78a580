"""Orders and colocations Pacemaker cannot carry out: a resource ordered or colocated with
itself, orders inside one group (pcs refuses them), and cycles of orders, over plain
orders, order sets and the order a group or a clone implies, whatever their kind (two
Serialize orders in a circle stop the scheduler too). Pacemaker schedules nothing of a
cycle (crm_simulate: "An invalid transition was produced"); crm_verify says nothing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import pairwise

from hakit.tools.topology import model
from hakit.tools.topology.conventions import clone_id, effective
from hakit.tools.topology.load import Loaded, Path_, describe

#: An action of a resource: (name, action); containers have "start" (before their
#: children start) and "running" (after they have).
Step = tuple[str, str]


class _Graph:
    """Steps and the orders between them, each edge with the constraint that makes it."""

    def __init__(self, topology: model.Topology) -> None:
        self.edges: dict[Step, dict[Step, Path_]] = defaultdict(dict)
        self.tags = {t.name: t.resources for t in topology.tags}
        self.containers: set[str] = set()
        resources = {r.name: effective(r, topology) for r in topology.resources}
        for name, resource in resources.items():
            if resource.clone is not None:
                self._contain(clone_id(name, resource.clone), [name], ())
        for i, group in enumerate(topology.groups):
            self._contain(group.name, group.members, ("groups", i, "members"))
            if group.clone is not None:
                self._contain(clone_id(group.name, group.clone), [group.name], ())
        for bundle in topology.bundles:
            self._contain(bundle.name, [bundle.resource] if bundle.resource else [], ())

    def _contain(self, name: str, children: list[str], path: Path_) -> None:
        """A container starts before its children and runs once they do; a group's
        members start one after the other."""
        self.containers.add(name)
        chain = [(name, "start"), *((child, "start") for child in children)]
        for before, after in pairwise(chain):
            self.edges[before][after] = path
        for child in children:
            self.edges[self.after(child, "start")][(name, "running")] = ()

    def after(self, name: str, action: str) -> Step:
        """The step that follows `name`'s `action` (a container: once it has run)."""
        return (
            (name, "running") if action == "start" and name in self.containers else (name, action)
        )

    def expand(self, name: str) -> list[str]:
        return list(self.tags.get(name, [name]))

    def order(self, first: Iterable[str], then: Iterable[str], actions: Step, path: Path_) -> None:
        then = list(then)
        for before in first:
            for after in then:
                if before != after:
                    self.edges[self.after(before, actions[0])][(after, actions[1])] = path


def check_orders(loaded: Loaded, topology: model.Topology) -> None:
    """Self-colocations, self-orders, orders inside a group, and order cycles."""
    c = topology.constraints
    group_of = {m: g.name for g in topology.groups for m in g.members}
    for i, colocation in enumerate(c.colocations):
        if colocation.resource == colocation.with_:
            loaded.problem(
                ("constraints", "colocations", i, "with"),
                f"{colocation.resource!r} is colocated with itself",
                "Pacemaker ignores this; colocate it with another resource",
            )
    for i, order in enumerate(c.orders):
        path: Path_ = ("constraints", "orders", i)
        if order.first == order.then:
            loaded.problem(
                (*path, "then"),
                f"{order.first!r} is ordered after itself",
                "Pacemaker's scheduler stops on this (order_actions: lh_action != rh_action)",
            )
        elif order.first in group_of and group_of[order.first] == group_of.get(order.then):
            loaded.problem(path, *_same_group(group_of[order.first], [order.first, order.then]))
    for i, order_set in enumerate(c.order_sets):
        by_group: dict[str, list[str]] = defaultdict(list)
        for name in dict.fromkeys(n for s in order_set.sets for n in s.resources):
            if name in group_of:
                by_group[group_of[name]].append(name)
        for group, names in by_group.items():
            if len(names) > 1:
                loaded.problem(("constraints", "order_sets", i), *_same_group(group, names))
    _check_cycles(loaded, topology)


def _same_group(group: str, names: list[str]) -> tuple[str, str]:
    listed = ", ".join(repr(n) for n in names)
    return (
        f"{listed} are in group {group!r}, which already orders them",
        "pcs refuses orders inside a group; reorder the group's members instead",
    )


def _check_cycles(loaded: Loaded, topology: model.Topology) -> None:
    graph = _Graph(topology)
    c = topology.constraints
    for i, order in enumerate(c.orders):
        if order.first == order.then:
            continue
        first_action = order.first_action or "start"
        actions = (first_action, order.then_action or first_action)
        path: Path_ = ("constraints", "orders", i)
        graph.order(graph.expand(order.first), graph.expand(order.then), actions, path)
    for i, order_set in enumerate(c.order_sets):
        _order_sets(graph, order_set.sets, ("constraints", "order_sets", i))
    for cycle, paths in _cycles(graph.edges):
        _report(loaded, cycle, paths)


def _order_sets(graph: _Graph, sets: list[model.ResourceSet], path: Path_) -> None:
    """Each set after the one before it (through a barrier step), and the members of a
    sequential set one after the other."""
    previous: list[Step] = []  # (name, action) of the set before
    for j, resource_set in enumerate(sets):
        action = resource_set.action or "start"
        names = [n for name in resource_set.resources for n in graph.expand(name)]
        if resource_set.sequential is not False:
            for before, after in pairwise(names):
                graph.order([before], [after], (action, action), path)
        barrier = (f"{describe(path)}.sets[{j}]", "barrier")
        for name, previous_action in previous:
            graph.edges[graph.after(name, previous_action)][barrier] = path
        for name in names:
            graph.edges[barrier][(name, action)] = path
        previous = [(name, action) for name in names]


def _report(loaded: Loaded, cycle: list[Step], paths: list[Path_]) -> None:
    """The cycle by the resources its constraints order, at its first constraint."""
    constraints = sorted({p for p in paths if p and p[0] == "constraints"})
    if not constraints:
        return  # groups and clones alone order nothing in a circle
    first = paths.index(constraints[0])
    steps, edges = cycle[first:] + cycle[:first], paths[first:] + paths[:first]
    names: list[str] = []
    for k, path in enumerate(edges):  # the ends of the constraints' orders
        if path and path[0] == "constraints":
            for name, action in (steps[k], steps[(k + 1) % len(steps)]):
                if action != "barrier" and (not names or names[-1] != name):
                    names.append(name)
    if names[-1] != names[0]:
        names.append(names[0])
    loaded.problem(
        constraints[0],
        f"orders form a cycle: {' → '.join(names)}; Pacemaker starts none of them",
        "remove or reverse one of: " + ", ".join(describe(p, loaded) for p in constraints),
    )


def _cycles(edges: dict[Step, dict[Step, Path_]]) -> list[tuple[list[Step], list[Path_]]]:
    """One cycle (its steps and the constraints of its edges) for each strongly
    connected set of steps (Tarjan's algorithm, without recursion)."""
    index: dict[Step, int] = {}
    low: dict[Step, int] = {}
    stack: list[Step] = []
    on_stack: set[Step] = set()
    components: list[set[Step]] = []
    for root in list(edges):
        if root in index:
            continue
        work = [(root, iter(edges.get(root, {})))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(edges.get(successor, {}))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)
    return [_one_cycle(edges, component) for component in components]


def _one_cycle(
    edges: dict[Step, dict[Step, Path_]], component: set[Step]
) -> tuple[list[Step], list[Path_]]:
    """The shortest cycle through the component's first step (breadth first)."""
    start = min(component, key=lambda s: (s[1] == "barrier", s))
    came_from: dict[Step, Step] = {}
    frontier = [start]
    while frontier:
        following: list[Step] = []
        for step in frontier:
            for successor in edges.get(step, {}):
                if successor not in component or successor in came_from:
                    continue
                came_from[successor] = step
                if successor == start:
                    following = []
                    break
                following.append(successor)
            if start in came_from:
                break
        frontier = following
    cycle: list[Step] = []
    step = came_from[start]
    while step != start:
        cycle.append(step)
        step = came_from[step]
    cycle = [start, *reversed(cycle)]
    paths = [edges[a][b] for a, b in zip(cycle, [*cycle[1:], start], strict=True)]
    return cycle, paths
