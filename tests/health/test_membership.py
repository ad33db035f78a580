"""The membership watcher's reading of `corosync-quorumtool -m` (the text below is what
corosync 3.1.7 printed in the lab: a start, node3 lost, node3 back), and its events. The
watcher against a live corosync is tested in the lab (tests/lab/test_health.py)."""

from __future__ import annotations

from pathlib import Path

from hakit.resource_agents.health.membership import changes, member_lists, record
from hakit.resource_agents.health.outbox import EVENTS, Outbox
from hakit.resource_agents.health.sources import alert_membership

BLOCK = """Quorum information
------------------
Date:             Sun Dec  6 01:32:28 2026
Quorum provider:  corosync_votequorum
Nodes:            {count}
Node ID:          0x00000001
Ring ID:          {ring}
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      {count}
Quorum:           2
Flags:            Quorate

Membership information
----------------------
    Nodeid      Votes    Qdevice Name
{rows}

"""
ROWS = {
    "node1": "0x00000001          1         NR node1 (local)",
    "node2": "0x00000002          1         NR node2",
    "node3": "0x00000003          1         NR node3",
}


def block(ring: str, *nodes: str) -> str:
    rows = "\n".join(ROWS[n] for n in nodes)
    return BLOCK.format(count=len(nodes), ring=ring, rows=rows)


def test_each_status_block_gives_its_ring_and_members() -> None:
    text = block("1.e9", "node1", "node2", "node3") + block("1.ed", "node1", "node2")
    text += block("1.f2", "node1", "node2", "node3")
    lists = list(member_lists(text.splitlines(keepends=True)))
    assert lists == [
        ("1.e9", {"node1", "node2", "node3"}),
        ("1.ed", {"node1", "node2"}),
        ("1.f2", {"node1", "node2", "node3"}),
    ]


def test_a_block_cut_short_yields_nothing_until_it_ends() -> None:
    text = block("1.e9", "node1", "node2", "node3")
    assert list(member_lists(text.splitlines(keepends=True)[:-2])) == []


def test_changes_name_who_joined_and_who_left() -> None:
    assert changes({"node1", "node2"}, {"node1", "node3"}) == [
        ("node2", "lost"),
        ("node3", "member"),
    ]
    assert changes({"node1"}, {"node1"}) == []


def test_stored_changes_are_membership_evidence(tmp_path: Path) -> None:
    """Stored, a change counts as a node alert does, once per ring."""
    path = str(tmp_path / "outbox.db")
    with Outbox(path) as box:
        assert record(box, "1.ed", [("node3", "lost")], 100.0) == 1
        assert record(box, "1.f2", [("node3", "member")], 104.5) == 1
        assert record(box, "1.f2", [("node3", "member")], 104.6) == 0  # seen: not again
        assert [r.kind for r in box.read(EVENTS, 0, limit=-1)] == ["node", "node"]
        _, joined, left = alert_membership(box)
    assert (joined, left) == ({"node3": 104.5}, {"node3": 100.0})
