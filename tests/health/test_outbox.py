"""The outbox: idempotent appends, cursors that only move forward, and nothing lost when a
writer or a reader is killed with SIGKILL mid-stream."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hakit.resource_agents.health.outbox import EVENTS, NOTIFICATIONS, Outbox

WRITER = """
import sys
from hakit.resource_agents.health.outbox import Outbox
box = Outbox(sys.argv[1])
for i in range(1_000_000):
    box.append(f"{sys.argv[2]}-{i}", '{"n": %d}' % i, kind="node", node="node1")
    print(f"{sys.argv[2]}-{i}", flush=True)
"""

READER = """
import sys
from hakit.resource_agents.health.outbox import EVENTS, Outbox
box = Outbox(sys.argv[1])
while True:
    after = box.cursor("mano") or 0
    records = box.read(EVENTS, after, limit=1)
    if not records:
        break
    print(f"delivered {records[0].seq}", flush=True)
    box.advance("mano", records[0].seq)
    print(f"acked {records[0].seq}", flush=True)
"""


def start(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after(process: subprocess.Popen[str], lines: int) -> list[str]:
    """Read `lines` lines, SIGKILL the process, return every line it printed."""
    assert process.stdout is not None
    seen = [process.stdout.readline().strip() for _ in range(lines)]
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL
    rest = process.stdout.read()  # the same buffered reader: nothing it already holds is lost
    return [line for line in seen + rest.splitlines() if line]


def test_append_read_and_idempotent_ids(tmp_path: Path) -> None:
    with Outbox(str(tmp_path / "o.db")) as box:
        first = box.append("a", "{}", kind="node", node="node2", occurred=10.5)
        assert first == 1
        assert box.append("a", '{"other": 1}') is None  # same id: stored once
        box.append("n1", "{}", stream=NOTIFICATIONS)
        box.append("b", "{}", kind="fencing")
        assert [r.event_id for r in box.read(EVENTS, 0)] == ["a", "b"]
        assert [r.event_id for r in box.read(EVENTS, 0, kinds=("fencing",))] == ["b"]
        record = box.find("a")
        assert record is not None and (record.kind, record.node, record.occurred) == (
            "node",
            "node2",
            10.5,
        )
        seqs = [r.seq for r in box.read(EVENTS, 0) + box.read(NOTIFICATIONS, 0)]
        assert seqs[0] < seqs[2] < seqs[1]  # increasing across streams; gaps allowed
        assert (box.last_seq(EVENTS), box.last_seq(NOTIFICATIONS)) == (seqs[1], seqs[2])


def test_durability_settings_and_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(str(path)) as box:
        assert box.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert box.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert path.stat().st_mode & 0o777 == 0o660


def test_cursors_only_move_forward_and_share_transactions(tmp_path: Path) -> None:
    with Outbox(str(tmp_path / "o.db")) as box:
        assert box.cursor("s") is None
        box.advance("s", 5)
        box.advance("s", 3)
        assert box.cursor("s") == 5
        with pytest.raises(RuntimeError), box.transaction():
            box.append("x", "{}")
            box.advance("s", 9)
            raise RuntimeError("crash before commit")
        assert box.cursor("s") == 5 and box.find("x") is None
        with box.transaction():
            box.append("x", "{}")
            box.advance("s", 9)
        assert box.cursor("s") == 9 and box.find("x") is not None
        box.forget("s")
        assert box.subscribers() == {}


def test_a_killed_writer_loses_no_acknowledged_event(tmp_path: Path) -> None:
    path = str(tmp_path / "o.db")
    acknowledged = kill_after(start(WRITER, path, "w"), 200)
    with Outbox(path) as box:
        assert box.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r.event_id for r in box.read(EVENTS, 0, limit=-1)}
        assert set(acknowledged) <= stored
        assert len(stored) <= len(acknowledged) + 1  # at most the one in flight
        assert box.append("after-the-crash", "{}") is not None


def test_concurrent_writers_all_land(tmp_path: Path) -> None:
    path = str(tmp_path / "o.db")
    writers = [start(WRITER.replace("1_000_000", "50"), path, f"w{n}") for n in range(4)]
    for writer in writers:
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    with Outbox(path) as box:
        assert len({r.event_id for r in box.read(EVENTS, 0, limit=-1)}) == 200


def test_a_killed_reader_resumes_after_its_last_acknowledgement(tmp_path: Path) -> None:
    path = str(tmp_path / "o.db")
    with Outbox(path) as box, box.transaction():
        for i in range(2000):
            box.append(f"e{i}", "{}")
    lines = kill_after(start(READER, path), 100)
    acked = [int(line.split()[1]) for line in lines if line.startswith("acked")]
    delivered = [int(line.split()[1]) for line in lines if line.startswith("delivered")]
    with Outbox(path) as box:
        position = box.cursor("mano")
        assert position is not None and position >= acked[-1]
        assert position <= delivered[-1]  # never ahead of what was delivered
        pending = box.read(EVENTS, position, limit=-1)
        assert pending[0].seq == position + 1 and pending[-1].seq == 2000


def test_an_unwritable_place_is_an_error_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises((sqlite3.Error, OSError)):
        Outbox(str(tmp_path / "dir.db"), timeout=0.5)


def test_prune_only_what_readers_are_done_with(tmp_path: Path) -> None:
    with Outbox(str(tmp_path / "o.db")) as box:
        for i, kind in enumerate(("resource", "node", "resource", "resource")):
            box.append(f"e{i}", "{}", kind=kind)
        seqs = [r.seq for r in box.read(EVENTS, 0)]
        assert box.prune(EVENTS, upto=seqs[2], recorded_before=0.0) == 0  # nothing that old
        gone = box.prune(EVENTS, upto=seqs[2], recorded_before=9e9, kinds=("resource",))
        assert gone == 2
        assert [r.event_id for r in box.read(EVENTS, 0)] == ["e1", "e3"]
