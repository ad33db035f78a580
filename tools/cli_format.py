"""What every `hakit` parser shares: the help formatter that shows defaults, the parser
class that hands it to every sub-parser, `--version`, and a walk over the commands (for
the completion script and the man page)."""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

#: Where the help says this, it already names the default.
_NAMED = "default"


def shows_default(action: argparse.Action) -> bool:
    """Whether `--help` should say this option's default: one that takes a value and whose
    default says something (not None, False, SUPPRESS, or an empty list)."""
    default = action.default
    if action.nargs == 0 or isinstance(action, argparse._SubParsersAction):
        return False  # flags (store_true, --help, --version) and sub-commands
    if default is None or default is False or default is argparse.SUPPRESS:
        return False
    if isinstance(default, str | list | tuple | dict) and not default:
        return False
    return bool(action.option_strings) or action.nargs in (argparse.OPTIONAL, "*")


class DefaultsFormatter(argparse.HelpFormatter):
    """argparse's formatter, adding "(default: X)" to every option with a default worth
    saying, options without a help text included; a help that already names its default
    is left as it is."""

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and shows_default(action):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if shows_default(action) and _NAMED not in text.lower():
            text = f"{text} (default: %(default)s)"
        return text


class HakitParser(argparse.ArgumentParser):
    """An ArgumentParser whose help shows defaults. Its sub-parsers are of its class
    (argparse's `add_subparsers` makes them so), hence every `hakit` parser shows them,
    including those that other packages add through `commands.add_parser`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)


# --- --version -------------------------------------------------------------------------


def version() -> str:
    """hakit's version: the installed distribution's, else the checkout's pyproject.toml,
    else "unknown"."""
    from importlib import metadata

    try:
        return metadata.version("hakit")
    except metadata.PackageNotFoundError:
        pass
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    except (OSError, ValueError, KeyError, UnicodeError):
        return "unknown"
    found = project.get("version") if project.get("name") == "hakit" else None
    return str(found) if found else "unknown"


class VersionAction(argparse.Action):
    """`--version`: prints `hakit <version>` and exits 0; the version is looked up only
    when asked for (building the parser stays cheap)."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str = argparse.SUPPRESS,
        default: str = argparse.SUPPRESS,
        help: str = "print hakit's version and exit",
    ) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(f"hakit {version()}\n")
        parser.exit()


# --- the commands, walked ----------------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser, str]]:
    """(name, parser, one-line help) of each sub-command of `parser`, in order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            seen: set[int] = set()
            found = []
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # an alias names the same parser again
                    seen.add(id(sub))
                    found.append((name, sub, helps.get(name, "")))
            return found
    return []


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = (), text: str = ""
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """Every command, depth first: (its words after `hakit`, its parser, its help)."""
    yield path, parser, text
    for name, sub, help_text in subcommands(parser):
        yield from walk(sub, (*path, name), help_text)


def arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options and positional arguments `parser` documents (not its sub-commands)."""
    return [
        a
        for a in parser._actions
        if not isinstance(a, argparse._SubParsersAction) and a.help is not argparse.SUPPRESS
    ]


def usage(parser: argparse.ArgumentParser) -> str:
    """The usage line, without "usage: " and unwrapped (whatever the terminal width)."""
    formatter = argparse.HelpFormatter(prog=parser.prog, width=100_000)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, "")
    return " ".join(formatter.format_help().split())


def metavar(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """How the help names the value of `action` ("" for a flag)."""
    if action.nargs == 0:
        return ""
    formatter = parser._get_formatter()
    if action.option_strings:
        return formatter._format_args(action, action.dest.upper())
    return formatter._format_args(action, action.dest)


def help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help of `action` as `--help` says it (defaults included)."""
    formatter = parser._get_formatter()
    if action.help is None:
        if not shows_default(action) or not isinstance(formatter, DefaultsFormatter):
            return ""
        action = copy.copy(action)
        action.help = "(default: %(default)s)"
    return formatter._expand_help(action)
