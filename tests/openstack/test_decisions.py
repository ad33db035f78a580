"""The OpenStack agents' pure decisions, without services: URL parsing, the cluster-wide
verdict on a lost dependency, the A/A driver check from sources, and the cleanup of a
lost cinder-volume member (never before its fencing is confirmed)."""

from __future__ import annotations

import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

from hakit.ocf import OCFExit, proc
from hakit.ocf.status import FenceEvent, parse_time
from hakit.resource_agents.cinder_volume import (
    cleanup_plan,
    fencing_confirmed,
    supports_active_active,
)
from hakit.resource_agents.openstack.dependency_health import dependency_verdict
from hakit.resource_agents.openstack.urls import DatabaseURL, TransportURL


def test_transport_url_with_several_hosts_credentials_and_vhost() -> None:
    url = TransportURL("rabbit://u1:p%40ss@h1:5673,u2:p2@[fd00::5]:5674,h3/open%2Fstack?ssl=1")
    assert [(e.host, e.port, e.user, e.password) for e in url.hosts] == [
        ("h1", 5673, "u1", "p@ss"),
        ("fd00::5", 5674, "u2", "p2"),
        ("h3", 5672, "", ""),
    ]
    assert url.vhost == "open/stack"
    assert TransportURL("rabbit://u:p@h:5672/").vhost == "/"
    assert "p@ss" not in repr(url) and "p2" not in repr(url)
    for bad in ("127.0.0.1:5672", "rabbit://h:port/"):
        with pytest.raises(ValueError):
            TransportURL(bad)


def test_database_urls() -> None:
    url = DatabaseURL("mysql+pymysql://nova:s3cr%2Ft@db.example:3307/nova?charset=utf8")
    assert (url.kind, url.endpoint.host, url.endpoint.port, url.database) == (
        "mysql",
        "db.example",
        3307,
        "nova",
    )
    assert (url.endpoint.user, url.endpoint.password, url.charset) == ("nova", "s3cr/t", "utf8")
    assert "s3cr" not in repr(url) and not url.tls
    sock = DatabaseURL(
        "mysql+pymysql://u:p@localhost/cinder?unix_socket=/run/mysqld/mysqld.sock&ssl_ca=/ca.pem"
    )
    assert sock.unix_socket == "/run/mysqld/mysqld.sock" and sock.ssl == {"ssl_ca": "/ca.pem"}
    assert DatabaseURL("sqlite:////var/lib/nova/nova.sqlite").path == "/var/lib/nova/nova.sqlite"
    with pytest.raises(ValueError, match="unsupported database 'postgresql'"):
        DatabaseURL("postgresql://u:p@h/db")


@pytest.mark.parametrize(
    ("down_for", "grace", "peers", "code", "reason"),
    [
        (5, 30, {"n2": "ok"}, OCFExit.DEGRADED, "broker lost 5s ago; waiting up to 30s"),
        (40, 30, None, OCFExit.ERR_GENERIC, "broker lost for 40s"),
        (40, 30, {}, OCFExit.ERR_GENERIC, "broker lost for 40s"),
        (40, 30, {"n2": "ok", "n3": "down"}, OCFExit.ERR_GENERIC, "here only (reached from n2)"),
        (
            40,
            30,
            {"n2": "down", "n3": "down"},
            OCFExit.DEGRADED,
            "broker down for every instance (here and on n2, n3)",
        ),
    ],
)
def test_dependency_verdict(
    down_for: float, grace: float, peers: dict[str, str] | None, code: int, reason: str
) -> None:
    got_code, got_reason = dependency_verdict("broker", down_for, grace, peers)
    assert got_code == code and reason in got_reason


