"""Problems found in a topology: located, named, with a hint. Collected, never raised,
so that an operator fixes a file in one pass."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

#: A section's own name for a rule or a tier (letters, digits, '.', '_' and '-').
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: A problem of a section alone: its path, message and hint.
Found = tuple[tuple[str | int, ...], str, str]


def did_you_mean(word: str, choices: list[str]) -> str:
    """A hint naming the closest choice, or "" when none is close."""
    match = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean {match[0]!r}?" if match else ""


def suggest(word: str, choices: list[str]) -> str:
    """The closest choice, or the list of choices when none is close."""
    return did_you_mean(word, choices) or (f"known: {', '.join(choices)}" if choices else "")


def name_problem(
    name: str, earlier: list[str], path: tuple[str | int, ...], kind: str
) -> Found | None:
    """What is wrong with the name of a section's item at `path` (its `name` field): not
    well formed, or given to an `earlier` item too."""
    if not NAME.fullmatch(name):
        hint = "letters, digits, '.', '_' and '-', starting with a letter or digit"
        return (path, f"{name!r} is not a {kind} name", hint)
    if name in earlier:
        return (path, f"a second {kind} named {name!r}", "rename one of them")
    return None


@dataclass(frozen=True)
class Problem:
    """One thing wrong, where it is, and what to do about it."""

    file: str
    line: int  # 1-based; 0 when the problem has no place in the file
    column: int  # 1-based
    where: str  # the object, e.g. resources[2] "web".params
    message: str
    hint: str = ""

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{place}: {self.where}: {self.message}{hint}"
