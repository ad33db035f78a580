"""Failover timelines from the cluster's own logs, with millisecond timestamps.

crm_mon blocks while membership re-forms, so polling it hides when things happened;
Pacemaker's log lines (`timestamp: hires`) do not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Event:
    """One thing that happened, when, and where it was logged."""

    at: float  # epoch seconds
    node: str
    what: str


#: (substring of a pacemaker.log line, description); {target}/{rsc} are filled in.
PATTERNS = [
    ("state is now lost", "{target} lost from the membership"),
    ("Requesting fencing", "fencing of {target} requested"),
    ("targeting {target}", "fencing of {target} complete"),
    ("Result of start operation for {rsc} on", "{rsc} started"),
    ("state is now member", "{target} back in the membership"),
]


def parse_time(line: str, year: int) -> float | None:
    """Epoch seconds of a pacemaker.log line ("Nov 24 19:57:53.269 node2 ...")."""
    try:
        stamp = " ".join(line.split()[:3])
        base, _, millis = stamp.partition(".")
        parsed = time.strptime(f"{year} {base}", "%Y %b %d %H:%M:%S")
        return time.mktime(parsed) + int(millis or 0) / 1000
    except (ValueError, IndexError):
        return None


def matching_lines(
    logs: dict[str, Path], since: float, match: Callable[[str], Iterable[R]]
) -> Iterator[tuple[float, str, R]]:
    """(time, node, result) for every result `match` finds in a log line at or after
    `since`; only matching lines have their time parsed."""
    year = time.localtime(since).tm_year
    for node, path in logs.items():
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            results = list(match(line))
            if not results:
                continue
            at = parse_time(line, year)
            if at is None or at < since:
                continue
            for result in results:
                yield at, node, result


def failover_events(
    logs: dict[str, Path], *, since: float, target: str, resource: str
) -> list[Event]:
    """The first occurrence of each failover step after `since`, in time order."""

    def labels(line: str) -> Iterator[str]:
        for needle, what in PATTERNS:
            key = needle.format(target=target, rsc=resource)
            if key not in line or (needle.startswith("state is") and target not in line):
                continue
            if needle.startswith("targeting") and "OK (complete)" not in line:
                continue
            label = what.format(target=target, rsc=resource)
            if label.endswith("started"):
                label = f"{resource} started on {line.split(' on ')[-1].split(':')[0]}"
            yield label

    first: dict[str, Event] = {}
    for at, node, label in matching_lines(logs, since, labels):
        if label not in first or at < first[label].at:
            first[label] = Event(at, node, label)
    return sorted(first.values(), key=lambda e: e.at)
