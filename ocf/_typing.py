"""Typing names at no start-up cost.

`import typing` pulls in `re` and costs ~10 ms; agents cannot afford that on every
monitor. Type checkers see the real names; at run time cheap stand-ins are used.
"""

from __future__ import annotations

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any, Generic, TypeVar

    T = TypeVar("T")
    T_co = TypeVar("T_co", covariant=True)
else:

    class Generic:
        """Run-time stand-in for typing.Generic: `Parameter[str]` is `Parameter`."""

        def __class_getitem__(cls, item: object) -> type:
            return cls

    T = T_co = Any = Callable = Iterable = Mapping = Sequence = object

__all__ = [
    "TYPE_CHECKING",
    "Any",
    "Callable",
    "Generic",
    "Iterable",
    "Mapping",
    "Sequence",
    "T",
    "T_co",
]
