"""ocf:hakit:cinder-volume, installed, against a real cinder-volume (A/A fake HA driver,
cinder cluster `hakit`) on the session's MariaDB and RabbitMQ. The tests of this module
run in order on one instance: start, monitors, a killed worker, a hung worker, a broker
outage with and without a cluster's view, a killed master, stop. Its cloud is hakit's
user of the session's clouds.yaml: depth 20 gets a Keystone token."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakit.lab import keystone
from hakit.ocf import OCFExit, proc
from tests.openstack.conftest import (
    REPORT_INTERVAL,
    SERVICE_DOWN_TIME,
    Cloud,
    FakeCluster,
    Resource,
    imported_modules,
    median_monitor_ms,
    wait_until,
)

NODE = "cva"
ATTRIBUTE = "hakit-cv-broker"


@pytest.fixture(scope="module")
def cv(cloud: Cloud, module_tmp: Path) -> Iterator[Resource]:
    """A clone instance (clone-max 2) on node cva: host cva, cinder cluster hakit."""
    resource = Resource(
        "cinder-volume",
        module_tmp,
        "cv:0",
        binary=cloud.bin("cinder-volume"),
        config=str(cloud.cinder_conf),
        CRM_meta_clone_max="2",
        CRM_meta_clone="0",
        CRM_meta_on_node=NODE,
        management_url=cloud.rabbitmq.management_url,
        cloud="hakit",
        clouds_yaml=str(cloud.clouds_yaml),
    )
    yield resource
    resource("stop")


def worker(resource: Resource) -> int:
    children = [p for p in proc.tree(resource.pid) if p != resource.pid]
    assert len(children) == 1, children
    return children[0]


def test_start_registers_and_heartbeats_then_monitors_pass(cv: Resource, cloud: Cloud) -> None:
    assert cv.monitor(interval_ms=0).code == OCFExit.NOT_RUNNING  # probe
    began = time.monotonic()
    result = cv("start")
    assert result.code == OCFExit.SUCCESS, (result.stderr, cv.log())
    started = time.monotonic() - began
    rows = cloud.mariadb.sql(
        "SELECT host, cluster_name, TIMESTAMPDIFF(SECOND, updated_at, UTC_TIMESTAMP()) "
        "FROM cinder.services WHERE `binary`='cinder-volume' AND host LIKE 'cva@%';"
    )
    host, cluster, age = rows.split()
    assert (host, cluster) == (f"{NODE}@fake", "hakit@fake")
    assert int(age) <= REPORT_INTERVAL + 1, "start returned before the first heartbeat"
    print(f"\ncinder-volume start: {started:.1f}s")
    for depth in (0, 10, 20):
        result = cv.monitor(depth)
        assert result.code == OCFExit.SUCCESS, (depth, result.stderr)
    wait_until(
        lambda: cv.monitor(20).code == 0 and "consumers ok" in cv.health(),
        20,
        "consumers seen by the management API",
    )
    assert cv("start").code == OCFExit.SUCCESS  # idempotent
    cmdline = Path(f"/proc/{cv.pid}/cmdline").read_bytes()
    assert cloud.password.encode() not in cmdline
    assert b"--config-file" in cmdline and str(cloud.cinder_conf).encode() in cmdline


def test_depth_20_fails_when_a_queue_has_no_consumer_of_ours(cv: Resource) -> None:
    queues = {"OCF_RESKEY_queues": "cinder-volume.{host}@fake cinder-volume.nobody@fake"}
    first = cv.monitor(20, env=queues)
    assert first.code == OCFExit.SUCCESS  # the management API lags: not yet a failure
    assert "no consumer in this process tree for queues cinder-volume.nobody@fake" in first.stderr
    health = Path(cv.tmp / "run" / "service" / "cv.health")
    lines = [ln.split() for ln in health.read_text().splitlines()]
    backdated = [
        [*ln[:2], str(float(ln[2]) - 60), *ln[3:]] if ln[0] == "consumers" else ln for ln in lines
    ]
    health.write_text("".join(" ".join(ln) + "\n" for ln in backdated))
    result = cv.monitor(20, env=queues)
    assert result.code == OCFExit.ERR_GENERIC
    assert result.exit_reason and "queues cinder-volume.nobody@fake for 6" in result.exit_reason
    assert cv.monitor(20).code == OCFExit.SUCCESS


def test_depth_20_is_degraded_while_keystone_refuses_the_cloud(
    cv: Resource, cloud: Cloud, module_tmp: Path
) -> None:
    """A wrong password in clouds.yaml: degraded (a restart would not fix it), Keystone's
    refusal as the reason, no password anywhere; depths 0 and 10 do not ask Keystone."""
    wrong = cloud.identity.cloud()
    wrong["auth"]["password"] = "not-the-password"  # noqa: S105
    path = keystone.clouds_yaml(module_tmp / "wrong" / "clouds.yaml", {"hakit": wrong})
    refused = cv.monitor(20, OCF_RESKEY_clouds_yaml=str(path))
    assert refused.code == OCFExit.DEGRADED, refused.stderr
    assert (refused.exit_reason or "").startswith(
        f"OpenStack calls would fail: Keystone at {cloud.identity.url} refused cloud 'hakit' "
        "(user hakit, project service): HTTP 401"
    ), refused.exit_reason
    assert "not-the-password" not in refused.stdout + refused.stderr + cv.log()
    for depth in (0, 10):
        assert cv.monitor(depth, OCF_RESKEY_clouds_yaml=str(path)).code == OCFExit.SUCCESS
    assert cv.monitor(20).code == OCFExit.SUCCESS


def test_monitor_timings_and_imports(cv: Resource) -> None:
    """Wall time of a monitor run as Pacemaker runs it (a fresh process): medians. Depth 0
    imports nothing heavy; depth 10 reads the configuration without oslo."""
    timings = {depth: median_monitor_ms(cv, depth) for depth in (0, 10)}
    print(
        f"\ncinder-volume monitor median: depth 0 {timings[0]:.0f} ms, "
        f"depth 10 {timings[10]:.0f} ms"
    )
    assert timings[0] < 100 and timings[10] < 500
    shallow, deep = imported_modules(cv, 0), imported_modules(cv, 10)
    assert shallow.isdisjoint(
        {"configparser", "pymysql", "socket", "re", "subprocess", "typing", "enum"}
    )
    assert "configparser" in deep and any(m.startswith("pymysql.") for m in deep)
    assert not {m for m in deep if m.split(".")[0] in ("oslo_config", "oslo_messaging", "cinder")}


def test_a_killed_worker_is_respawned_and_never_a_failure(cv: Resource) -> None:
    master, child = cv.pid, worker(cv)
    os.kill(child, signal.SIGKILL)
    assert cv.monitor(0).code == OCFExit.SUCCESS
    wait_until(lambda: len(proc.tree(master)) == 2 and worker(cv) != child, 20, "respawn")
    codes = []

    def healthy() -> bool:
        codes.append(cv.monitor(10).code)
        return codes[-1] == OCFExit.SUCCESS

    wait_until(healthy, 30, "depth 10 after the respawn")
    assert OCFExit.NOT_RUNNING not in codes
    assert cv.pid == master


def test_a_hung_worker_is_caught_by_its_stale_heartbeat(cv: Resource) -> None:
    child = worker(cv)
    os.kill(child, signal.SIGSTOP)
    try:
        assert cv.monitor(0).code == OCFExit.SUCCESS  # the process is there
        result = None

        def failing() -> bool:
            nonlocal result
            result = cv.monitor(10)
            return result.code != OCFExit.SUCCESS

        waited = wait_until(failing, SERVICE_DOWN_TIME + 15, "stale heartbeat")
        assert result is not None and result.code == OCFExit.ERR_GENERIC, result
        assert result.exit_reason and result.exit_reason.startswith(
            f"hung: cinder-volume {NODE}@fake: heartbeat"
        )
        assert f"pids [{child}] are stopped (SIGSTOP)" in result.exit_reason
        print(f"\nSIGSTOP detected after {waited:.1f}s: {result.exit_reason}")
    finally:
        os.kill(child, signal.SIGCONT)
    wait_until(lambda: cv.monitor(10).code == OCFExit.SUCCESS, 30, "recovery after SIGCONT")


def test_broker_outage(cv: Resource, cloud: Cloud, fake_cluster: FakeCluster) -> None:
    """stop_app: degraded while reconnection may still come; then failed when alone (no
    cluster) or when another node still reaches the broker, degraded when every node
    reports it down, degraded without quorum; back to OK after start_app."""
    cloud.rabbitmq.ctl("stop_app")
    try:
        wait_until(lambda: not _broker_connected(cv), 30, "connections dropped")
        waiting = cv.monitor(10, env=fake_cluster.env)
        assert waiting.code == OCFExit.DEGRADED, waiting.stderr
        assert waiting.exit_reason and "broker lost" in waiting.exit_reason
        assert "waiting up to 30s for reconnection" in waiting.exit_reason
        assert fake_cluster.get(NODE, ATTRIBUTE) == "down"  # published at once

        alone = cv.monitor(10, OCF_RESKEY_reconnect_grace="0")  # no cluster tools answer
        assert alone.code == OCFExit.ERR_GENERIC, alone.stderr
        assert alone.exit_reason and "broker lost for" in alone.exit_reason
        assert "not answering: 127.0.0.1:5673" in alone.exit_reason

        grace0 = {"OCF_RESKEY_reconnect_grace": "0", **fake_cluster.env}
        fake_cluster.set("cvb", ATTRIBUTE, "ok")
        only_here = cv.monitor(10, env=grace0)
        assert only_here.code == OCFExit.ERR_GENERIC
        assert only_here.exit_reason and "here only (reached from cvb)" in only_here.exit_reason

        fake_cluster.quorum(False)
        no_quorum = cv.monitor(10, env=grace0)
        assert no_quorum.code == OCFExit.DEGRADED
        assert no_quorum.exit_reason and no_quorum.exit_reason.startswith("no quorum")
        fake_cluster.quorum(True)

        fake_cluster.set("cvb", ATTRIBUTE, "down")
        fake_cluster.set("cvc", ATTRIBUTE, "down")
        everyone = cv.monitor(10, env=grace0)
        assert everyone.code == OCFExit.DEGRADED, everyone.stderr
        assert (
            everyone.exit_reason
            and "broker down for every instance (here and on cvb, cvc)" in everyone.exit_reason
        )
        assert cv.monitor(0).code == OCFExit.SUCCESS
    finally:
        cloud.rabbitmq.ctl("start_app")
    waited = wait_until(
        lambda: cv.monitor(10, env=fake_cluster.env).code == OCFExit.SUCCESS,
        60,
        "reconnection after start_app",
    )
    assert fake_cluster.get(NODE, ATTRIBUTE) == "ok"
    print(f"\nreconnected {waited:.1f}s after start_app")


def _broker_connected(cv: Resource) -> bool:
    return any(c[4] == 5673 for c in proc.established(proc.tree(cv.pid)))


def test_a_killed_master_is_not_running_and_stop_leaves_nothing(cv: Resource) -> None:
    master = cv.pid
    session = proc.tree(master)
    os.kill(master, signal.SIGKILL)
    wait_until(lambda: not proc.is_alive(master), 10, "master gone")
    result = cv.monitor(0)
    assert result.code == OCFExit.NOT_RUNNING
    assert result.exit_reason and f"daemon pid {master} is gone" in result.exit_reason
    assert cv.monitor(10).code == OCFExit.NOT_RUNNING
    assert cv("stop").code == OCFExit.SUCCESS
    assert not any(proc.is_alive(p) for p in session)
    assert cv("stop").code == OCFExit.SUCCESS
    assert cv.monitor(interval_ms=0).code == OCFExit.NOT_RUNNING
