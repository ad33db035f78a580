"""`hakit agents install` into a scratch OCF root: idempotent, fast entry scripts, clean removal."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hakit.tools.install_agents import install, uninstall


def test_install_is_idempotent_and_the_entry_script_runs(tmp_path: Path) -> None:
    first = install(root=tmp_path)
    script = tmp_path / "resource.d" / "hakit" / "service"
    assert script in first.written and script.stat().st_mode & 0o777 == 0o755
    assert script.read_text().startswith("#!/usr/bin/python3 -IS\n")
    second = install(root=tmp_path)
    assert second.written == [] and second.removed == []
    compiled = list((tmp_path / "lib" / "hakit").rglob("*.pyc"))
    assert compiled, "the agent code is byte-compiled at install time"
    done = subprocess.run([str(script), "meta-data"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and '<resource-agent name="service"' in done.stdout


def test_stale_files_are_removed_and_uninstall_leaves_nothing(tmp_path: Path) -> None:
    install(root=tmp_path)
    stale = tmp_path / "resource.d" / "hakit" / "retired-agent"
    manifest = tmp_path / "lib" / "hakit" / "INSTALLED"
    manifest.write_text(manifest.read_text() + f"{stale}\n")
    stale.write_text("#!/bin/sh\n")
    report = install(root=tmp_path)
    assert stale in report.removed and not stale.exists()
    uninstall(root=tmp_path)
    assert not (tmp_path / "lib" / "hakit").exists()
    assert not (tmp_path / "resource.d" / "hakit").exists()


def test_the_monitor_path_imports_nothing_heavy(tmp_path: Path) -> None:
    """The installed agent must not import lxml, typing, enum, re or subprocess on monitor."""
    install(root=tmp_path)
    script = tmp_path / "resource.d" / "hakit" / "service"
    done = subprocess.run(
        ["/usr/bin/python3", "-IS", "-X", "importtime", str(script), "monitor"],
        env={"OCF_RESOURCE_INSTANCE": "x", "HAKIT_RUN_DIR": str(tmp_path / "run"),
             "OCF_RESKEY_binary": "sh", "OCF_RESKEY_CRM_meta_interval": "10000"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 7
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert imported.isdisjoint({"lxml", "typing", "enum", "re", "subprocess", "logging"})
    assert "hakit.resource_agents.service" in imported
