"""An export rebuilds the same cluster: for every topology in the repository, the CIB
that running the pcs (or crm) export builds on a fresh, empty CIB places every resource
exactly as the rendered CIB does (real pcs, crmsh and crm_simulate; no cluster)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hakit.ocf import cluster
from hakit.tools.topology import model
from hakit.tools.topology.export import ExportError
from hakit.tools.topology.export_crm import crm_script
from hakit.tools.topology.load import load
from hakit.tools.topology.render import render, to_text
from hakit.tools.topology.simulate import ticket_names
from tests.topology.test_export import empty_cib, pcs_built

REPO = Path(__file__).resolve().parents[2]
#: the lab's layers: parts of a topology (no nodes), merged by hakit.lab
LAYERS = {REPO / "lab" / name for name in ("base.yaml", "cloud.yaml", "compute.yaml")}
#: every whole topology file in the repository
TOPOLOGIES = [
    REPO / "examples" / "openstack.yaml",
    REPO / "examples" / "remotes.yaml",
    REPO / "examples" / "qos.yaml",
    REPO / "lab" / "demo.yaml",
    REPO / "lab" / "ansible-cluster.yaml",
    REPO / "tests" / "topology" / "data" / "features.yaml",
    REPO / "tests" / "topology" / "data" / "correlation.yaml",
    REPO / "tests" / "health" / "data" / "cluster.yaml",
]


def placement(cib: Path, topology: model.Topology) -> list[str]:
    """What crm_simulate starts with every node up and every ticket granted."""
    events = [arg for node in topology.nodes for arg in ("--node-up", node.name)]
    events += [arg for name in ticket_names(topology) for arg in ("--ticket-grant", name)]
    return sorted(cluster.simulate_transition(str(cib), "--quorum", "true", *events))


def rendered(topology: model.Topology, path: Path) -> Path:
    path.write_text(to_text(render(topology)))
    return path


def test_every_topology_is_in_the_list() -> None:
    files = {p for p in REPO.glob("**/*.yaml") if "cluster:" in p.read_text()[:2000]}
    files = {p for p in files if ".venv" not in p.parts and "build" not in p.parts}
    files = {p for p in files if "broken" not in p.parts}  # the invalid-topology corpus
    assert files <= set(TOPOLOGIES) | LAYERS, files - set(TOPOLOGIES) - LAYERS


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.name)
def test_the_pcs_export_places_resources_as_rendered(path: Path, tmp_path: Path) -> None:
    topology = load(path).topology
    assert topology is not None
    built = pcs_built(topology, tmp_path / "cib.xml", with_nodes=False)
    expected = placement(rendered(topology, tmp_path / "rendered.xml"), topology)
    assert expected, "the topology places nothing: the comparison would prove nothing"
    assert placement(built, topology) == expected


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.name)
def test_the_crm_export_places_resources_as_rendered_or_says_why_not(
    path: Path, tmp_path: Path
) -> None:
    topology = load(path).topology
    assert topology is not None
    try:
        script = crm_script(topology)
    except ExportError as error:  # refused as a whole, with the reason and exit 1
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "hakit.tools.cli",
                "topology",
                "export",
                "--crm",
                "--no-agents",
                str(path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 1 and str(error) in done.stderr and not done.stdout
        return
    (tmp_path / "config.crm").write_text(script)
    cib = empty_cib(tmp_path / "cib.xml")
    done = subprocess.run(
        ["crm", "-F", "configure", "load", "update", str(tmp_path / "config.crm")],
        env={"CIB_file": str(cib), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    expected = placement(rendered(topology, tmp_path / "rendered.xml"), topology)
    assert placement(cib, topology) == expected


def test_the_reference_topology_exports_to_crm() -> None:
    topology = load(REPO / "examples" / "openstack.yaml").topology
    assert topology is not None
    script = crm_script(topology)
    assert "node node1 attributes openstack-role=controller" in script
    assert "galera-clone:promote rabbitmq-clone:start" in script


def test_what_pcs_cannot_say_is_named_and_the_exit_is_1(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "cluster: {name: t, properties: {stonith-enabled: false}}\n"
        "nodes: [{name: n1}]\n"
        "alerts: [{name: al, path: /bin/true, select: [fencing, nodes]}]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "hakit.tools.cli", "topology", "export", "--no-agents", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "not exported: alert al: select fencing nodes" in done.stderr
    assert "alert create id=al" in done.stdout  # the rest is exported
