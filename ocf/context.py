"""What Pacemaker tells an agent about the current action, parsed once.

Reads `OCF_RESKEY_CRM_meta_*`, `OCF_CHECK_LEVEL` and `OCF_RESOURCE_INSTANCE`:
probe detection, check depth with fall-back, the action deadline, clone and
notification facts.
"""

from __future__ import annotations

import time

from ._typing import TYPE_CHECKING
from .log import is_true

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .log import Logger
    from .params import ParameterValues

META = "OCF_RESKEY_CRM_meta_"


def meta(environ: Mapping[str, str], name: str) -> str | None:
    """The value of `OCF_RESKEY_CRM_meta_<name>`, or None."""
    return environ.get(META + name)


def _int(value: str | None, fallback: int) -> int:
    try:
        return int(value) if value not in (None, "") else fallback  # type: ignore[arg-type]
    except ValueError:
        return fallback


class CloneFacts:
    """Clone meta data of this instance (only when the resource is a clone)."""

    __slots__ = ("globally_unique", "instance", "max", "node_max", "promoted_max")

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.instance = _int(meta(environ, "clone"), 0)
        self.max = _int(meta(environ, "clone_max"), 1)
        self.node_max = _int(meta(environ, "clone_node_max"), 1)
        self.promoted_max = _int(meta(environ, "promoted_max") or meta(environ, "master_max"), 0)
        self.globally_unique = is_true(meta(environ, "globally_unique"))

    def __repr__(self) -> str:
        return (
            f"CloneFacts(instance={self.instance}, max={self.max}, node_max={self.node_max}, "
            f"promoted_max={self.promoted_max}, globally_unique={self.globally_unique})"
        )


class NotifyFacts:
    """A clone notification: `type` pre|post, `operation` start|stop|promote|demote,
    and the resource/node lists Pacemaker passes (`notify_<event>_resource|uname`)."""

    __slots__ = ("_lists", "operation", "type")

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.type = meta(environ, "notify_type") or ""
        self.operation = meta(environ, "notify_operation") or ""
        self._lists: dict[str, list[str]] = {}
        prefix = META + "notify_"
        for key, value in environ.items():
            if key.startswith(prefix) and key.endswith(("_resource", "_uname")):
                self._lists[key[len(prefix) :]] = value.split()

    def resources(self, event: str) -> list[str]:
        """Resource instances for `event` (start, stop, active, inactive, promote, ...)."""
        return list(self._lists.get(event + "_resource", []))

    def unames(self, event: str) -> list[str]:
        """Node names for `event`, in the same order as `resources(event)`."""
        return list(self._lists.get(event + "_uname", []))

    def pairs(self, event: str) -> list[tuple[str, str]]:
        """(resource, node) for `event`."""
        return list(zip(self.resources(event), self.unames(event), strict=False))

    def events(self) -> list[str]:
        return sorted({key.rsplit("_", 1)[0] for key in self._lists})

    def __repr__(self) -> str:
        return f"NotifyFacts(type={self.type!r}, operation={self.operation!r})"


class Context:
    """Everything an action function needs: the action, its environment, the
    parsed parameters and a logger."""

    def __init__(
        self,
        action: str,
        environ: Mapping[str, str],
        *,
        params: ParameterValues,
        log: Logger,
        check_levels: Sequence[int] = (0,),
        default_timeout: float = 20.0,
    ) -> None:
        self.started = time.monotonic()
        self.action = action
        self.environ = environ
        self.params = params
        self.log = log
        self.instance = environ.get("OCF_RESOURCE_INSTANCE", "")
        self.interval_ms = _int(meta(environ, "interval"), -1)
        self.timeout = _int(meta(environ, "timeout"), 0) / 1000 or default_timeout
        self.deadline = self.started + self.timeout
        self.node = meta(environ, "on_node") or ""
        self.requested_check_level = self._requested_check_level(environ)
        self.check_level = max(
            [level for level in check_levels if level <= self.requested_check_level] or [0]
        )
        self.clone = CloneFacts(environ) if meta(environ, "clone_max") is not None else None
        self.notify = NotifyFacts(environ) if action == "notify" else None

    @staticmethod
    def _requested_check_level(environ: Mapping[str, str]) -> int:
        raw = environ.get("OCF_CHECK_LEVEL") or environ.get("OCF_RESKEY_OCF_CHECK_LEVEL") or "0"
        return max(_int(raw, 0), 0)

    @property
    def is_probe(self) -> bool:
        """A one-time monitor that asks "is it running here?". Pacemaker passes no
        interval for probes (ocf-tester passes 0); recurring monitors always have one."""
        return self.action == "monitor" and self.interval_ms <= 0

    @property
    def state_name(self) -> str:
        """The instance name for local state files. `:N` is dropped for anonymous clones,
        whose instance numbers are not stable on a node."""
        name = self.instance or "default"
        if self.clone is None or not self.clone.globally_unique:
            base, sep, number = name.rpartition(":")
            if sep and number.isdigit():
                name = base
        return name.replace("/", "_")

    def remaining(self, margin: float = 0.0) -> float:
        """Seconds left before the action's deadline, less `margin`; never negative."""
        return max(self.deadline - time.monotonic() - margin, 0.0)
