"""The router watch against real keepalived, in namespaces laid out as neutron's L3 agents
lay out HA routers (hakit.lab.routers: neutron itself does not run here, its keepalived
configuration does): a dual master is alarmed within 10 s and cleared within 10 s of the
fix; a SIGKILLed active keepalived (respawned, as neutron's process monitor does) fails
over with no alarm; 100 planned failovers raise no alarm. The evaluator's other verdicts
(neutron disagreeing, lost redundancy, a fenced node as root cause) on readings."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from hakit.lab.routers import RouterLab
from hakit.resource_agents.health.routers import (
    ACTIVE,
    STANDBY,
    RouterAlarm,
    RouterWatch,
    graces,
    parse_states,
)

ADVERT = 1  # neutron's ha_vrrp_advert_int, shortened for the suite (default 2)
POLL = 0.5


@pytest.fixture(scope="module")
def lab() -> Iterator[RouterLab]:
    routers = RouterLab(hosts=3, routers=4, advert_interval=ADVERT)
    routers.up()
    try:
        wait(lambda: all(len(routers.active_hosts(r)) == 1 for r in routers.router_ids()), 30)
        yield routers
    finally:
        routers.down()


def wait(check: Callable[[], bool], timeout: float, every: float = 0.1) -> float:
    """Seconds until `check` held; AssertionError after `timeout`."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, f"not within {timeout}s"
        time.sleep(every)
    return time.monotonic() - began


class Watcher(threading.Thread):
    """Polls every host's routers and keeps every alarm the watch raises."""

    def __init__(self, lab: RouterLab) -> None:
        super().__init__(daemon=True)
        self.lab, self.watch = lab, RouterWatch(advert_interval=ADVERT)
        self.alarms: list[tuple[float, RouterAlarm]] = []
        self.current: list[RouterAlarm] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            now = time.monotonic()
            self.current = self.watch.observe(self.lab.readings(), now)
            self.alarms += [(now, a) for a in self.current]
            self.stopped.wait(POLL)

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.join(timeout=10)


def settled(lab: RouterLab) -> None:
    wait(lambda: all(len(lab.active_hosts(r)) == 1 for r in lab.router_ids()), 30)


def test_a_dual_master_is_alarmed_and_cleared_within_10s(lab: RouterLab) -> None:
    settled(lab)
    router = lab.router_ids()[0]
    (active,) = lab.active_hosts(router)
    standby = next(h for h in range(1, lab.hosts + 1) if h != active)
    with Watcher(lab) as watcher:
        cut_at = time.monotonic()
        lab.cut(router, standby)
        try:
            wait(lambda: len(lab.active_hosts(router)) == 2, 15)  # both masters, really
            raised = wait(lambda: any(a.kind == "ROUTER_SPLIT_BRAIN" for a in watcher.current), 15)
            assert time.monotonic() - cut_at <= 10, f"alarmed {time.monotonic() - cut_at:.1f}s"
            (alarm,) = [a for a in watcher.current if a.router == router]
            assert set(alarm.active) == {f"agent{active}", f"agent{standby}"}, alarm
        finally:
            lab.cut(router, standby, cut=False)
        fixed_at = time.monotonic()
        wait(lambda: not watcher.current, 10)
        cleared = time.monotonic() - fixed_at
    assert raised > 0 and cleared <= 10
    settled(lab)


def test_a_killed_active_keepalived_fails_over_without_an_alarm(lab: RouterLab) -> None:
    settled(lab)
    router = lab.router_ids()[1]
    (active,) = lab.active_hosts(router)
    instance = lab.instance(router, active)
    with Watcher(lab) as watcher:
        lab.stop_keepalived(instance, signal.SIGKILL)
        time.sleep(1.0)  # neutron's process monitor respawns it (check_child_processes)
        lab.start_keepalived(instance)
        # the respawned one removes the address it held and a new master takes over (it,
        # or another): watched long enough for a lasting anomaly to be raised
        time.sleep(4 * ADVERT + graces(ADVERT)["ROUTER_NO_ACTIVE"] + 2 * POLL)
    assert len(lab.active_hosts(router)) == 1
    assert watcher.alarms == []


