"""ocf:hakit:nova-scheduler and ocf:hakit:nova-consoleauth (nova-novncproxy), installed,
against real nova services on the session's MariaDB and RabbitMQ."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakit.ocf import OCFExit, proc
from tests.openstack.conftest import (
    NOVNC_PORT,
    Cloud,
    Resource,
    median_monitor_ms,
    wait_until,
)
from tests.openstack.infra import http_answers


@pytest.fixture(scope="module")
def scheduler(cloud: Cloud, module_tmp: Path) -> Iterator[Resource]:
    resource = Resource(
        "nova-scheduler",
        module_tmp,
        "ns:0",
        binary=cloud.bin("nova-scheduler"),
        config=str(cloud.nova_conf),
        CRM_meta_clone_max="2",
        CRM_meta_on_node="ns1",
        management_url=cloud.rabbitmq.management_url,
    )
    yield resource
    resource("stop")


@pytest.fixture(scope="module")
def novnc(cloud: Cloud, module_tmp: Path) -> Iterator[Resource]:
    resource = Resource(
        "nova-consoleauth",
        module_tmp,
        "console",
        binary=cloud.bin("nova-novncproxy"),
        config=str(cloud.nova_conf),
    )
    yield resource
    resource("stop")


def test_scheduler_start_monitor_and_a_killed_worker(scheduler: Resource, cloud: Cloud) -> None:
    assert scheduler.monitor(interval_ms=0).code == OCFExit.NOT_RUNNING
    began = time.monotonic()
    result = scheduler("start")
    assert result.code == OCFExit.SUCCESS, (result.stderr, scheduler.log())
    print(f"\nnova-scheduler start: {time.monotonic() - began:.1f}s")
    rows = cloud.mariadb.sql(
        "SELECT host FROM nova.services WHERE `binary`='nova-scheduler' AND deleted=0 "
        "AND host LIKE 'ns%' "
        "AND updated_at IS NOT NULL;"
    )
    assert rows.split() == ["ns1"]
    master = scheduler.pid
    workers = [p for p in proc.tree(master) if p != master]
    assert len(workers) == 2, workers  # [scheduler] workers = 2
    assert scheduler.monitor(10).code == OCFExit.SUCCESS
    print(
        f"nova-scheduler monitor median: depth 0 {median_monitor_ms(scheduler, 0):.0f} ms, "
        f"depth 10 {median_monitor_ms(scheduler, 10):.0f} ms"
    )
    wait_until(
        lambda: scheduler.monitor(20).code == 0 and "consumers ok" in scheduler.health(),
        30,
        "scheduler queues consumed",
    )

    os.kill(workers[0], signal.SIGKILL)
    assert scheduler.monitor(0).code == OCFExit.SUCCESS
    wait_until(
        lambda: len(proc.tree(master)) == 3 and workers[0] not in proc.tree(master),
        30,
        "worker respawned",
    )
    codes: list[int] = []

    def healthy() -> bool:
        codes.append(scheduler.monitor(10).code)
        return codes[-1] == OCFExit.SUCCESS

    wait_until(healthy, 30, "healthy after the respawn")
    assert OCFExit.NOT_RUNNING not in codes and scheduler.pid == master


def test_scheduler_master_killed_then_stop(scheduler: Resource) -> None:
    master = scheduler.pid
    tree = proc.tree(master)
    os.kill(master, signal.SIGKILL)
    wait_until(lambda: not proc.is_alive(master), 10, "master gone")
    assert scheduler.monitor(0).code == OCFExit.NOT_RUNNING
    assert scheduler("stop").code == OCFExit.SUCCESS
    wait_until(lambda: not any(proc.is_alive(p) for p in tree), 5, "workers gone")


def test_novncproxy_serves_http_and_is_monitored(novnc: Resource) -> None:
    assert novnc.monitor(interval_ms=0).code == OCFExit.NOT_RUNNING
    began = time.monotonic()
    result = novnc("start")
    assert result.code == OCFExit.SUCCESS, (result.stderr, novnc.log())
    print(f"\nnova-novncproxy start: {time.monotonic() - began:.1f}s")
    assert http_answers(NOVNC_PORT)  # ready means serving
    for depth in (0, 10, 20):
        assert novnc.monitor(depth).code == OCFExit.SUCCESS, depth
    assert "db ok" in novnc.health()
    print(
        f"nova-novncproxy monitor median: depth 0 {median_monitor_ms(novnc, 0):.0f} ms, "
        f"depth 10 {median_monitor_ms(novnc, 10):.0f} ms"
    )

    wrong_port = novnc.monitor(10, OCF_RESKEY_port="16099")
    assert wrong_port.code == OCFExit.ERR_GENERIC
    assert wrong_port.exit_reason and "listens on TCP port 16099" in wrong_port.exit_reason

    pid = novnc.pid
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not proc.is_alive(pid), 10, "proxy gone")
    result = novnc.monitor(10)
    assert result.code == OCFExit.NOT_RUNNING
    assert novnc("stop").code == OCFExit.SUCCESS
