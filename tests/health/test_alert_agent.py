"""The alert agent as Pacemaker runs it: the installed entry script, `python3 -IS`, the
CRM_alert_* environment; and its installation."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from pathlib import Path

import pytest

from hakit.resource_agents.health.outbox import EVENTS, Outbox
from hakit.resource_agents.health.sources import FenceRecord
from hakit.tools.install_agents import install, uninstall
from tests.health.conftest import SYSTEM_PYTHON, AlertRunner, alert_env, fencing_desc


def run(
    script: Path, env: dict[str, str], *python_options: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYSTEM_PYTHON, "-IS", *python_options, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_node_event_is_stored_with_pacemakers_time(alert_agent: Path, outbox_path: Path) -> None:
    env = alert_env(
        outbox_path, "node", "node2", "lost", epoch=1_800_000_000, usec=250, sequence=41, nodeid="2"
    )
    done = run(alert_agent, env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    with Outbox(str(outbox_path)) as box:
        (event,) = box.read(EVENTS, 0)
    assert (event.kind, event.node, event.occurred) == ("node", "node2", 1_800_000_000.00025)
    assert event.event_id == f"{os.uname().nodename}:1800000000.000250:41:node"
    fields = json.loads(event.body)
    assert fields["desc"] == "lost" and fields["nodeid"] == "2" and fields["version"] == "2.1.5"


def test_one_alert_for_two_recipients_is_stored_once(alert_agent: Path, outbox_path: Path) -> None:
    env = alert_env(
        outbox_path,
        "resource",
        "node3",
        "error",
        epoch=1_800_000_000,
        sequence=7,
        rsc="compute",
        task="monitor",
        interval="10000",
        rc="1",
        target_rc="0",
        status="0",
    )
    for recipient in ("mano-a", "mano-b"):
        assert run(alert_agent, {**env, "CRM_alert_recipient": recipient}).returncode == 0
    with Outbox(str(outbox_path)) as box:
        (event,) = box.read(EVENTS, 0)
    assert json.loads(event.body)["rsc"] == "compute"


def test_a_fencing_alert_names_who_fenced_and_when(alerts: AlertRunner, outbox_path: Path) -> None:
    alerts.fencing("node2", executioner="node3", epoch=1_800_000_005.5)
    with Outbox(str(outbox_path)) as box:
        (event,) = box.read(EVENTS, 0)
    record = FenceRecord.from_alert(json.loads(event.body), event.occurred)
    assert record == FenceRecord(
        "node2",
        "reboot",
        "success",
        1_800_000_005.5,
        "node3",
        "node1",
        "fencing alert",
        reference="4f1c6c1e-3e0b-4a64-9f0e",
    )
    assert record.powers_off


def test_text_that_needs_escaping_survives(alert_agent: Path, outbox_path: Path) -> None:
    desc = 'quote " backslash \\ newline \n tab \t unicode é ☃'
    assert (
        run(alert_agent, alert_env(outbox_path, "attribute", "node1", desc, epoch=1)).returncode
        == 0
    )
    with Outbox(str(outbox_path)) as box:
        assert json.loads(box.read(EVENTS, 0)[0].body)["desc"] == desc


def test_errors_are_one_line_never_a_traceback(alert_agent: Path, tmp_path: Path) -> None:
    no_kind = run(alert_agent, {"PATH": "/usr/bin"})
    assert no_kind.returncode == 1 and no_kind.stderr.count("\n") == 1
    (tmp_path / "dir.db").mkdir()
    unwritable = run(alert_agent, alert_env(tmp_path / "dir.db", "node", "n", "lost", epoch=1))
    assert unwritable.returncode == 1
    assert unwritable.stderr.startswith(f"hakit alert: event not stored in {tmp_path / 'dir.db'}: ")
    assert "Traceback" not in unwritable.stderr


def test_the_alert_path_imports_nothing_heavy(alert_agent: Path, outbox_path: Path) -> None:
    done = run(
        alert_agent, alert_env(outbox_path, "node", "node2", "member", epoch=1), "-X", "importtime"
    )
    assert done.returncode == 0
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "hakit.resource_agents.health.alert_agent" in imported
    assert imported.isdisjoint(
        {
            "json",
            "re",
            "typing",
            "enum",
            "dataclasses",
            "subprocess",
            "logging",
            "hakit.ocf",
            "uuid",
        }
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as hacluster")
def test_hacluster_writes_into_the_installed_state_directory(
    alert_agent: Path, tmp_path: Path
) -> None:
    try:
        pwd.getpwnam("hacluster")
    except KeyError:
        pytest.skip("no hacluster user (Pacemaker not installed)")
    state = tmp_path / "state"
    install(python=SYSTEM_PYTHON, root=tmp_path / "ocf", state_dir=state)
    assert state.stat().st_mode & 0o7777 == 0o2770
    for directory in (tmp_path, *tmp_path.parents):
        directory.chmod(directory.stat().st_mode | 0o001)  # let hacluster walk to it
    env = alert_env(state / "outbox.db", "node", "node2", "lost", epoch=1)
    done = subprocess.run(
        [
            "setpriv",
            "--reuid=hacluster",
            "--regid=haclient",
            "--init-groups",
            SYSTEM_PYTHON,
            "-IS",
            str(tmp_path / "ocf" / "libexec" / "hakit" / "alert"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with Outbox(str(state / "outbox.db")) as box:  # root reads and writes it too
        assert len(box.read(EVENTS, 0)) == 1
        assert box.append("by-root", "{}") is not None


def test_install_and_uninstall_the_alert_entry_script(tmp_path: Path) -> None:
    first = install(python=SYSTEM_PYTHON, root=tmp_path)
    script = tmp_path / "libexec" / "hakit" / "alert"
    assert script in first.written and script.stat().st_mode & 0o777 == 0o755
    assert script.read_text().startswith("#!/usr/bin/python3 -IS\n")
    assert (tmp_path / "lib/hakit/hakit/resource_agents/health/outbox.py").exists()
    assert (
        tmp_path / "lib/hakit/hakit/resource_agents/health/publisher.py"
    ).exists()  # for `health`
    again = install(python=SYSTEM_PYTHON, root=tmp_path)
    assert again.written == [] and again.removed == []
    removed = uninstall(root=tmp_path).removed
    assert script in removed and script.with_name("health") in removed
    assert not script.parent.exists()


def test_the_entry_script_says_how_to_use_it(alert_agent: Path) -> None:
    done = run(alert_agent, {})
    assert done.returncode == 1
    assert done.stderr == "hakit alert: no CRM_alert_kind; Pacemaker runs this as an alert agent\n"
    assert fencing_desc("n", "m")  # the helper the other tests use stays in step
