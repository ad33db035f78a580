"""The CIB watcher's scheduler-input sign, on a directory laid out as Pacemaker's
/var/lib/pacemaker/pengine (the live crm_mon side runs in the lab's health tests)."""

from __future__ import annotations

import os
from pathlib import Path

from hakit.resource_agents.health.cib_watcher import CibWatcher


def test_a_new_scheduler_input_or_series_number_is_a_change(tmp_path: Path) -> None:
    watcher = CibWatcher(lambda _: None, scheduler=str(tmp_path))
    try:
        assert not watcher.changed()  # where it starts
        (tmp_path / "pe-input-1.bz2").write_bytes(b"BZh")
        assert watcher.changed()
        assert not watcher.changed()
        last = tmp_path / "pe-input.last"
        last.write_text("1")
        assert watcher.changed()
        os.utime(last, ns=(0, last.stat().st_mtime_ns + 1_000_000))  # rewritten: 2
        assert watcher.changed() and not watcher.changed()
    finally:
        watcher.close()
    assert not Path(watcher.directory).exists()
