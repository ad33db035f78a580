"""Problems found in a topology: located, named, with a hint. Collected, never raised,
so that an operator fixes a file in one pass."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


def did_you_mean(word: str, choices: list[str]) -> str:
    """A hint naming the closest choice, or "" when none is close."""
    match = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean {match[0]!r}?" if match else ""


def suggest(word: str, choices: list[str]) -> str:
    """The closest choice, or the list of choices when none is close."""
    return did_you_mean(word, choices) or (f"known: {', '.join(choices)}" if choices else "")


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
