"""A cinder cluster of two cinder-volume instances (nodes cv1 and cv2), cinder-scheduler
and cinder-api (Keystone: the venv's api-paste.ini) through ocf:hakit:openstack-service;
then cv2's node is "lost": the post-stop notification on cv1 asks cinder-api for the
workers/cleanup of cv2@fake, as hakit's user of the session's clouds.yaml (an admin),
only once the (stand-in) fencer confirms the fencing."""

from __future__ import annotations

import configparser
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakit.ocf import OCFExit, proc
from tests.openstack.conftest import (
    CINDER_API_PORT,
    REPORT_INTERVAL,
    SERVICE_DOWN_TIME,
    Cloud,
    FakeCluster,
    Resource,
    wait_until,
)

FAKE_STONITH_ADMIN = """#!/bin/sh
# stonith_admin --history NODE --output-as=xml stand-in: DIR/fence-NODE.xml
node="$2"
echo '<pacemaker-result api-version="2.25" request="stonith_admin"><fence_history>'
cat "$HAKIT_FAKE_CLUSTER/fence-$node.xml" 2>/dev/null
echo '</fence_history><status code="0" message="OK"/></pacemaker-result>'
"""


@pytest.fixture(scope="module")
def scheduler(cloud: Cloud, module_tmp: Path) -> Iterator[Resource]:
    resource = Resource(
        "openstack-service",
        module_tmp,
        "csched",
        binary=cloud.bin("cinder-scheduler"),
        config=str(cloud.cinder_conf),
        host="sched1",
        management_url=cloud.rabbitmq.management_url,
        queues="cinder-scheduler.{host}",
    )
    yield resource
    resource("stop")


@pytest.fixture(scope="module")
def api(cloud: Cloud, module_tmp: Path) -> Iterator[Resource]:
    resource = Resource(
        "openstack-service",
        module_tmp,
        "capi",
        binary=cloud.bin("cinder-api"),
        config=str(cloud.cinder_conf),
        heartbeat="false",
        broker="false",
        port=str(CINDER_API_PORT),
    )
    yield resource
    resource("stop")


def member(cloud: Cloud, tmp: Path, number: int, **extra: str) -> Resource:
    node = f"cv{number + 1}"
    return Resource(
        "cinder-volume",
        tmp / node,
        f"cvc:{number}",
        binary=cloud.bin("cinder-volume"),
        config=str(cloud.cinder_conf),
        CRM_meta_clone_max="2",
        CRM_meta_clone=str(number),
        CRM_meta_on_node=node,
        CRM_meta_notify="true",
        cinder_api_url=f"http://127.0.0.1:{CINDER_API_PORT}/v3",
        cloud="hakit",
        clouds_yaml=str(cloud.clouds_yaml),
        **extra,
    )


@pytest.fixture(scope="module")
def members(cloud: Cloud, module_tmp: Path) -> Iterator[list[Resource]]:
    created = [member(cloud, module_tmp, 0), member(cloud, module_tmp, 1)]
    yield created
    for resource in created:
        resource("stop")


def test_generic_agent_runs_cinder_scheduler(scheduler: Resource, cloud: Cloud) -> None:
    result = scheduler("start")
    assert result.code == OCFExit.SUCCESS, (result.stderr, scheduler.log())
    rows = cloud.mariadb.sql("SELECT host FROM cinder.services WHERE `binary`='cinder-scheduler';")
    assert rows.split() == ["sched1"]
    for depth in (0, 10):
        assert scheduler.monitor(depth).code == OCFExit.SUCCESS
    wait_until(
        lambda: scheduler.monitor(20).code == 0 and "consumers ok" in scheduler.health(),
        30,
        "cinder-scheduler.sched1 consumed",
    )
    no_heartbeat = scheduler.monitor(10, OCF_RESKEY_service_binary="cinder-backup")
    assert no_heartbeat.code == OCFExit.ERR_GENERIC
    assert (
        no_heartbeat.exit_reason
        and "cinder-backup sched1: no services row" in no_heartbeat.exit_reason
    )
    assert (
        scheduler.monitor(10, OCF_RESKEY_heartbeat="false", OCF_RESKEY_service_binary="x").code == 0
    )


