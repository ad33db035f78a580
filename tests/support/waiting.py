"""Polling until something holds, for tests that watch a live cluster settle."""

from __future__ import annotations

import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TypeVar

from hakit.ocf import cluster

T = TypeVar("T")
#: What counts as "not yet" by default: commands failing while the cluster settles, a
#: resource not yet in the status, a half-written XML answer.
NOT_YET: tuple[type[BaseException], ...] = (
    subprocess.SubprocessError,
    cluster.ClusterCommandError,
    KeyError,
    ET.ParseError,
)


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    *,
    interval: float = 0.5,
    description: str = "",
    ignore: tuple[type[BaseException], ...] = NOT_YET,
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that. (An
    ``xml.etree`` Element counts as soon as it is not None: its truth value is its number
    of children.) Exceptions in ``ignore`` count as "not yet". Raises TimeoutError naming
    ``description`` and the last result or exception."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except ignore as exc:
            last = exc
        else:
            if value is not None if isinstance(value, ET.Element) else value:
                return value
            last = value
        if time.monotonic() >= deadline:
            what = description or getattr(predicate, "__name__", repr(predicate))
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}: {last!r}")
        time.sleep(interval)
