"""Declarative OCF agents: parameters and actions in, a compliant executable out.

    AGENT = Agent(
        name="service", version="1.0", shortdesc="...", longdesc="...",
        parameters=[BINARY, ...],
        actions=[Action("start", start, timeout=60), Action("stop", stop, timeout=60), ...],
    )
    if __name__ == "__main__":
        AGENT.main()

`Agent.run` dispatches one action and guarantees an OCF exit code: wrong use → 2,
unknown action → 3, bad parameters → 5 or 6 (but never on stop or a probe, which
must work with any configuration), an unexpected exception → 1. Every failure
writes an `ocf-exit-reason:` line; a traceback goes to the log only.
"""

from __future__ import annotations

import os
import sys

from ._typing import TYPE_CHECKING
from .codes import EXIT_NAMES, OCFError, OCFExit, exit_name
from .context import Context
from .log import Logger
from .params import ParameterValues

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, TextIO

    from .params import Parameter

    Handler = Callable[[Context], int]

#: Actions run by the framework itself when the agent does not declare them.
BUILTIN_ACTIONS = ("meta-data", "validate-all")
#: Actions that must work whatever the configuration (the spec and Pacemaker say so).
LENIENT_ACTIONS = ("stop", "meta-data")
KNOWN_ACTIONS = (
    "start",
    "stop",
    "monitor",
    "meta-data",
    "validate-all",
    "notify",
    "promote",
    "demote",
    "reload",
    "reload-agent",
    "migrate_to",
    "migrate_from",
    "recover",
)


class Action:
    """One action the agent supports. Declare `monitor` once per depth."""

    def __init__(
        self,
        name: str,
        handler: Handler | None = None,
        *,
        timeout: float,
        interval: float | None = None,
        depth: int = 0,
        role: str | None = None,
    ) -> None:
        if name not in KNOWN_ACTIONS:
            raise ValueError(f"{name} is not an OCF 1.1 action")
        if handler is None and name not in ("meta-data", "validate-all", "reload-agent"):
            raise ValueError(f"action {name} needs a handler")
        self.name = name
        self.handler = handler
        self.timeout = timeout
        self.interval = interval
        self.depth = depth
        self.role = role


