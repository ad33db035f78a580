"""OCF 1.1 exit codes, with the names the spec gives them.

Plain integer constants rather than an IntEnum: `enum` costs ~10 ms of start-up,
and agents start on every monitor.
"""

from __future__ import annotations


class OCFExit:
    """Exit codes of an OCF resource agent (OCF 1.1, plus Pacemaker's 190/191)."""

    SUCCESS = 0
    ERR_GENERIC = 1
    ERR_ARGS = 2
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    ERR_INSTALLED = 5
    ERR_CONFIGURED = 6
    NOT_RUNNING = 7
    RUNNING_PROMOTED = 8
    FAILED_PROMOTED = 9
    DEGRADED = 190
    DEGRADED_PROMOTED = 191


EXIT_NAMES: dict[int, str] = {
    value: "OCF_" + name for name, value in vars(OCFExit).items() if name.isupper()
}


def exit_name(code: int) -> str:
    """`OCF_NOT_RUNNING` for 7; `unknown(42)` for a code outside the spec."""
    return EXIT_NAMES.get(code, f"unknown({code})")


class OCFError(Exception):
    """Raised by an action to end with `code`; `reason` becomes the exit reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
