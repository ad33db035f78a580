"""Node health classified from crm_mon output of CIB files driven by crm_simulate."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from hakit.ocf import cluster
from hakit.ocf.cluster import ClusterCommandError
from hakit.ocf.status import FenceEvent
from hakit.resource_agents.health.model import (
    Health,
    as_dict,
    classify,
    health_table,
)
from hakit.resource_agents.health.outbox import Outbox
from hakit.resource_agents.health.sources import (
    LOSS_HANDLING,
    ClusterView,
    FenceRecord,
    Snapshot,
    alert_evidence,
    alert_membership,
    leadership,
    live_view,
)
from tests.health.conftest import AlertRunner, Cib


def classes(view: ClusterView) -> dict[str, Health]:
    return {n.node: n.health for n in classify(view).nodes}


def evidence(outbox_path: Path) -> tuple[list[FenceRecord], dict[str, float]]:
    with Outbox(str(outbox_path)) as box:
        return alert_evidence(box)


def test_a_placed_cluster_is_ok(cib: Cib) -> None:
    report = classify(ClusterView(cib.snapshot(cib.placed), []))
    assert (report.dc, report.quorate) == ("node1", True)
    assert [(n.node, n.health, n.reasons) for n in report.nodes] == [
        ("node1", Health.OK, []),
        ("node2", Health.OK, []),
        ("node3", Health.OK, []),
    ]


def test_a_lost_node_is_unreachable_until_fenced(cib: Cib) -> None:
    lost = cib.simulate(cib.placed, "lost", "--node-fail", "node2", execute=False)
    node2 = classify(ClusterView(cib.snapshot(lost), [])).node("node2")
    assert node2 is not None and node2.health is Health.HOST_UNREACHABLE_UNFENCED
    assert node2.reasons == ["lost without a clean shutdown (unclean)", "no fencing result yet"]
    assert not node2.health.safe_action.startswith("safe to evacuate")


def test_a_failed_fence_keeps_it_unreachable(
    cib: Cib, alerts: AlertRunner, outbox_path: Path
) -> None:
    lost = cib.simulate(cib.placed, "lost-failed-fence", "--node-fail", "node2", execute=False)
    alerts.fencing("node2", ok=False, epoch=1_800_000_000.25)
    fences, joined = evidence(outbox_path)
    node2 = classify(ClusterView(cib.snapshot(lost), fences, joined)).node("node2")
    assert node2 is not None and node2.health is Health.HOST_UNREACHABLE_UNFENCED
    assert node2.reasons[1] == "last reboot failed at 2027-01-15T08:00:00.250000Z"


def test_a_confirmed_fence_makes_it_down_fenced(
    cib: Cib, alerts: AlertRunner, outbox_path: Path
) -> None:
    fenced = cib.simulate(cib.placed, "fenced", "--node-fail", "node2")
    alerts.node("node2", "member", epoch=1_800_000_000)
    alerts.node("node2", "lost", epoch=1_800_000_100)
    alerts.fencing("node2", executioner="node3", epoch=1_800_000_105.5)
    fences, joined = evidence(outbox_path)
    report = classify(ClusterView(cib.snapshot(fenced), fences, joined))
    node2 = report.node("node2")
    assert node2 is not None and node2.health is Health.HOST_DOWN_FENCED
    assert node2.fence is not None and node2.fence.executioner == "node3"
    assert node2.reasons == [
        "fenced: reboot by node3 at 2027-01-15T08:01:45.500000Z (fencing alert)"
    ]
    assert as_dict(report)["nodes"][1]["evacuation_safe"] is True  # type: ignore[index]


def test_without_a_fence_a_clean_departure_is_not_called_fenced(cib: Cib) -> None:
    fenced = cib.simulate(cib.placed, "fenced-unknown", "--node-fail", "node2")
    assert classes(ClusterView(cib.snapshot(fenced), []))["node2"] is Health.HOST_LEFT_CLUSTER
    unknown = classify(ClusterView(cib.snapshot(fenced), None)).node("node2")
    assert unknown is not None and unknown.reasons == [
        "left the cluster cleanly (fencing evidence unavailable)"
    ]


def fence_history(status: str) -> str:
    completed = ' completed="2027-01-15 08:00:00Z"' if status == "success" else ""
    return (
        '<pacemaker-result><fence_history><fence_event action="reboot" target="node2" '
        f'client="pacemaker-controld.9" origin="node1" status="{status}"{completed}/>'
        "</fence_history></pacemaker-result>"
    )


class FencerRunner(cluster.Runner):
    """crm_mon on a CIB file; the fencer's history from `answers`, one per question."""

    def __init__(self, cib: Path, answers: list[str]) -> None:
        super().__init__(env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CIB_file": str(cib)})
        self.answers, self.asked = answers, 0

    def run(self, args: Sequence[str], **kw: Any) -> tuple[int, str]:
        if args[0] != "stonith_admin":
            return super().run(args, **kw)
        self.asked += 1
        return 0, self.answers.pop(0)


def test_the_fencer_is_asked_again_once_when_it_answered_before_the_fence_ended(
    cib: Cib, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fencer is asked in parallel with the CIB: it may still show the fence pending
    when the CIB shows the node fenced (offline, clean), however long fencing took.
    It is asked again, once for each time the node goes offline."""
    monkeypatch.setattr("hakit.resource_agents.health.sources._OFFLINE_ASKED", set())
    fenced = cib.simulate(cib.placed, "fenced-late", "--node-fail", "node2")
    runner = FencerRunner(fenced, [fence_history("pending"), fence_history("success")])
    with cluster.using(runner):
        first = live_view()
    assert runner.asked == 2 and classes(first)["node2"] is Health.HOST_DOWN_FENCED
    runner.answers = [fence_history("success")]
    with cluster.using(runner):
        live_view()
    assert runner.asked == 3  # the same offline spell: asked once per look
    for cib_file, answers in ((cib.placed, 1), (fenced, 2)):  # online, then offline again
        runner.env = {**(runner.env or {}), "CIB_file": str(cib_file)}
        runner.answers, runner.asked = [fence_history("pending")] * answers, 0
        with cluster.using(runner):
            live_view()
        assert runner.asked == answers, cib_file


def test_an_old_fence_does_not_vouch_for_a_later_shutdown(
    cib: Cib, alerts: AlertRunner, outbox_path: Path
) -> None:
    stopped = cib.simulate(cib.placed, "stopped", "--node-down", "node2")
    alerts.fencing("node2", epoch=1_800_000_000)
    alerts.node("node2", "member", epoch=1_800_000_300)  # rebooted and joined again
    alerts.node("node2", "lost", epoch=1_800_000_900)  # then a clean shutdown
    fences, joined = evidence(outbox_path)
    assert classes(ClusterView(cib.snapshot(stopped), fences, joined))["node2"] is (
        Health.HOST_LEFT_CLUSTER
    )


def membership(outbox_path: Path) -> tuple[list[FenceRecord], dict[str, float], dict[str, float]]:
    with Outbox(str(outbox_path)) as box:
        return alert_membership(box)


def test_a_loss_pacemaker_has_not_handled_yet_is_unreachable_for_a_while(
    cib: Cib, alerts: AlertRunner, outbox_path: Path
) -> None:
    """Lost from the membership moments ago while crm_mon still shows node2 online (corosync
    and the alerts come first): unreachable; after LOSS_HANDLING, Pacemaker's view wins;
    a node shutting down is never taken for lost."""
    placed = cib.snapshot(cib.placed)
    alerts.node("node2", "member", epoch=1_800_000_000)
    alerts.node("node2", "lost", epoch=1_800_000_100)
    fences, joined, left = membership(outbox_path)
    soon = classify(ClusterView(placed, fences, joined, 1_800_000_100.2, left=left)).node("node2")
    assert soon is not None and soon.health is Health.HOST_UNREACHABLE_UNFENCED
    assert soon.reasons == [
        "lost from the membership at 2027-01-15T08:01:40.000000Z; Pacemaker still shows it online",
        "no fencing result yet",
    ]
    late = ClusterView(placed, fences, joined, 1_800_000_100 + LOSS_HANDLING + 1, left=left)
    assert classes(late)["node2"] is Health.OK
    unknown = ClusterView(placed, fences, joined, 1_800_000_100.2)  # no loss times known
    assert classes(unknown)["node2"] is Health.OK
    leaving = cib.snapshot(
        cib.edit(
            cib.placed,
            "leaving",
            "crm_attribute",
            "--node",
            "node2",
            "--name",
            "shutdown",
            "--update",
            "1800000099",
            "--lifetime",
            "reboot",
        )
    )
    shutting_down = ClusterView(leaving, fences, joined, 1_800_000_100.2, left=left)
    assert classes(shutting_down)["node2"] is Health.DEGRADED  # "shutting down"
    alerts.node("node2", "member", epoch=1_800_000_105)  # back before Pacemaker noticed
    fences, joined, left = membership(outbox_path)
    assert classes(ClusterView(placed, fences, joined, 1_800_000_105.1, left=left))["node2"] is (
        Health.OK
    )
    # a snapshot asked for before the loss says nothing of after it: lost, then joining
    old = ClusterView(placed, fences, {}, 1_800_000_300, left=left, taken=1_800_000_099)
    assert classes(old)["node2"] is Health.HOST_UNREACHABLE_UNFENCED  # past LOSS_HANDLING
    again = classify(
        ClusterView(placed, fences, joined, 1_800_000_300, left=left, taken=1_800_000_099)
    ).node("node2")
    assert again is not None and again.health is Health.DEGRADED
    assert again.reasons == [
        "a cluster member again since 2027-01-15T08:01:45.000000Z, after a loss",
        "not yet seen online since",
    ]


def test_a_fence_since_the_loss_is_down_fenced_while_pacemaker_still_says_unclean(
    cib: Cib, alerts: AlertRunner, outbox_path: Path
) -> None:
    """The fencing alert comes before crm_mon shows node2 clean: a fence after its loss
    powers it off; a fence from before the loss vouches for nothing."""
    lost = cib.snapshot(
        cib.simulate(cib.placed, "unclean-fenced", "--node-fail", "node2", execute=False)
    )
    alerts.fencing("node2", executioner="node3", epoch=1_800_000_050)  # an earlier outage's
    alerts.node("node2", "member", epoch=1_800_000_080)
    alerts.node("node2", "lost", epoch=1_800_000_100)
    fences, joined, left = membership(outbox_path)
    assert classes(ClusterView(lost, fences, joined, left=left))["node2"] is (
        Health.HOST_UNREACHABLE_UNFENCED
    )
    alerts.fencing("node2", executioner="node3", epoch=1_800_000_101.5)
    fences, joined, left = membership(outbox_path)
    node2 = classify(ClusterView(lost, fences, joined, left=left)).node("node2")
    assert node2 is not None and node2.health is Health.HOST_DOWN_FENCED
    assert node2.fence is not None and node2.fence.completed == 1_800_000_101.5
    assert classes(ClusterView(lost, fences, joined))["node2"] is (  # the loss unknown
        Health.HOST_UNREACHABLE_UNFENCED
    )


def test_a_node_joining_again_is_degraded_until_pacemaker_shows_it_online(
    cib: Cib, alerts: AlertRunner, outbox_path: Path
) -> None:
    """Fenced, then a membership member again (its last node alert) while crm_mon still
    shows it offline: the host is up (DEGRADED), not "left cleanly"; lost again, the
    fence no longer counts and a clean stop is HOST_LEFT_CLUSTER."""
    fenced = cib.snapshot(cib.simulate(cib.placed, "join-fenced", "--node-fail", "node2"))
    alerts.node("node2", "lost", epoch=1_800_000_000)
    alerts.fencing("node2", executioner="node3", epoch=1_800_000_002)
    with Outbox(str(outbox_path)) as box:
        fences, joined, left = alert_membership(box)
    assert classes(ClusterView(fenced, fences, joined, left=left))["node2"] is (
        Health.HOST_DOWN_FENCED
    )
    alerts.node("node2", "member", epoch=1_800_000_030)
    with Outbox(str(outbox_path)) as box:
        fences, joined, left = alert_membership(box)
    joining = classify(ClusterView(fenced, fences, joined, left=left)).node("node2")
    assert joining is not None and joining.health is Health.DEGRADED
    assert joining.reasons == [
        "a cluster member again since 2027-01-15T08:00:30.000000Z, not yet online in Pacemaker"
    ]
    alerts.node("node2", "lost", epoch=1_800_000_900)  # then a clean shutdown
    stopped = cib.snapshot(cib.simulate(cib.placed, "join-stopped", "--node-down", "node2"))
    with Outbox(str(outbox_path)) as box:
        fences, joined, left = alert_membership(box)
    assert classes(ClusterView(stopped, fences, joined, left=left))["node2"] is (
        Health.HOST_LEFT_CLUSTER
    )


def test_a_failed_clone_instance_is_service_down_host_up(cib: Cib) -> None:
    failing = cib.simulate(
        cib.placed,
        "compute-failing",
        "--op-inject",
        "compute_monitor_10000@node3=1",
        "--op-fail",
        "compute_start_0@node3=1",
    )
    failed = classify(ClusterView(cib.snapshot(failing), [])).node("node3")
    assert failed is not None and failed.health is Health.SERVICE_DOWN_HOST_UP
    assert failed.reasons == ["compute failed here (start: rc=1, User-injected result)"]
    # start-failure-is-fatal: the controller's fail count bans it, the scheduler stops it
    banned = cib.edit(
        failing,
        "compute-banned",
        "crm_attribute",
        "-N",
        "node3",
        "-l",
        "reboot",
        "-n",
        "fail-count-compute",
        "-v",
        "INFINITY",
    )
    stopped = cib.simulate(banned, "compute-stopped")
    assert "node3" not in cib.where(stopped, "compute")
    node3 = classify(ClusterView(cib.snapshot(stopped), [])).node("node3")
    assert node3 is not None and node3.health is Health.SERVICE_DOWN_HOST_UP
    assert node3.services_down == ["compute"]
    assert node3.reasons == [
        "compute stopped here after a failure (start: rc=1, User-injected result)"
    ]
    assert "never evacuate" in node3.health.safe_action


def test_a_failed_service_that_moved_away_leaves_its_node_degraded(cib: Cib) -> None:
    (home,) = cib.where(cib.placed, "web")
    failing = cib.simulate(
        cib.placed,
        "web-failing",
        "--op-inject",
        f"web_monitor_10000@{home}=1",
        "--op-fail",
        f"web_start_0@{home}=1",
    )
    banned = cib.edit(
        failing,
        "web-banned",
        "crm_attribute",
        "-N",
        home,
        "-l",
        "reboot",
        "-n",
        "fail-count-web",
        "-v",
        "INFINITY",
    )
    moved = cib.simulate(banned, "web-moved")
    (now,) = cib.where(moved, "web")
    assert now != home
    node = classify(ClusterView(cib.snapshot(moved), [])).node(home)
    assert node is not None and node.health is Health.DEGRADED
    assert node.reasons == [f"web failed here (start: rc=1, User-injected result), now on {now}"]


def test_an_unreachable_dependency_and_standby_degrade_a_node(cib: Cib) -> None:
    broker_down = cib.edit(
        cib.placed,
        "broker-down",
        "crm_attribute",
        "-N",
        "node2",
        "-l",
        "reboot",
        "-n",
        "hakit-nova-compute-broker",
        "-v",
        "down",
    )
    both = cib.edit(
        broker_down, "standby", "crm_attribute", "-N", "node3", "-n", "standby", "-v", "on"
    )
    report = classify(ClusterView(cib.snapshot(both), []))
    assert [(n.node, n.health) for n in report.nodes] == [
        ("node1", Health.OK),
        ("node2", Health.DEGRADED),
        ("node3", Health.DEGRADED),
    ]
    assert report.nodes[1].reasons == [
        "nova-compute: broker unreachable from this node (hakit-nova-compute-broker=down)"
    ]
    assert report.nodes[2].reasons == ["standby: runs no resources"]


def test_without_quorum_nothing_is_called_fenced(
    cib: Cib, alerts: AlertRunner, outbox_path: Path
) -> None:
    minority = cib.simulate(
        cib.placed,
        "minority",
        "--quorum",
        "false",
        "--node-fail",
        "node2",
        "--node-fail",
        "node3",
        execute=False,
    )
    alerts.fencing("node2")
    fences, joined = evidence(outbox_path)
    snapshot = cib.snapshot(minority)
    report = classify(ClusterView(snapshot, fences, joined))
    assert [(n.node, n.health) for n in report.nodes] == [
        ("node1", Health.DEGRADED),
        ("node2", Health.HOST_UNREACHABLE_UNFENCED),
        ("node3", Health.HOST_UNREACHABLE_UNFENCED),
    ]
    assert "this partition has no quorum" in report.nodes[0].reasons
    assert leadership(snapshot, "node1").leader is False


def test_leadership_is_the_dc_of_a_quorate_partition(cib: Cib, monkeypatch: object) -> None:
    snapshot = cib.snapshot(cib.placed)
    assert leadership(snapshot, "node1").leader
    assert not leadership(snapshot, "node2").leader
    assert leadership(snapshot, "node2").reason == "the DC is node1, this is node2"


def test_table_and_json(cib: Cib) -> None:
    lost = cib.simulate(cib.placed, "lost-table", "--node-fail", "node2", execute=False)
    report = classify(ClusterView(cib.snapshot(lost), [], now=1_800_000_000))
    assert health_table(report) == (
        "DC node1, quorate, 3 nodes, at 2027-01-15T08:00:00.000000Z\n"
        "NODE   HEALTH                     REASONS\n"
        "node1  OK                         -\n"
        "node2  HOST_UNREACHABLE_UNFENCED  lost without a clean shutdown (unclean); no fencing result yet\n"
        "node3  OK                         -\n"
    )
    data = json.loads(json.dumps(as_dict(report)))
    assert data["nodes"][1] == {
        "node": "node2",
        "health": "HOST_UNREACHABLE_UNFENCED",
        "safe_action": "alarm only; nothing destructive until fenced",
        "evacuation_safe": False,
        "reasons": ["lost without a clean shutdown (unclean)", "no fencing result yet"],
        "services_down": [],
        "fence": None,
    }


def test_snapshot_reads_what_cluster_status_leaves_out(cib: Cib) -> None:
    snapshot: Snapshot = cib.snapshot(cib.placed)
    assert snapshot.clone_instances == {"compute"}
    assert snapshot.details["node2"].expected_up is True
    assert snapshot.attributes == {}


def test_fencer_history_entries_count_like_alerts() -> None:
    """stonith_admin --history --output-as=xml, as pacemaker 2.1 words an entry."""
    root = ElementTree.fromstring(
        '<pacemaker-result><fence_history><fence_event action="off" target="node2" '
        'client="pacemaker-controld.9" origin="node1" status="success" delegate="node3" '
        'completed="2027-01-15 08:00:00Z"/><fence_event action="reboot" target="node3" '
        'client="stonith_admin.7" origin="node1" status="pending" extended-status="1"/>'
        "</fence_history></pacemaker-result>"
    )
    done, pending = (FenceRecord.from_history(FenceEvent(e)) for e in root.iter("fence_event"))
    assert done == FenceRecord(
        "node2", "off", "success", 1_800_000_000.0, "node3", "node1", "fencer history"
    )
    assert done.powers_off and not pending.powers_off and pending.completed is None


def test_a_failing_tool_is_reported_in_its_own_words() -> None:
    with pytest.raises(ClusterCommandError) as failure:
        cluster.pacemaker_xml(
            ["crm_resource", "--show-metadata", "ocf:nope:nope", "--output-as=xml"]
        )
    assert str(failure.value).endswith(
        ": crm_resource: Metadata query for ocf:nope:nope failed: No such device or address"
    )
    assert failure.value.returncode == 105
