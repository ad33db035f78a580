"""Typed agent parameters: declaration, metadata facts and parsing of OCF_RESKEY_* values.

Each parameter class knows how to turn the string Pacemaker passes into a Python
value and which OCF exit code a bad value deserves:

- a value that is wrong everywhere (bad type, not one of the choices) is
  OCF_ERR_CONFIGURED (6);
- a file or program missing on this node is OCF_ERR_INSTALLED (5), so the
  resource is banned from this node only.
"""

from __future__ import annotations

import os

from ._typing import TYPE_CHECKING, Generic, T, T_co
from .codes import OCFError, OCFExit

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any, TypedDict, Unpack

    class CommonOptions(TypedDict, total=False):
        """Keyword options every parameter type accepts."""

        default: str | None
        required: bool
        unique: bool
        reloadable: bool


_TRUE = frozenset({"1", "true", "yes", "on", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "n"})


class ParameterError(OCFError):
    """A parameter value that cannot be used; `code` says how bad (5 or 6)."""


class Parameter(Generic[T_co]):
    """One declared parameter. Subclasses define `content_type` and `parse`."""

    content_type = "string"
    type_hint = "a string"
    #: An empty value means "not set" (for strings and lists it is a value of its own).
    empty_is_unset = True

    def __init__(
        self,
        name: str,
        shortdesc: str,
        longdesc: str = "",
        *,
        default: str | None = None,
        required: bool = False,
        unique: bool = False,
        reloadable: bool = False,
    ) -> None:
        if required and default is not None:
            raise ValueError(f"parameter {name}: a required parameter has no default")
        self.name = name
        self.shortdesc = shortdesc
        self.longdesc = longdesc or shortdesc
        self.default = default
        self.required = required
        self.unique = unique
        self.reloadable = reloadable

    @property
    def env_name(self) -> str:
        return "OCF_RESKEY_" + self.name

    @property
    def secret(self) -> bool:
        return False

    def parse(self, raw: str) -> T_co:
        """Turn the raw string into a value, or raise ParameterError."""
        raise NotImplementedError

    def check_installed(self, value: object) -> None:
        """Raise ParameterError(ERR_INSTALLED) if something on this node is missing."""

    def bad(self, raw: str, why: str = "") -> ParameterError:
        shown = "(hidden)" if self.secret else repr(raw)
        return ParameterError(
            OCFExit.ERR_CONFIGURED,
            f"parameter {self.name}={shown} is not {self.type_hint}{': ' + why if why else ''}",
        )

    def select_options(self) -> Sequence[str]:
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class StringParam(Parameter[str]):
    empty_is_unset = False

    def parse(self, raw: str) -> str:
        return raw


class SecretParam(StringParam):
    """A string that is never logged, never shown in metadata, never put on a command line."""

    type_hint = "a secret string"

    @property
    def secret(self) -> bool:
        return True


