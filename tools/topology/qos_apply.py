"""The `qos` section applied to a cloud through its APIs (`hakit topology qos --apply`).

nova: the extra specs of the flavors each tier names (only the keys hakit manages; a key
the tier no longer asks for is removed). cinder: the qos-specs hakit-<tier> (consumer
and keys) and the volume type hakit-<tier> associated with it. Idempotent: what the
cloud already has is read first, and only the difference is written, shown as
`topology diff` shows a CIB's. neutron's QoS policies are not applied (hakit has no
neutron-server to prove it against): `hakit topology qos` prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hakit.tools.topology import model
from hakit.tools.topology.qos import cinder_qos_specs, flavor_extra_specs

#: the flavor extra specs hakit sets; others on a flavor are the operator's and kept
MANAGED_FLAVOR_KEYS = frozenset(
    {
        "hw:cpu_policy",
        "quota:cpu_period",
        "quota:cpu_quota",
        "quota:disk_total_iops_sec",
        "quota:disk_total_bytes_sec",
        "quota:vif_inbound_average",
        "quota:vif_outbound_average",
    }
)
#: (service type, method, path, body) → the decoded answer; raises on an HTTP error
Call = Callable[[str, str, str, object], Any]


class QoSApplyError(Exception):
    """The cloud lacks what a tier names (a flavor), or refused a change."""


@dataclass
class Change:
    """One object to create or update: keys to set (old value, or None when new) and
    keys to remove (their old value)."""

    service: str
    kind: str  # flavor | qos-specs | volume-type
    name: str
    create: bool = False
    set: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    unset: dict[str, str] = field(default_factory=dict)
    ident: str = ""  # the object's id in the cloud, when it exists
    associate: str = ""  # volume-type: the qos-specs to associate it with

    def lines(self) -> list[str]:
        head = f"{'+' if self.create else '~'} {self.service} {self.kind} {self.name}"
        out = [head + (f" (qos-specs {self.associate})" if self.associate else "")]
        for key, (old, new) in sorted(self.set.items()):
            out.append(f"    + {key}={new}" if old is None else f"    ~ {key}: {old} → {new}")
        out += [f"    - {key}={old}" for key, old in sorted(self.unset.items())]
        return out


def changes(section: model.QoS, call: Call) -> list[Change]:
    """What the cloud lacks of `section` (read only)."""
    flavors = {f["name"]: f for f in call("compute", "GET", "/flavors/detail", None)["flavors"]}
    flavors |= {f["id"]: f for f in flavors.values()}
    specs = {q["name"]: q for q in call("volumev3", "GET", "/qos-specs", None)["qos_specs"]}
    types = {t["name"]: t for t in call("volumev3", "GET", "/types", None)["volume_types"]}
    found: list[Change] = []
    for tier in section.tiers:
        wanted = flavor_extra_specs(tier)
        for name in tier.flavors:
            if name not in flavors:
                raise QoSApplyError(f"tier {tier.name}: nova has no flavor {name!r}")
            flavor = flavors[name]
            path = f"/flavors/{quote(flavor['id'], safe='')}/os-extra_specs"
            current = call("compute", "GET", path, None)["extra_specs"]
            managed = {k: v for k, v in current.items() if k in MANAGED_FLAVOR_KEYS}
            change = _keys(Change("nova", "flavor", name, ident=flavor["id"]), managed, wanted)
            found += [change] if change.set or change.unset else []
        found += _cinder(cinder_qos_specs(tier, section.enforcement), specs, types, call)
    return found


def _keys(change: Change, current: dict[str, str], wanted: dict[str, str]) -> Change:
    change.set = {k: (current.get(k), v) for k, v in wanted.items() if current.get(k) != v}
    change.unset = {k: v for k, v in current.items() if k not in wanted}
    return change


def _cinder(
    plan: dict[str, Any], specs: dict[str, Any], types: dict[str, Any], call: Call
) -> list[Change]:
    name, wanted = str(plan["name"]), {"consumer": str(plan["consumer"]), **plan["specs"]}
    existing = specs.get(name)
    if existing is None:
        qos = _keys(Change("cinder", "qos-specs", name, create=True), {}, wanted)
    else:
        current = {"consumer": existing["consumer"], **existing["specs"]}
        qos = _keys(Change("cinder", "qos-specs", name, ident=existing["id"]), current, wanted)
    found = [qos] if qos.create or qos.set or qos.unset else []
    type_name = str(plan["volume_type"])
    volume_type = types.get(type_name)
    associated = (
        volume_type is not None
        and existing is not None
        and volume_type.get("qos_specs_id") == existing.get("id")
    )
    if not associated:
        ident = volume_type["id"] if volume_type else ""
        found.append(
            Change("cinder", "volume-type", type_name, not ident, ident=ident, associate=name)
        )
    return found


def apply(found: list[Change], call: Call) -> None:
    """Write `found` (from `changes`), qos-specs before the volume types using them."""
    created: dict[str, str] = {}
    for change in found:
        values = {k: new for k, (_, new) in change.set.items()}
        if change.kind == "flavor":
            path = f"/flavors/{quote(change.ident, safe='')}/os-extra_specs"
            if values:
                call("compute", "POST", path, {"extra_specs": values})
            for key in change.unset:
                call("compute", "DELETE", f"{path}/{quote(key, safe='')}", None)
        elif change.kind == "qos-specs" and change.create:
            body = {"qos_specs": {"name": change.name, **values}}
            created[change.name] = call("volumev3", "POST", "/qos-specs", body)["qos_specs"]["id"]
        elif change.kind == "qos-specs":
            if values:
                call("volumev3", "PUT", f"/qos-specs/{change.ident}", {"qos_specs": values})
            if change.unset:
                keys = {"keys": sorted(change.unset)}
                call("volumev3", "PUT", f"/qos-specs/{change.ident}/delete_keys", keys)
        else:
            _associate(change, created, call)


def _associate(change: Change, created: dict[str, str], call: Call) -> None:
    ident = change.ident
    if change.create:
        body = {"volume_type": {"name": change.name}}
        ident = call("volumev3", "POST", "/types", body)["volume_type"]["id"]
    qos = created.get(change.associate)
    if qos is None:
        listed = call("volumev3", "GET", "/qos-specs", None)["qos_specs"]
        qos = next(q["id"] for q in listed if q["name"] == change.associate)
    current = call("volumev3", "GET", f"/types/{ident}", None)["volume_type"].get("qos_specs_id")
    if current and current != qos:
        call("volumev3", "GET", f"/qos-specs/{current}/disassociate?vol_type_id={ident}", None)
    call("volumev3", "GET", f"/qos-specs/{qos}/associate?vol_type_id={ident}", None)
