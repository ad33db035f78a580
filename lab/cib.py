"""The lab's CIB: its base layer (base.yaml: fencing and the properties the lab needs, plus
the timing profile's properties), the first CIB each node boots with, and topologies
applied in this process through `hakit.tools.topology` with a node's runner (the cluster
programs run inside the node; the files they read are in this host's /tmp, which every
node sees)."""

from __future__ import annotations

import json
import re
import string
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hakit.lab import remotes
from hakit.lab.errors import LabError
from hakit.ocf import cluster
from hakit.tools.topology.conventions import text_value

if TYPE_CHECKING:
    from hakit.lab.lab import Lab
    from hakit.tools.topology.apply import Change
    from hakit.tools.topology.load import Loaded

BASE = Path(__file__).with_name("base.yaml")
#: The reference topology (in a checkout: examples/ beside lab/) and the lab's layer over
#: it: the same fence devices, each swapped for fence_hakit_lab.
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "openstack.yaml"
EXAMPLE_FENCING = Path(__file__).with_name("example-fencing.yaml")
FENCE_ID = "hakit-fence"
CLUSTER_NAME = "hakit-lab"
#: what was applied above the base layers last (in the lab directory), for `reapply`
APPLIED = "applied-topology.json"
NO_SUCH_OBJECT = 105  # cibadmin's exit code when the xpath matches nothing (CRM_EX_NOSUCH)
#: What a node does not share with the host (its own tmpfs or bind mounts): a file a
#: cluster program inside the node must read cannot be there.
NODE_PRIVATE = ("/run", "/dev/shm", "/var/lib/pacemaker", "/var/log", "/var/lib/corosync")  # noqa: S108


def base_layers(lab: Lab) -> list[tuple[str, str]]:
    """(file, text) of the lab's layers: base.yaml for this lab's nodes, then the profile,
    then the remotes (hakit.lab.remotes), if any."""
    import yaml

    text = string.Template(BASE.read_text()).substitute(host_list=" ".join(lab.nodes))
    properties = dict(lab.profile.cluster_properties())
    profile = yaml.safe_dump({"cluster": {"name": CLUSTER_NAME, "properties": properties}})
    layers = [(str(BASE), text), (f"<profile {lab.state.profile}>", profile)]
    return layers + _remotes(lab)


def layered(lab: Lab, layers: Sequence[tuple[str, str]] = ()) -> Loaded:
    """The lab's base layers with `layers` (file, text) above them, merged and checked
    for names; a LabError lists every problem."""
    return _merged([*base_layers(lab), *layers])


def example_layers(example: Path = EXAMPLE, layers: Sequence[tuple[str, str]] = ()) -> Loaded:
    """The reference topology as the lab applies it (instead of its base layers, whose
    cluster name it does not share): `example`, example-fencing.yaml above it, then
    `layers` (file, text); merged and checked for names, a LabError lists every problem."""
    if not example.is_file():
        raise LabError(f"{example}: no such file (the reference topology is in a checkout)")
    return _merged([(str(p), p.read_text()) for p in (example, EXAMPLE_FENCING)] + [*layers])


def _merged(layers: Sequence[tuple[str, str]]) -> Loaded:
    from hakit.tools.topology.layers import layer_texts
    from hakit.tools.topology.validate import check_names

    loaded = layer_texts(layers)
    if loaded.topology is not None and not loaded.problems:
        check_names(loaded, loaded.topology)
    _refuse(loaded)
    return loaded


def seed_cib(lab: Lab) -> str:
    """The CIB a new node starts with: the base layers rendered (no resource but fencing)."""
    from hakit.tools.topology.render import render, to_text

    topology = layered(lab).topology
    assert topology is not None  # noqa: S101 — layered() refused otherwise
    return to_text(render(topology))


