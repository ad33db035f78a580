"""hakit.ocf — a small, fast framework for OCF 1.1 resource agents.

Only the declarative API is imported here; `hakit.ocf.proc` (process trees) and
`hakit.ocf.cluster` (cluster commands) are imported by the agents that need them.
"""

from .agent import Action, Agent
from .codes import OCFError, OCFExit, exit_name
from .context import Context
from .params import (
    BooleanParam,
    EnumParam,
    IntegerParam,
    ListParam,
    Parameter,
    ParameterError,
    PathParam,
    PortParam,
    SecretParam,
    StringParam,
)

__all__ = [
    "Action",
    "Agent",
    "BooleanParam",
    "Context",
    "EnumParam",
    "IntegerParam",
    "ListParam",
    "OCFError",
    "OCFExit",
    "Parameter",
    "ParameterError",
    "PathParam",
    "PortParam",
    "SecretParam",
    "StringParam",
    "exit_name",
]
