"""A start in flight is not running: real crm_mon reads a CIB whose status records the
start of `svc` as pending (rc 193, as Pacemaker writes it with record-pending) and shows
it active with role Starting. A wait for "running everywhere" that took it as running
went on while the start could still fail (tests/lab/test_lab_remotes.py killed a daemon
during its start)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hakit.ocf import cluster

OP = (
    '<lrm_rsc_op id="svc_last_0" operation_key="svc_start_0" operation="start" '
    'crm-debug-origin="do_update_resource" crm_feature_set="3.16.1" '
    'transition-key="1:1:0:{uuid}" transition-magic="{magic};1:1:0:{uuid}" exit-reason="" '
    'on_node="node1" call-id="2" rc-code="{rc}" op-status="{status}" interval="0" '
    'last-rc-change="1700000000" exec-time="0" queue-time="0"/>'
)


def cib_with_start(path: Path, *, pending: bool, failed: bool = False) -> Path:
    """One node, one Dummy, its start recorded done, in flight or failed."""
    text = subprocess.run(
        ["cibadmin", "--empty"], capture_output=True, text=True, check=True
    ).stdout
    op = OP.format(
        uuid="aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa",
        magic="-1:193" if pending else "0:1" if failed else "0:0",
        rc="193" if pending else "1" if failed else "0",
        status="-1" if pending else "0",
    )
    replacements = {
        "<crm_config/>": '<crm_config><cluster_property_set id="o"><nvpair id="o-s" '
        'name="stonith-enabled" value="false"/></cluster_property_set></crm_config>',
        "<nodes/>": '<nodes><node id="1" uname="node1"/></nodes>',
        "<resources/>": '<resources><primitive id="svc" class="ocf" provider="heartbeat" '
        'type="Dummy"/></resources>',
        "<status/>": '<status><node_state id="1" uname="node1" in_ccm="true" crmd="online" '
        'join="member" expected="member"><lrm id="1"><lrm_resources><lrm_resource id="svc" '
        f'type="Dummy" class="ocf" provider="heartbeat">{op}</lrm_resource></lrm_resources>'
        "</lrm></node_state></status>",
    }
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("pending", "role", "running"), [(True, "Starting", []), (False, "Started", ["node1"])]
)
def test_a_start_in_flight_is_active_not_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pending: bool, role: str, running: list[str]
) -> None:
    monkeypatch.setenv("CIB_file", str(cib_with_start(tmp_path / "cib.xml", pending=pending)))
    status = cluster.cluster_status()
    [svc] = status.instances("svc")
    assert (svc.role, svc.active, svc.started) == (role, True, not pending)
    assert status.active_on("svc") == ["node1"]
    assert status.running_on("svc") == running


def test_a_failed_start_is_not_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """crm_mon shows an instance whose start failed as active and FAILED until its stop:
    not running (a wait for "running everywhere" returned on it, tests/lab/test_lab.py)."""
    path = cib_with_start(tmp_path / "cib.xml", pending=False, failed=True)
    monkeypatch.setenv("CIB_file", str(path))
    status = cluster.cluster_status()
    [svc] = status.instances("svc")
    assert (svc.active, svc.failed, svc.started) == (True, True, False)
    assert status.active_on("svc") == ["node1"]
    assert status.running_on("svc") == []
