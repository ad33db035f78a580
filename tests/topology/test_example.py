"""The OpenStack reference topology (examples/openstack.yaml): valid with every agent's
metadata, built the same by pcs, and applied to the lab's live cluster idempotently."""

from __future__ import annotations

import sys
from pathlib import Path

from lxml import etree

from hakit.lab.lab import Lab
from hakit.tools.topology.load import load
from hakit.tools.topology.render import render
from hakit.tools.topology.validate import validate
from tests.conftest import REPO
from tests.topology.test_export import pcs_built
from tests.topology.test_features import sections
from tests.topology.test_topology import EXAMPLE as DEMO

OPENSTACK = REPO / "examples" / "openstack.yaml"


def test_the_reference_topology_is_valid_with_every_agent(lab: Lab) -> None:
    """fence_hakit_lab exists while the lab runs; the ocf:hakit agents are installed."""
    loaded = validate(OPENSTACK)
    assert [str(p) for p in loaded.problems] == []
    topology = loaded.topology
    assert topology is not None
    agents = {r.agent for r in topology.resources}
    assert {
        "ocf:hakit:cinder-volume",
        "ocf:hakit:nova-scheduler",
        "ocf:hakit:nova-consoleauth",
    } <= agents


def test_pcs_builds_the_reference_topology_the_same(lab: Lab, tmp_path: Path) -> None:
    topology = load(OPENSTACK).topology
    assert topology is not None
    built = etree.parse(str(pcs_built(topology, tmp_path / "cib.xml"))).getroot()
    ours = sections(render(topology))
    assert {"resources", "constraints", "tags", "rsc_defaults", "op_defaults"} <= set(ours)
    assert sections(built) == ours


def hakit(lab: Lab, verb: str, path: Path, *flags: str) -> str:
    done = lab.run(
        "node1",
        [sys.executable, "-I", "-m", "hakit.tools.cli", "topology", verb, str(path), *flags],
        timeout=180,
    )
    return done.stdout


def test_the_reference_topology_applies_to_the_lab(lab: Lab, tmp_path: Path) -> None:
    """Applied with stop-all-resources (the lab has no haproxy or galera to run), again
    with no change, then the demo topology is put back for the other tests."""
    quiet = tmp_path / "openstack.yaml"
    quiet.write_text(
        OPENSTACK.read_text().replace(
            "    no-quorum-policy: stop\n",
            "    no-quorum-policy: stop\n    stop-all-resources: true\n",
        )
    )
    try:
        assert hakit(lab, "apply", quiet, "--yes").startswith("applied: ")
        assert hakit(lab, "apply", quiet, "--yes").strip() == "no change"
        live = lab.run("node1", ["cibadmin", "--query", "--scope", "configuration"]).stdout
        for expected in (
            'id="nova-scheduler-clone"',
            'id="fence-node3"',
            'tag id="openstack-',
            'id="location-nova-scheduler-clone-rule"',
            'path="/usr/libexec/hakit/alert"',
        ):
            assert expected in live
    finally:
        hakit(lab, "apply", DEMO, "--yes")
        lab.run("node1", ["crm_attribute", "--delete", "--name", "stop-all-resources"], check=False)