class Agent:
    """A resource agent declared as data; `main()` makes it an executable."""

    def __init__(
        self,
        *,
        name: str,
        version: str,
        shortdesc: str,
        longdesc: str,
        parameters: Sequence[Parameter[Any]],
        actions: Sequence[Action],
        validate: Handler | None = None,
    ) -> None:
        names = [p.name for p in parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"agent {name}: duplicate parameter names")
        self.name = name
        self.version = version
        self.shortdesc = shortdesc
        self.longdesc = longdesc
        self.parameters = list(parameters)
        self.validate = validate
        declared = {a.name for a in actions}
        for required in ("start", "stop", "monitor"):
            if required not in declared:
                raise ValueError(f"agent {name}: OCF requires a {required} action")
        extra = [Action("meta-data", timeout=5), Action("validate-all", timeout=20)]
        if any(p.reloadable for p in parameters) and "reload-agent" not in declared:
            extra.append(Action("reload-agent", timeout=20))
        self.actions = list(actions) + [a for a in extra if a.name not in declared]
        self.check_levels = sorted({a.depth for a in self.actions if a.name == "monitor"} | {0})

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.name == name), None)

    def metadata(self) -> str:
        from .metadata import render

        return render(self)

    def usage(self) -> str:
        names = "|".join(dict.fromkeys(a.name for a in self.actions))
        return f"usage: {self.name} {{{names}}}\n"

    def main(self) -> None:
        """Entry point of the installed executable."""
        sys.exit(self.run(sys.argv, os.environ))

    def run(
        self, argv: Sequence[str], environ: Mapping[str, str], stderr: TextIO | None = None
    ) -> int:
        """Run the action named in argv[1]; return its OCF exit code, never raise."""
        err = stderr if stderr is not None else sys.stderr
        instance = environ.get("OCF_RESOURCE_INSTANCE", "")
        log = Logger(f"{self.name}({instance})" if instance else self.name, environ, err)
        try:
            code = self._dispatch(argv, environ, log, err)
        except OCFError as error:
            code = error.code if error.code in EXIT_NAMES else OCFExit.ERR_GENERIC
            _exit_reason(err, log, error.reason)
        except BaseException as error:  # the last line of defence
            if isinstance(error, SystemExit) and error.code in EXIT_NAMES:
                return int(error.code)
            code = self._crashed(error, log, err)
        if code not in EXIT_NAMES:
            _exit_reason(err, log, f"agent returned {code!r}, not an OCF exit code")
            code = OCFExit.ERR_GENERIC
        return int(code)

    def _dispatch(
        self, argv: Sequence[str], environ: Mapping[str, str], log: Logger, err: TextIO
    ) -> int:
        if len(argv) != 2:
            err.write(self.usage())
            raise OCFError(OCFExit.ERR_ARGS, "exactly one action argument is expected")
        name = argv[1]
        if name == "meta-data":
            sys.stdout.write(self.metadata())
            return OCFExit.SUCCESS
        if name in ("usage", "help", "--help", "-h"):
            sys.stdout.write(self.usage())
            return OCFExit.SUCCESS
        action = self.action(name)
        if action is None:
            raise OCFError(OCFExit.ERR_UNIMPLEMENTED, f"{self.name} does not implement {name!r}")
        params = ParameterValues(self.parameters, environ)
        log.add_secrets(params.secrets)
        ctx = Context(
            name,
            environ,
            params=params,
            log=log,
            check_levels=self.check_levels,
            default_timeout=action.timeout,
        )
        if ctx.requested_check_level != ctx.check_level:
            log.debug(f"check level {ctx.requested_check_level} → {ctx.check_level}")
        self._check_parameters(ctx)
        code = self._invoke(ctx, action)
        log.debug(f"{name} → {exit_name(code)} in {ctx.timeout - ctx.remaining():.3f}s")
        return code

    @staticmethod
    def _check_parameters(ctx: Context) -> None:
        """Raise the parameters' problem, except on stop and probes, which only warn."""
        problem = ctx.params.first_problem()
        if problem is None:
            return
        if ctx.action in LENIENT_ACTIONS or ctx.is_probe:
            for each in ctx.params.problems:
                ctx.log.warning(f"{ctx.action} continues despite: {each.reason}")
            return
        raise problem

    def _invoke(self, ctx: Context, action: Action) -> int:
        """validate-all runs the agent's checks; start and reload run them first too."""
        if self.validate is not None and ctx.action in ("validate-all", "start", "reload"):
            code = self.validate(ctx)
            if code != OCFExit.SUCCESS or ctx.action == "validate-all":
                return code
        if action.handler is None:  # validate-all, reload-agent: nothing more to do
            return OCFExit.SUCCESS
        return action.handler(ctx)

    def _crashed(self, error: BaseException, log: Logger, err: TextIO) -> int:
        import traceback

        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        if log.to_stream:  # keep the traceback away from Pacemaker's stderr capture
            log.to_stream = False
            if log.logfile is None and log.facility is None:
                log.facility = 3  # daemon
        log.error(f"unexpected error, traceback follows\n{text}")
        summary = f"{type(error).__name__}: {error}".strip().rstrip(":")
        _exit_reason(err, log, f"internal error in agent {self.name}: {summary}")
        return OCFExit.ERR_GENERIC


def _exit_reason(err: TextIO, log: Logger, reason: str) -> None:
    """Tell Pacemaker why (one line, secrets masked) and log it."""
    text = " ".join(log.mask(reason).split())
    log.error(text)
    try:
        err.write(f"ocf-exit-reason:{text}\n")
        err.flush()
    except (OSError, ValueError):
        pass
