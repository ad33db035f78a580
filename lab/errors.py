"""The lab's one error type."""

from hakit.ocf.exits import EnvironmentProblem


class LabError(EnvironmentProblem):
    """A problem the operator can fix; str() is a one-line message with a hint."""