class IntegerParam(Parameter[int]):
    content_type = "integer"
    type_hint = "an integer"

    def __init__(
        self,
        name: str,
        shortdesc: str,
        longdesc: str = "",
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        **options: Unpack[CommonOptions],
    ) -> None:
        super().__init__(name, shortdesc, longdesc, **options)
        self.minimum = minimum
        self.maximum = maximum
        if minimum is not None or maximum is not None:
            low = "" if minimum is None else f" from {minimum}"
            high = "" if maximum is None else f" to {maximum}"
            self.type_hint = f"an integer{low}{high}"

    def parse(self, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise self.bad(raw) from None
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise self.bad(raw, "out of range")
        return value


class PortParam(IntegerParam):
    type_hint = "a TCP/UDP port (1-65535)"

    def __init__(
        self, name: str, shortdesc: str, longdesc: str = "", **options: Unpack[CommonOptions]
    ) -> None:
        super().__init__(name, shortdesc, longdesc, minimum=1, maximum=65535, **options)
        self.type_hint = PortParam.type_hint


class BooleanParam(Parameter[bool]):
    content_type = "boolean"
    type_hint = "a boolean (true/false, yes/no, 1/0)"

    def parse(self, raw: str) -> bool:
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise self.bad(raw)


class EnumParam(Parameter[str]):
    content_type = "select"

    def __init__(
        self,
        name: str,
        shortdesc: str,
        longdesc: str = "",
        *,
        choices: Sequence[str],
        **options: Unpack[CommonOptions],
    ) -> None:
        super().__init__(name, shortdesc, longdesc, **options)
        if not choices:
            raise ValueError(f"parameter {name}: an enum needs choices")
        if self.default is not None and self.default not in choices:
            raise ValueError(f"parameter {name}: default {self.default!r} is not a choice")
        self.choices = tuple(choices)
        self.type_hint = "one of " + ", ".join(self.choices)

    def select_options(self) -> Sequence[str]:
        return self.choices

    def parse(self, raw: str) -> str:
        if raw in self.choices:
            return raw
        raise self.bad(raw)


class PathParam(Parameter[str]):
    """A file system path. `must_exist` / `executable` are checked as installation facts.

    A bare program name (no slash) with `executable=True` is looked up in PATH.
    """

    type_hint = "an absolute path"

    def __init__(
        self,
        name: str,
        shortdesc: str,
        longdesc: str = "",
        *,
        must_exist: bool = False,
        executable: bool = False,
        **options: Unpack[CommonOptions],
    ) -> None:
        super().__init__(name, shortdesc, longdesc, **options)
        self.must_exist = must_exist or executable
        self.executable = executable
        if executable:
            self.type_hint = "an absolute path or a program name in PATH"

    def parse(self, raw: str) -> str:
        value = raw.strip()
        if not value or "\0" in value:
            raise self.bad(raw, "empty")
        if not value.startswith("/") and not (self.executable and "/" not in value):
            raise self.bad(raw, "relative paths depend on the agent's working directory")
        return value

    def check_installed(self, value: object) -> None:
        value = str(value)
        if self.executable:
            found = find_program(value)
            if found is None:
                raise ParameterError(
                    OCFExit.ERR_INSTALLED, f"{self.name}: program {value} is not installed here"
                )
            if not os.access(found, os.X_OK) or os.path.isdir(found):
                raise ParameterError(
                    OCFExit.ERR_INSTALLED, f"{self.name}: {found} is not executable"
                )
        elif self.must_exist and not os.path.exists(value):
            raise ParameterError(
                OCFExit.ERR_INSTALLED, f"{self.name}: {value} does not exist on this node"
            )


class ListParam(Parameter[list[str]]):
    """A list of words, separated by whitespace or commas."""

    type_hint = "a list of words separated by spaces or commas"
    empty_is_unset = False

    def parse(self, raw: str) -> list[str]:
        return raw.replace(",", " ").split()


def find_program(name: str) -> str | None:
    """Absolute path of `name` (itself when it has a slash, else searched in PATH)."""
    if "/" in name:
        return name if os.path.exists(name) else None
    for folder in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        candidate = os.path.join(folder or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class ParameterValues:
    """Parsed values of an agent's parameters for one action.

    Collects every problem instead of stopping at the first. In `lenient` mode (stop
    and probes, which must work even with a broken configuration) problems are kept
    for logging and a bad parameter raises only when an action actually reads it.
    """

    def __init__(self, parameters: Sequence[Parameter[Any]], environ: Mapping[str, str]) -> None:
        self._values: dict[str, object] = {}
        self._errors: dict[str, ParameterError] = {}
        self.raw: dict[str, str] = {}
        for param in parameters:
            raw = environ.get(param.env_name)
            if raw is not None:
                self.raw[param.name] = raw
            if raw is None or (raw == "" and param.default is not None and param.empty_is_unset):
                raw = param.default
            if raw is None or (raw == "" and (param.empty_is_unset or param.required)):
                if param.required:
                    self._errors[param.name] = ParameterError(
                        OCFExit.ERR_CONFIGURED, f"required parameter {param.name} is not set"
                    )
                self._values[param.name] = None
                continue
            try:
                value = param.parse(raw)
                param.check_installed(value)
            except ParameterError as error:
                self._errors[param.name] = error
                value = None
            self._values[param.name] = value
        self.secrets = [self.raw[p.name] for p in parameters if p.secret and self.raw.get(p.name)]

    @property
    def problems(self) -> list[ParameterError]:
        """Every problem, configuration errors (6) first, then installation ones (5)."""
        return sorted(self._errors.values(), key=lambda e: -e.code)

    def first_problem(self) -> ParameterError | None:
        problems = self.problems
        if not problems:
            return None
        if len(problems) > 1:
            same = [p for p in problems if p.code == problems[0].code]
            return ParameterError(problems[0].code, "; ".join(p.reason for p in same))
        return problems[0]

    def get(self, param: Parameter[T]) -> T | None:
        """The value, None when unset (even if required); raises if the value is bad."""
        error = self._errors.get(param.name)
        if error is not None and self._values.get(param.name) is None and param.name in self.raw:
            raise error
        return self._values.get(param.name)  # type: ignore[return-value]

    def __getitem__(self, param: Parameter[T]) -> T:
        """The value; an unset parameter raises OCF_ERR_CONFIGURED."""
        value = self.get(param)
        if value is None:
            raise self._errors.get(param.name) or ParameterError(
                OCFExit.ERR_CONFIGURED, f"parameter {param.name} is not set"
            )
        return value
