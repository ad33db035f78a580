"""What `--json` prints for the topology verbs: one JSON object on stdout, nothing else,
whose keys are always all there (README, "The command line").

`topology validate --json`:

    {"file": F, "valid": bool, "problems": [PROBLEM, ...], "not_checked": [str, ...]}

PROBLEM is {"file", "line", "column", "object", "message", "hint", "severity"}: line and
column are 1-based, null for a problem with no place in the file (one that is about the
whole file); "object" is the object the problem is about (`resources[2] "web".params`);
"hint" is "" when there is none; "severity" is "error" (every problem makes the file
invalid), or "warning" (allowed but likely unwise: `Loaded.warnings`, after the errors; the
file stays valid). "not_checked" names the checks that did not run and why.

`topology diff --json` adds to those what the text says (exit 1 when `changed`):

    {..., "changed": bool | null, "changes": [CHANGE, ...], "transition": [str, ...],
     "kept": [KEPT, ...]}

CHANGE is {"action": "add" | "change" | "remove", "kind", "id"} (kind: the CIB element,
or "property" for a cluster property, whose id is its name); "transition" is what
crm_simulate predicts, one action a line; KEPT is {"kind", "id", "reason"}: a live object
a topology cannot express, left as it is. A topology that is not valid has "changed":
null and empty lists (its problems say why).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hakit.tools.topology.apply import Change
    from hakit.tools.topology.load import Loaded
    from hakit.tools.topology.problems import Problem

ACTIONS = {"+": "add", "~": "change", "-": "remove"}


def dumps(document: object) -> str:
    """The one JSON document a verb prints (indented, keys in the order given)."""
    return json.dumps(document, indent=2, ensure_ascii=False)


def problem(found: Problem, severity: str = "error") -> dict[str, Any]:
    placed = found.line > 0
    return {
        "file": found.file,
        "line": found.line if placed else None,
        "column": found.column if placed else None,
        "object": found.where,
        "message": found.message,
        "hint": found.hint,
        "severity": severity,
    }


def validation(file: str, loaded: Loaded) -> dict[str, Any]:
    valid = not loaded.problems and loaded.topology is not None
    return {
        "file": file,
        "valid": valid,
        "problems": [problem(p) for p in loaded.problems]
        + [problem(w, "warning") for w in loaded.warnings],
        "not_checked": list(loaded.skipped),
    }


def diff(file: str, loaded: Loaded, change: Change | None) -> dict[str, Any]:
    """`diff --json`: the validation, and the change when the topology is valid."""
    document = validation(file, loaded)
    document |= {"changed": None, "changes": [], "transition": [], "kept": []}
    if change is None:
        return document
    changes = []
    for line in change.summary:
        symbol, kind, ident = [*line.split(" ", 2), "", ""][:3]
        changes.append({"action": ACTIONS.get(symbol, symbol), "kind": kind, "id": ident})
    kept = []
    for line in change.kept:  # "kind id (why)"
        head, _, why = line.partition(" (")
        kind, _, ident = head.partition(" ")
        kept.append({"kind": kind, "id": ident, "reason": why.removesuffix(")")})
    return document | {
        "changed": not change.empty,
        "changes": changes,
        "transition": list(change.transition),
        "kept": kept,
    }
