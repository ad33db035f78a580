"""The model of the topology's `correlation:` section: VNF error-report correlation rules.
A part of `model`, which names these classes (`model.Correlation`), so that loading, the
JSON Schema and the reference see one model. What the section becomes: `correlation`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hakit.tools.topology.model_doc import doc


@dataclass
class CorrelationRule:
    """Enough distinct VNFs reporting on one host, physnet or backend in a window: a suspect."""

    name: str = field(metadata=doc("unique; letters, digits, '.', '_' and '-'"))
    scope: Literal["host", "physnet", "backend"] = field(
        metadata=doc("what the reports share: a host, a physnet or a cinder backend")
    )
    min_vnfs: int = field(metadata=doc("distinct VNFs (not VMs, not reports); at least 1"))
    window: str = field(metadata=doc("a duration, e.g. 60s or 2min"))
    error_classes: list[Literal["compute", "network", "storage", "unknown"]] = field(
        default_factory=list, metadata=doc("error classes counted; empty = every class")
    )


@dataclass
class MassEvent:
    """More than `max_suspects` suspects in a window: one alarm, and no action."""

    max_suspects: int = field(metadata=doc("suspects tolerated in the window; at least 1"))
    window: str = field(metadata=doc("a duration, e.g. 120s"))


@dataclass
class Correlation:
    """VNF error-report correlation, written to every ocf:hakit:publisher resource."""

    rules: list[CorrelationRule] = field(default_factory=list, metadata=doc("none: off"))
    mass_event: MassEvent | None = field(default=None, metadata=doc("the mass-event guard"))
    disable_compute_service: bool = field(
        default=False, metadata=doc("disable a suspect host's nova-compute, with a reason")
    )