def test_100_planned_failovers_raise_no_alarm(lab: RouterLab) -> None:
    settled(lab)
    done: list[int] = []

    def fail_over(router: str, times: int) -> None:
        found: list[int] = []

        def one_active() -> bool:
            found[:] = lab.active_hosts(router)
            return len(found) == 1

        for _ in range(times):
            # polled gently: 4 routers' workers and the watcher share 2 cores with keepalived
            wait(one_active, 20, every=0.3)
            instance = lab.instance(router, found[0])
            lab.stop_keepalived(instance)  # SIGTERM: it gives mastership up at once
            wait(lambda: len(lab.active_hosts(router)) == 1, 20, every=0.3)
            lab.start_keepalived(instance)  # back as a standby (nopreempt)
            done.append(1)

    routers = lab.router_ids()
    with Watcher(lab) as watcher:
        workers = [
            threading.Thread(target=fail_over, args=(r, 100 // len(routers))) for r in routers
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=600)
    assert len(done) == 100
    assert watcher.alarms == []


# --- the evaluator on readings ----------------------------------------------------------

R = "8f7c0b36-1c35-4d1a-9a54-1f1f1f1f1f1f"


def test_nothing_is_raised_within_the_grace_and_a_lasting_anomaly_is() -> None:
    watch = RouterWatch(advert_interval=1.0)  # no active: 9 s; two: 2 s
    none_active = {"a": {R: STANDBY}, "b": {R: STANDBY}}
    assert watch.observe(none_active, 100.0) == []
    assert watch.observe(none_active, 108.9) == []
    (alarm,) = watch.observe(none_active, 109.0)
    assert alarm.kind == "ROUTER_NO_ACTIVE" and alarm.since == 100.0
    assert watch.observe({"a": {R: ACTIVE}, "b": {R: STANDBY}}, 109.5) == []
    assert watch.observe(none_active, 110.0) == []  # a new anomaly starts its grace again
    both = {"a": {R: ACTIVE}, "b": {R: ACTIVE}}
    assert watch.observe(both, 200.0) == []
    assert watch.observe(both, 201.9) == []
    (split,) = watch.observe(both, 202.0)
    assert split.kind == "ROUTER_SPLIT_BRAIN" and split.active == ("a", "b")


def test_neutron_disagreeing_lost_redundancy_and_a_fenced_root_cause() -> None:
    watch = RouterWatch(advert_interval=1.0)
    readings = {"a": {R: STANDBY}, "b": {R: ACTIVE}}
    api = {R: {"a": ACTIVE, "b": STANDBY, "c": STANDBY}}
    assert watch.observe(readings, 0.0, api=api) == []
    kinds = {a.kind: a for a in watch.observe(readings, 19.0, api=api)}
    assert set(kinds) == {"ROUTER_API_MISMATCH", "ROUTER_REDUCED_REDUNDANCY"}
    assert "neutron says active on a, the data plane on b" in kinds["ROUTER_API_MISMATCH"].detail
    assert "missing: c" in kinds["ROUTER_REDUCED_REDUNDANCY"].detail
    one = {"a": {R: STANDBY}}
    hosts = {R: {"a", "b"}}
    assert watch.observe(one, 20.0, fenced=frozenset({"b"}), hosts_of=hosts) == []
    (lost,) = watch.observe(one, 29.0, fenced=frozenset({"b"}), hosts_of=hosts)
    assert lost.kind == "ROUTER_NO_ACTIVE" and lost.root_cause == "b"


def test_the_reading_is_the_ha_address_on_the_ha_interface() -> None:
    output = f"""
netns: qrouter-{R}
1: lo    inet 127.0.0.1/8 scope host lo
7: ha-8f7c0b36-1@if8    inet 169.254.192.1/18 brd 169.254.255.255 scope global ha-8f7c0b36-1
7: ha-8f7c0b36-1@if8    inet 169.254.0.3/24 scope global ha-8f7c0b36-1
9: qr-1    inet 169.254.0.9/24 scope global qr-1

netns: qrouter-other
7: ha-x    inet 169.254.192.2/18 scope global ha-x

netns: qrouter-dvr
1: lo    inet 127.0.0.1/8 scope host lo
4: qr-2    inet 10.0.0.1/24 scope global qr-2

netns: snat-dvr
7: ha-y    inet 169.254.192.3/18 scope global ha-y
7: ha-y    inet 169.254.0.4/24 scope global ha-y

netns: hakit-node1
2: eth0    inet 169.254.0.1/24 scope global eth0
"""
    # a DVR router's qrouter- without ha- takes no part; its snat- holds the address
    assert parse_states(output) == {R: ACTIVE, "other": STANDBY, "dvr": ACTIVE}


def test_hakit_health_routers_shows_a_hosts_reading(lab: RouterLab) -> None:
    settled(lab)
    command = [sys.executable, "-m", "hakit.tools.cli", "health", "routers"]
    for host, name in enumerate(lab.host_names(), 1):
        shown = json.loads(lab.on_host(host, *command, "--json").stdout)["routers"]
        assert shown == lab.readings()[name] and len(shown) == len(lab.router_ids())
    table = lab.on_host(1, *command).stdout
    assert all(f"{router}  " in table for router in lab.router_ids())
