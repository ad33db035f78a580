"""Exit codes of every `hakit` command (the README's table), and the one function that
turns what went wrong into one line on stderr and its code: no traceback, ever."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

OK = 0  # done; valid; no difference
NO = 1  # the answer is no: problems found, differences, a failed drill, objects dropped
USAGE = 2  # bad arguments or input: unknown names, unreadable or malformed files
ENVIRONMENT = 3  # no cluster answers, a program fails or is missing, no permission
SOFTWARE = 70  # a bug in hakit: a crash log is written, please report it
INTERRUPTED = 130


class UsageError(ValueError):
    """Bad arguments or input; str() says what and what to do."""

    exit_code = USAGE


class EnvironmentProblem(Exception):
    """Something around the command is missing or refuses; str() says what."""

    exit_code = ENVIRONMENT


def port(text: str) -> int:
    """argparse type: a TCP port (1-65535)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1-65535)")
    return value


def count(text: str) -> int:
    """argparse type: a whole number from 1 (nodes, repeats)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"{value} must be between 1 and 100000")
    return value


def positive(text: str) -> float:
    """argparse type: a number above zero (seconds, a count)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1e9:
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def add_confirmation(parser: argparse.ArgumentParser, *, dry_run: bool = True) -> None:
    """--yes (and --dry-run) on a verb that cuts, kills, fences, applies or deletes."""
    parser.add_argument("--yes", action="store_true", help="go ahead without asking")
    if dry_run:
        parser.add_argument(
            "--dry-run", action="store_true", help="print what it would do, do nothing"
        )


def confirm(args: argparse.Namespace, action: str) -> None:
    """Go ahead with `action` (destructive) only when told: --yes, or "y" typed at a
    terminal; UsageError otherwise, before anything is done."""
    if getattr(args, "yes", False):
        return
    if sys.stdin.isatty() and sys.stderr.isatty():
        print(f"{action}. Go ahead? [y/N] ", end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().lower() in ("y", "yes"):
            return
        raise UsageError("not confirmed; nothing done")
    hint = " (--dry-run shows what it would do)" if hasattr(args, "dry_run") else ""
    raise UsageError(f"{action}: add --yes to go ahead{hint}")


def code_for(error: BaseException) -> tuple[int, str]:
    """The exit code of `error` and the line that explains it."""
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    code = getattr(error, "exit_code", None)
    if isinstance(code, int):
        return code, str(error)
    if type(error).__name__ == "ClusterCommandError":
        return ENVIRONMENT, f"{error} (is the cluster running here?)"
    if isinstance(error, PermissionError):
        return ENVIRONMENT, f"{error.strerror}: {error.filename} (run as root?)"
    if isinstance(error, FileNotFoundError | IsADirectoryError | NotADirectoryError):
        return USAGE, f"{error.strerror}: {error.filename}"
    if isinstance(error, OSError):
        return ENVIRONMENT, str(error)
    if isinstance(error, UnicodeError):
        return USAGE, f"not UTF-8 text: {error}"
    if isinstance(error, RecursionError):
        return USAGE, "the input is nested too deeply"
    if type(error).__module__ in ("sqlite3", "_sqlite3"):
        return ENVIRONMENT, f"database: {error}"
    return SOFTWARE, ""


def run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace, prog: str) -> int:
    """Call a verb; a failure becomes one line on stderr and its exit code (70 for a bug,
    with the traceback in a crash log)."""
    try:
        return int(func(args))
    except Exception as error:
        code, line = code_for(error)
        if code == SOFTWARE:
            line = _crash_log(error)
        print(f"{prog}: {line}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return INTERRUPTED


def _crash_log(error: Exception) -> str:
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix="hakit-crash-", suffix=".log", delete=False
    ) as report:
        traceback.print_exception(error, file=report)
    return (
        f"internal error: {type(error).__name__}: {error} (details: {report.name}; "
        "please report it)"
    )
