"""Node health of Pacemaker Remote nodes, classified from crm_mon output of CIB files that
hakit rendered from examples/remotes.yaml (with more computes for the scale check) and
crm_simulate then changed: a remote lost, fenced, or with a failed service, and the
cluster queries of one look, the same with 4 remotes as with 24."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from hakit.ocf import cluster
from hakit.resource_agents.health.model import Health, HealthReport, NodeHealth, classify
from hakit.resource_agents.health.sources import ClusterView, FenceRecord, Snapshot, live_view
from hakit.tools.topology.load import load
from hakit.tools.topology.render import render, to_text
from hakit.tools.topology.simulate import _connection_lost
from tests.health.conftest import CRM_MON, pacemaker

EXAMPLE = Path(__file__).parents[2] / "examples" / "remotes.yaml"
CONTROLLERS = ("node1", "node2", "node3")


def placed_cib(directory: Path, computes: int | None = None) -> Path:
    """examples/remotes.yaml (with `computes` remotes when given) placed by crm_simulate,
    node1 the DC."""
    document: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    if computes is not None:
        template = document["remotes"]["nodes"][0]
        document["remotes"]["nodes"] = [
            {**template, "name": f"compute{i}", "address": f"10.1.0.{i}", "fence": []}
            for i in range(1, computes + 1)
        ]
    source = directory / "topology.yaml"
    source.write_text(yaml.safe_dump(document, sort_keys=False))
    loaded = load(source)
    assert loaded.topology is not None, loaded.problems
    configured = directory / "configured.xml"
    configured.write_text(to_text(render(loaded.topology)))
    placed = directory / "placed.xml"
    up = [arg for node in CONTROLLERS for arg in ("--node-up", node)]
    pacemaker(
        "crm_simulate", "--xml-file", str(configured), "--simulate", "--quorum", "true", *up,
        "--save-output", str(placed),
    )  # fmt: skip
    pacemaker("cibadmin", "--modify", "--xml-text", '<cib dc-uuid="1"/>', cib=placed)
    return placed


def simulate(source: Path, name: str, *events: str, execute: bool = False) -> Path:
    target = source.with_name(f"{name}.xml")
    run = ["crm_simulate", "--xml-file", str(source), *(["--simulate"] if execute else [])]
    pacemaker(*run, *events, "--save-output", str(target))
    return target


def view(cib: Path, fences: Sequence[FenceRecord] = ()) -> ClusterView:
    return ClusterView(Snapshot.from_text(pacemaker(*CRM_MON, cib=cib)), list(fences))


def classes(report: HealthReport) -> dict[str, Health]:
    return {n.node: n.health for n in report.nodes}


def node(report: HealthReport, name: str) -> NodeHealth:
    found = report.node(name)
    assert found is not None, name
    return found


@pytest.fixture(scope="module")
def placed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return placed_cib(tmp_path_factory.mktemp("remotes"))


def test_placed_remotes_are_ok(placed: Path) -> None:
    found = classes(classify(view(placed)))
    assert found == {n: Health.OK for n in [*CONTROLLERS, *(f"compute{i}" for i in (1, 2, 3, 4))]}


def test_a_lost_remote_is_unreachable_and_its_connections_host_stays_ok(placed: Path) -> None:
    """The connection's failed monitor is the remote's loss, not a service failure of the
    cluster node that held the connection."""
    lost = simulate(placed, "lost", "--op-inject", _connection_lost(str(placed), "compute2"))
    report = classify(view(lost))
    assert classes(report)["compute2"] == Health.HOST_UNREACHABLE_UNFENCED
    assert {n.node for n in report.nodes if n.health != Health.OK} == {"compute2"}
    [reason] = [r for r in node(report, "compute2").reasons if "connection" in r]
    assert reason.startswith("its connection failed on node") and "monitor: rc=1" in reason


def test_remotes_whose_connections_never_started_are_idle_not_lost(placed: Path) -> None:
    """Computes being added (their connections not started yet) are out of the cluster
    but not lost: the mass-failure guard must not count them (`idle_remote`); a remote
    whose connection failed is not idle."""
    up = [arg for name in CONTROLLERS for arg in ("--node-up", name)]
    added = simulate(placed.with_name("configured.xml"), "added", *up)
    report = classify(view(added))
    remotes = [n for n in report.nodes if n.node.startswith("compute")]
    assert all(n.health.host_down and n.idle_remote for n in remotes), remotes
    assert not [n for n in report.nodes if n.idle_remote and not n.node.startswith("compute")]
    lost = simulate(placed, "lost-idle", "--op-inject", _connection_lost(str(placed), "compute2"))
    assert not node(classify(view(lost)), "compute2").idle_remote


def test_a_fenced_remote_is_down_fenced(placed: Path) -> None:
    lost = simulate(placed, "lost-fenced", "--op-inject", _connection_lost(str(placed), "compute2"))
    fenced = simulate(lost, "fenced", execute=True)
    fence = FenceRecord("compute2", "reboot", "success", time.time(), "node1", "node1", "test")
    report = classify(view(fenced, [fence]))
    assert classes(report)["compute2"] == Health.HOST_DOWN_FENCED
    assert {n.node for n in report.nodes if n.health != Health.OK} == {"compute2"}
    # crm_simulate leaves a fenced remote unclean: only a fence since the connection's
    # failure vouches for it, not an older one
    old = replace(fence, completed=time.time() - 3600)
    assert classes(classify(view(fenced, [old])))["compute2"] == Health.HOST_UNREACHABLE_UNFENCED


def test_a_service_failed_on_a_remote_is_service_down_host_up(placed: Path) -> None:
    assert "compute3" in view(placed).snapshot.status.running_on("nova-compute")
    failed = simulate(placed, "service", "--op-inject", "nova-compute_monitor_10000@compute3=7")
    report = classify(view(failed))
    assert classes(report)["compute3"] == Health.SERVICE_DOWN_HOST_UP
    assert node(report, "compute3").services_down == ["nova-compute"]
    assert {n.node for n in report.nodes if n.health != Health.OK} == {"compute3"}


class CountingRunner(cluster.Runner):
    """Runs cluster programs on a CIB file and counts them by program."""

    def __init__(self, cib: Path) -> None:
        super().__init__(env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CIB_file": str(cib)})
        self.counts: Counter[str] = Counter()

    def run(self, args: Sequence[str], **kw: Any) -> tuple[int, str]:
        self.counts[args[0]] += 1
        return super().run(args, **kw)


def test_a_look_asks_the_cluster_as_often_with_24_remotes_as_with_4(tmp_path: Path) -> None:
    """One crm_mon and one fencer history per look (the fencer is asked again only the
    first time a node shows offline and clean without a fence): not one query per node."""
    counts = {}
    for computes in (4, 24):
        directory = tmp_path / f"{computes}-remotes"
        directory.mkdir()
        runner = CountingRunner(placed_cib(directory, computes))
        with cluster.using(runner):
            seen = live_view()
        report = classify(seen)
        assert sum(1 for n in report.nodes if n.node.startswith("compute")) == computes
        assert set(classes(report).values()) == {Health.OK}
        counts[computes] = dict(runner.counts)
    assert counts[4] == counts[24] == {"crm_mon": 1, "stonith_admin": 1}, counts