def test_a_scheduler_waiting_for_volume_capabilities_is_starting_not_hung(
    scheduler: Resource, cloud: Cloud, module_tmp: Path
) -> None:
    """cinder-scheduler saves its row at start but heartbeats only once the volume backends
    sent their capabilities or scheduler_driver_init_wait_time (60 s) passed; no
    cinder-volume runs yet, so its heartbeat goes stale while it starts."""

    def age() -> int:
        return int(
            cloud.mariadb.sql(
                "SELECT TIMESTAMPDIFF(SECOND, updated_at, UTC_TIMESTAMP()) FROM cinder.services "
                "WHERE `binary`='cinder-scheduler' AND host='sched1';"
            )
        )

    wait_until(lambda: age() > SERVICE_DOWN_TIME + 1, SERVICE_DOWN_TIME + 20, "a stale heartbeat")
    starting = scheduler.monitor(10)
    assert starting.code == OCFExit.DEGRADED, (starting.stderr, scheduler.log())
    assert "while starting: started" in starting.stderr
    config = configparser.RawConfigParser()
    config.read(cloud.cinder_conf)
    config.set("DEFAULT", "scheduler_driver_init_wait_time", "1")
    impatient = module_tmp / "impatient-cinder.conf"
    with impatient.open("w") as handle:
        config.write(handle)
    # with a 1 s wait its first heartbeat was due 1 + report_interval s after the start: hung
    # once service_down_time more has passed (the stale heartbeat alone can come earlier)
    due = 1 + REPORT_INTERVAL + SERVICE_DOWN_TIME
    wait_until(lambda: (proc.age(scheduler.pid) or 0) > due + 1, due + 10, "the wait over")
    hung = scheduler.monitor(10, OCF_RESKEY_config=str(impatient))  # the same silence, not due
    assert hung.code == OCFExit.ERR_GENERIC, hung.stderr
    assert hung.exit_reason and hung.exit_reason.startswith("hung: cinder-scheduler sched1")


def test_two_members_form_one_cinder_cluster(
    members: list[Resource], cloud: Cloud, scheduler: Resource
) -> None:
    for resource in members:
        result = resource("start")
        assert result.code == OCFExit.SUCCESS, (result.stderr, resource.log())
    rows = cloud.mariadb.sql(
        "SELECT host, cluster_name FROM cinder.services WHERE `binary`='cinder-volume' "
        "AND host IN ('cv1@fake', 'cv2@fake') ORDER BY host;"
    )
    assert rows.split() == ["cv1@fake", "hakit@fake", "cv2@fake", "hakit@fake"]
    for resource in members:
        assert resource.monitor(10).code == OCFExit.SUCCESS
    wait_until(
        lambda: scheduler.monitor(10).code == OCFExit.SUCCESS,
        30,
        "the scheduler heartbeating once the capabilities arrived",
    )


def test_lost_member_is_cleaned_up_only_after_confirmed_fencing(
    members: list[Resource], api: Resource, scheduler: Resource, fake_cluster: FakeCluster
) -> None:
    started = api("start", OCF_RESKEY_CRM_meta_timeout="90000")
    assert started.code == OCFExit.SUCCESS, (started.stderr, api.log())
    assert api.monitor(10).code == OCFExit.SUCCESS  # HTTP answers; no broker, no heartbeat
    cv1, cv2 = members
    tree = proc.tree(cv2.pid)
    for pid in tree:  # cv2's node loses power
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not any(proc.is_alive(p) for p in tree), 10, "cv2 gone")
    stonith = fake_cluster.bin / "stonith_admin"
    stonith.write_text(FAKE_STONITH_ADMIN)
    stonith.chmod(0o755)
    notify = {
        "OCF_RESKEY_CRM_meta_notify_type": "post",
        "OCF_RESKEY_CRM_meta_notify_operation": "stop",
        "OCF_RESKEY_CRM_meta_notify_stop_resource": "cvc:1",
        "OCF_RESKEY_CRM_meta_notify_stop_uname": "cv2",
        "OCF_RESKEY_CRM_meta_notify_active_resource": "cvc:0 cvc:1",
        "OCF_RESKEY_CRM_meta_notify_active_uname": "cv1 cv2",
        **fake_cluster.env,
    }

    before = cv1("notify", **notify)  # Pacemaker has not fenced cv2 (yet): hands off
    assert before.code == OCFExit.SUCCESS
    assert "cv2 stopped without a confirmed fencing: no cleanup of its volumes" in before.stderr
    assert "workers/cleanup" not in before.stderr

    pending = '<fence_event action="reboot" target="cv2" client="c" origin="cv1" status="pending" extended-status="1"/>'
    (fake_cluster.root / "fence-cv2.xml").write_text(pending)
    assert "workers/cleanup" not in cv1("notify", **notify).stderr

    completed = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()) + "Z"
    (fake_cluster.root / "fence-cv2.xml").write_text(
        f'<fence_event action="reboot" target="cv2" client="c" origin="cv1" status="success" '
        f'delegate="cv1" completed="{completed}"/>'
    )
    assert "workers/cleanup" not in cv2("notify", **notify).stderr  # the lost one does nothing
    after = cv1("notify", **notify)
    assert after.code == OCFExit.SUCCESS, after.stderr
    assert (
        "workers/cleanup for lost host cv2@fake: cleaning ['cv2@fake']" in after.stderr
    ), after.stderr
    assert cv1.monitor(10).code == OCFExit.SUCCESS
