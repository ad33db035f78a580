"""An agent that declares every parameter type and every optional action, to test the
framework's dispatch, metadata and validation paths. Its "resource" is a state file."""

from __future__ import annotations

import os

from hakit.ocf import (
    Action,
    Agent,
    BooleanParam,
    Context,
    EnumParam,
    IntegerParam,
    ListParam,
    OCFError,
    OCFExit,
    PathParam,
    PortParam,
    SecretParam,
    StringParam,
)

STATE = PathParam("state", "State file", required=True, unique=True)
COUNT = IntegerParam("count", "A count", default="3", minimum=0, maximum=10)
FLAG = BooleanParam("flag", "A flag", default="false")
MODE = EnumParam("mode", "A mode", choices=["fast", "safe"], default="safe")
PORT = PortParam("port", "A port")
PEERS = ListParam("peers", "Peers", default="")
PASSWORD = SecretParam("password", "A password", reloadable=True)
TOOL = PathParam("tool", "A program", default="sh", executable=True)
LABEL = StringParam("label", 'Text with <xml> & "quotes"', "Long <desc> & 'more'", default="a<b")
#: What the `behaviour` parameter makes an action do, for exit-code tests.
BEHAVIOUR = StringParam("behaviour", "Test hook", default="normal")


def _exists(ctx: Context) -> bool:
    return os.path.exists(ctx.params[STATE])


def _act(ctx: Context) -> int | None:
    """Apply the test hook: raise, return a code, or do nothing (None)."""
    behaviour = ctx.params[BEHAVIOUR]
    if behaviour == "crash":
        raise RuntimeError(f"boom with {ctx.params.get(PASSWORD)}")
    if behaviour.startswith("exit:"):
        return int(behaviour[5:])
    if behaviour.startswith("fail:"):
        raise OCFError(int(behaviour[5:]), f"asked to fail; password {ctx.params.get(PASSWORD)}")
    if behaviour == "log-secret":
        ctx.log.info(f"the password is {ctx.params.get(PASSWORD)}")
    return None


def start(ctx: Context) -> int:
    code = _act(ctx)
    if code is not None:
        return code
    with open(ctx.params[STATE], "w", encoding="utf-8") as handle:
        handle.write(f"{ctx.params[COUNT]} {ctx.params[MODE]}\n")
    return OCFExit.SUCCESS


def stop(ctx: Context) -> int:
    state = ctx.params.get(STATE)
    if state and os.path.exists(state):
        os.unlink(state)
    return OCFExit.SUCCESS


def monitor(ctx: Context) -> int:
    code = _act(ctx)
    if code is not None:
        return code
    if not _exists(ctx):
        return OCFExit.NOT_RUNNING
    return OCFExit.SUCCESS


def simple(ctx: Context) -> int:
    code = _act(ctx)
    return OCFExit.SUCCESS if code is None else code


AGENT = Agent(
    name="example",
    version="0.1",
    shortdesc="Example <agent> & friends",
    longdesc="Exercises every framework feature.",
    parameters=[STATE, COUNT, FLAG, MODE, PORT, PEERS, PASSWORD, TOOL, LABEL, BEHAVIOUR],
    actions=[
        Action("start", start, timeout=20),
        Action("stop", stop, timeout=20),
        Action("monitor", monitor, timeout=20, interval=10),
        Action("monitor", monitor, timeout=20, interval=60, depth=10),
        Action("notify", simple, timeout=20),
        Action("promote", simple, timeout=20),
        Action("demote", simple, timeout=20),
        Action("reload", simple, timeout=20),
        Action("migrate_to", simple, timeout=20),
        Action("migrate_from", simple, timeout=20),
    ],
)

if __name__ == "__main__":
    AGENT.main()
