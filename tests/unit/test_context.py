"""What the framework reads from Pacemaker's environment."""

from __future__ import annotations

import time

import pytest

from hakit.ocf import Context
from hakit.ocf.log import Logger
from hakit.ocf.params import ParameterValues


def context(action: str, env: dict[str, str], levels: tuple[int, ...] = (0, 10)) -> Context:
    return Context(
        action, env, params=ParameterValues([], env), log=Logger("t", env), check_levels=levels
    )


@pytest.mark.parametrize(("interval", "probe"), [("0", True), ("10000", False), (None, True)])
def test_probe_is_a_monitor_without_an_interval(interval: str | None, probe: bool) -> None:
    env = {} if interval is None else {"OCF_RESKEY_CRM_meta_interval": interval}
    assert context("monitor", env).is_probe is probe
    assert context("start", env).is_probe is False


@pytest.mark.parametrize(
    ("requested", "levels", "effective"),
    [
        ("0", (0, 10, 20), 0),
        ("10", (0, 10, 20), 10),
        ("20", (0, 10), 10),
        ("15", (0, 10, 20), 10),
        ("5", (0, 10), 0),
        ("junk", (0, 10), 0),
        ("-3", (0, 10), 0),
        ("30", (0, 10, 20), 20),
    ],
)
def test_check_level_falls_back_to_the_next_lower(
    requested: str, levels: tuple[int, ...], effective: int
) -> None:
    assert context("monitor", {"OCF_CHECK_LEVEL": requested}, levels).check_level == effective


def test_deadline_comes_from_crm_meta_timeout() -> None:
    ctx = context("start", {"OCF_RESKEY_CRM_meta_timeout": "5000"})
    assert ctx.timeout == 5.0
    assert 4.9 < ctx.remaining() <= 5.0
    assert ctx.deadline - time.monotonic() <= 5.0
    assert ctx.remaining(margin=10) == 0.0


def test_deadline_defaults_to_the_declared_timeout() -> None:
    env: dict[str, str] = {}
    ctx = Context(
        "start", env, params=ParameterValues([], env), log=Logger("t", env), default_timeout=42
    )
    assert ctx.timeout == 42


def test_clone_facts() -> None:
    env = {
        "OCF_RESOURCE_INSTANCE": "api:2",
        "OCF_RESKEY_CRM_meta_clone": "2",
        "OCF_RESKEY_CRM_meta_clone_max": "3",
        "OCF_RESKEY_CRM_meta_clone_node_max": "1",
        "OCF_RESKEY_CRM_meta_globally_unique": "false",
    }
    ctx = context("start", env)
    assert ctx.clone is not None
    assert (ctx.clone.instance, ctx.clone.max, ctx.clone.node_max) == (2, 3, 1)
    assert ctx.clone.globally_unique is False
    assert ctx.state_name == "api"  # anonymous clone numbers are not stable
    unique = context("start", {**env, "OCF_RESKEY_CRM_meta_globally_unique": "true"})
    assert unique.state_name == "api:2"
    assert context("start", {"OCF_RESOURCE_INSTANCE": "vip"}).clone is None


def test_notify_facts_are_parsed_into_lists() -> None:
    env = {
        "OCF_RESKEY_CRM_meta_notify_type": "pre",
        "OCF_RESKEY_CRM_meta_notify_operation": "start",
        "OCF_RESKEY_CRM_meta_notify_start_resource": "db:1 db:2 ",
        "OCF_RESKEY_CRM_meta_notify_start_uname": "node2 node3",
        "OCF_RESKEY_CRM_meta_notify_active_resource": "db:0",
        "OCF_RESKEY_CRM_meta_notify_active_uname": "node1",
        "OCF_RESKEY_CRM_meta_notify_stop_resource": " ",
        "OCF_RESKEY_CRM_meta_notify_stop_uname": "",
    }
    notify = context("notify", env).notify
    assert notify is not None
    assert (notify.type, notify.operation) == ("pre", "start")
    assert notify.resources("start") == ["db:1", "db:2"]
    assert notify.pairs("start") == [("db:1", "node2"), ("db:2", "node3")]
    assert notify.unames("active") == ["node1"]
    assert notify.resources("stop") == [] and notify.resources("promote") == []
    assert notify.events() == ["active", "start", "stop"]
    assert context("start", env).notify is None