def ensure_base(lab: Lab) -> Change | None:
    """The base layers' properties set again (an interrupted run may have changed them:
    stop-all-resources, ...); the whole base applied when the live CIB lacks the lab's
    fence device (a CIB wiped or never seeded). Layers applied above the base stay."""
    base = layered(lab).topology
    assert base is not None  # noqa: S101 — layered() refused otherwise
    with lab.on(lab.nodes[0]):
        live = {
            pair.get("name"): pair.get("value")
            for pair in cluster.cib_query("crm_config", timeout=30).iter("nvpair")
        }
        for name, value in base.cluster.properties.items():
            wanted = text_value(value)
            if live.get(name) != wanted:
                cluster.set_cluster_property(name, wanted, timeout=30)
        try:
            cluster.cib_query(xpath=f"//primitive[@id='{FENCE_ID}']", timeout=30)
            return None
        except cluster.ClusterCommandError as error:
            if error.returncode != NO_SUCH_OBJECT:
                raise  # a cluster that does not answer: no reason to reset its CIB
    return apply_layers(lab, [])


def apply(lab: Lab, loaded: Loaded, *, node: str | None = None, agents: bool = True) -> Change:
    """Validate `loaded` against the live cluster (agents' metadata, crm_verify) and apply
    it in one patch, the cluster programs running inside `node` (the first by default)."""
    from hakit.tools.topology import apply as changes
    from hakit.tools.topology.validate import check

    _refuse(loaded)
    topology = loaded.topology
    assert topology is not None  # noqa: S101 — _refuse() raised otherwise
    node_sees(tempfile.gettempdir())
    with lab.on(node or lab.nodes[0]):
        check(loaded, agents=agents)  # again for a file given alone (cheap, idempotent)
        _refuse(loaded)
        try:
            return changes.apply(topology)
        except (cluster.ClusterCommandError, OSError, ValueError) as error:
            raise LabError(f"applying {loaded.file} failed: {error}") from None


def apply_layers(lab: Lab, layers: Sequence[tuple[str, str]], *, node: str | None = None) -> Change:
    """The base layers with `layers` (file, text) above them, applied from inside `node`
    and remembered: a change of the lab's remotes applies them again (`reapply`)."""
    change = apply(lab, layered(lab, layers), node=node)
    _remember(lab, {"layers": [list(layer) for layer in layers]})
    return change


def apply_file(lab: Lab, path: Path, *, node: str | None = None) -> Change:
    """Apply one whole topology file (such as demo.yaml) from inside `node`, the lab's
    remotes (if any) layered over it; remembered like `apply_layers`."""
    return _apply_whole(lab, str(path), path.read_text(), node=node)


def _apply_whole(lab: Lab, name: str, text: str, *, node: str | None = None) -> Change:
    change = apply(lab, _merged([(name, text), *_remotes(lab)]), node=node)
    _remember(lab, {"file": [name, text]})
    return change


def reapply(lab: Lab) -> Change:
    """What `apply_layers` or `apply_file` applied last (the base alone if nothing), again,
    with the lab's remotes as they are now; a layer with a `remotes:` section of its own
    (resources placed on remotes) is left out while the lab has none."""
    applied = json.loads(_applied(lab).read_text()) if _applied(lab).exists() else {}
    if "file" in applied:
        name, text = applied["file"]
        return _apply_whole(lab, name, text)
    layers = [(name, text) for name, text in applied.get("layers", [])]
    kept = [(n, t) for n, t in layers if lab.remotes or not re.search(r"^remotes:", t, re.M)]
    return apply_layers(lab, kept)


def _remotes(lab: Lab) -> list[tuple[str, str]]:
    return [remotes.layer(lab)] if lab.remotes else []


def _applied(lab: Lab) -> Path:
    return lab.dir / APPLIED


def _remember(lab: Lab, applied: dict[str, object]) -> None:
    _applied(lab).write_text(json.dumps(applied) + "\n")


def summary(change: Change) -> str:
    """What `hakit topology apply` prints for the change."""
    from hakit.tools.topology.apply import report

    return report(change, applied=True)


def node_sees(path: str) -> None:
    """Refuse a path that a node's own mounts hide from the programs running there."""
    resolved = str(Path(path).resolve())
    for private in NODE_PRIVATE:
        if resolved == private or resolved.startswith(private + "/"):
            raise LabError(
                f"{resolved} is private to each lab node ({private}); set TMPDIR to a "
                "directory the nodes share with the host, such as /tmp"
            )


def _refuse(loaded: Loaded) -> None:
    if loaded.problems or loaded.topology is None:
        lines = [str(p) for p in loaded.problems] or [f"{loaded.file}: no topology"]
        raise LabError(f"{len(lines)} problem(s) in the lab's topology:\n" + "\n".join(lines))
