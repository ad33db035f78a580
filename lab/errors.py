"""The lab's one error type."""


class LabError(Exception):
    """A problem the operator can fix; str() is a one-line message with a hint."""