def _write(root: Path, module: str, text: str) -> None:
    path = root / (module.replace(".", "/") + ".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_active_active_support_is_read_from_the_driver_sources(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "vol.driver",
        "class BaseVD:\n    SUPPORTS_ACTIVE_ACTIVE = False\n"
        "class Mixin:\n    pass\nclass VolumeDriver(Mixin, BaseVD):\n    pass\n",
    )
    _write(
        tmp_path,
        "vol.drivers.lvm",
        "from vol import driver\nclass LVM(driver.VolumeDriver):\n    pass\n",
    )
    _write(
        tmp_path,
        "vol.drivers.ha",
        "from ..drivers import lvm\nfrom vol.drivers.lvm import LVM as L\n"
        "class HA(lvm.LVM):\n    SUPPORTS_ACTIVE_ACTIVE = True\nclass Child(HA):\n    pass\n"
        "class Alias(L):\n    pass\n",
    )
    roots = [str(tmp_path)]
    assert supports_active_active("vol.drivers.lvm.LVM", roots) is False  # found in BaseVD
    assert supports_active_active("vol.drivers.ha.HA", roots) is True
    assert supports_active_active("vol.drivers.ha.Child", roots) is True
    assert supports_active_active("vol.drivers.ha.Alias", roots) is False
    assert supports_active_active("vol.drivers.nothere.X", roots) is None
    assert supports_active_active("vol.drivers.ha.Missing", roots) is None


def _events(*rows: tuple[str, str, str, float | None]) -> list[FenceEvent]:
    events = []
    for target, action, status, completed in rows:
        element = ElementTree.Element("fence_event", target=target, action=action, status=status)
        if completed is not None:
            element.set(
                "completed", time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(completed)) + "Z"
            )
        events.append(FenceEvent(element))
    return events


def test_parse_time() -> None:
    assert parse_time("2024-11-24 10:11:12Z") == 1732443072.0
    assert parse_time("2024-11-24 11:11:12 +01:00") == 1732443072.0
    assert parse_time("2024-11-24 09:41:12 -0030") == 1732443072.0
    assert parse_time("yesterday") is None


def test_fencing_is_confirmed_only_by_a_recent_successful_off_or_reboot() -> None:
    now = time.time()
    ok = _events(("n2", "reboot", "success", now - 5))
    assert fencing_confirmed("n2", ok, now=now, max_age=600) is ok[0]
    assert fencing_confirmed("n3", ok, now=now, max_age=600) is None  # another node
    cases = {
        "pending": _events(("n2", "reboot", "success", now - 5), ("n2", "off", "pending", None)),
        "failed": _events(("n2", "reboot", "failed", now - 5)),
        "unfence": _events(("n2", "on", "success", now - 5)),
        "too old": _events(("n2", "off", "success", now - 3600)),
        "no time": _events(("n2", "off", "success", None)),
        "nothing": [],
    }
    for name, events in cases.items():
        assert fencing_confirmed("n2", events, now=now, max_age=600) is None, name
    latest = _events(("n2", "off", "success", now - 100), ("n2", "reboot", "success", now - 10))
    assert fencing_confirmed("n2", latest, now=now, max_age=600) is latest[1]


def test_cleanup_plan_never_before_fencing_and_done_once() -> None:
    now = time.time()
    fenced = _events(("n2", "reboot", "success", now - 5))
    plan = cleanup_plan(["n2"], ["n1", "n2", "n3"], "n1", fenced, now=now, max_age=600)
    assert plan == (["n2"], [])
    assert cleanup_plan(["n2"], ["n1", "n2", "n3"], "n3", fenced, now=now, max_age=600) == ([], [])
    assert cleanup_plan(["n2"], ["n1", "n2"], "n2", fenced, now=now, max_age=600) == ([], [])
    clean_stop: list[FenceEvent] = []  # a stop without fencing (move, standby, disable)
    assert cleanup_plan(["n2"], ["n1", "n2"], "n1", clean_stop, now=now, max_age=600) == (
        [],
        ["n2"],
    )
    pending = _events(("n2", "reboot", "pending", None))
    assert cleanup_plan(["n2"], ["n1", "n2"], "n1", pending, now=now, max_age=600) == ([], ["n2"])
    two = _events(("n2", "off", "success", now - 5))
    assert cleanup_plan(["n2", "n3"], ["n1", "n2", "n3"], "n1", two, now=now, max_age=600) == (
        ["n2"],
        ["n3"],
    )


def test_packed_addresses_from_proc() -> None:
    assert proc.packed_address("0100007F") == bytes([127, 0, 0, 1])
    assert proc.packed_address("0000000000000000FFFF00000100007F") == bytes([127, 0, 0, 1])
    assert proc.packed_address("00000000000000000000000001000000") == bytes(15) + b"\x01"
