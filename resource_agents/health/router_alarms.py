"""The router watch as a health source: every node reports its routers, the leader alarms.

Each node's publisher reads its own router namespaces (`routers.host_states`) and keeps
the reading in a private node attribute (`ATTRIBUTE`: held by attrd in memory, never
written to the CIB, so no transition follows a change): `RouterReporter`. The leading
publisher reads every node's with one query, drops readings that are stale or come from
a host the health model calls down, and `RouterAlarms` turns `RouterWatch`'s verdicts
into SOL 003 alarms stored with the others: raised, changed when their hosts change,
cleared when the anomaly ends. An alarm explained by a fenced node is not a root cause:
it correlates to that host's alarm.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from hakit.resource_agents.health.alarm_table import AlarmTable
from hakit.resource_agents.health.model import Health, HealthReport
from hakit.resource_agents.health.neutron import API_LAG, HaStates, on_nodes
from hakit.resource_agents.health.outbox import Outbox
from hakit.resource_agents.health.routers import (
    ACTIVE,
    ADVERT_INTERVAL,
    STANDBY,
    RouterAlarm,
    RouterWatch,
)
from hakit.resource_agents.health.sol003 import (
    ALARM_NAMESPACE,
    Context,
    FaultyResource,
    Outgoing,
    alarm_body,
    cleared_notification,
    raised_notification,
)

ATTRIBUTE = "hakit-routers"
#: a reading is sent again this often when nothing changed, and is stale after STALE_AFTER
REFRESH = 5.0
STALE_AFTER = 3 * REFRESH
#: hosts whose last reading no longer holds (their namespaces are gone with them)
HOST_DOWN = frozenset(
    {Health.HOST_DOWN_FENCED, Health.HOST_UNREACHABLE_UNFENCED, Health.HOST_LEFT_CLUSTER}
)
SEVERITIES = {
    "ROUTER_NO_ACTIVE": "CRITICAL",
    "ROUTER_SPLIT_BRAIN": "CRITICAL",
    "ROUTER_API_MISMATCH": "MINOR",
    "ROUTER_REDUCED_REDUNDANCY": "MAJOR",
}
CAUSES = {
    "ROUTER_NO_ACTIVE": "No host holds the HA router (its traffic is down)",
    "ROUTER_SPLIT_BRAIN": "HA router active on more than one host (VRRP split-brain)",
    "ROUTER_API_MISMATCH": "neutron's ha_state disagrees with the data plane",
    "ROUTER_REDUCED_REDUNDANCY": "HA router has fewer standbys than configured",
}
_CODES = {ACTIVE: "a", STANDBY: "s"}
_STATES = {code: state for state, code in _CODES.items()}


def encode(states: dict[str, str], taken: float) -> str:
    """A reading as an attribute value: `t=<epoch> <router>:a|s ...`."""
    pairs = " ".join(f"{r}:{_CODES[s]}" for r, s in sorted(states.items()) if s in _CODES)
    return f"t={taken:.0f} {pairs}".strip()


def decode(value: str) -> tuple[float, dict[str, str]] | None:
    """(taken, router → state) from `encode`'s value; None when it is not one."""
    words = value.split()
    if not words or not words[0].startswith("t="):
        return None
    try:
        taken = float(words[0][2:])
    except ValueError:
        return None
    states = {}
    for word in words[1:]:
        router, _, code = word.rpartition(":")
        if router and code in _STATES:
            states[router] = _STATES[code]
    return taken, states


def current_readings(
    values: dict[str, str], report: HealthReport | None, now: float
) -> dict[str, dict[str, str]]:
    """host → routers from every node's attribute value, less the stale and the down."""
    down = {n.node for n in report.nodes if n.health in HOST_DOWN} if report else set()
    readings = {}
    for host, value in values.items():
        decoded = decode(value)
        if decoded is not None and host not in down and now - decoded[0] <= STALE_AFTER:
            readings[host] = decoded[1]
    return readings


@dataclass
class RouterReporter:
    """One node's side: read the local namespaces every `interval`, send a changed
    reading at once and an unchanged one every REFRESH."""

    read: Callable[[], dict[str, str]]
    send: Callable[[str], None]
    interval: float = ADVERT_INTERVAL / 2
    log: Callable[[str], None] = print
    _next: float = 0.0
    _sent: tuple[dict[str, str], float] | None = None

    def tick(self, now: float) -> None:
        if now < self._next:
            return
        self._next = now + self.interval
        try:
            states = self.read()
        except (OSError, ValueError) as error:  # `ip` missing, a timeout
            self.log(f"routers not read: {error}")
            return
        if self._sent and self._sent[0] == states and now - self._sent[1] < REFRESH:
            return
        try:
            self.send(encode(states, time.time()))
        except Exception as error:  # attrd away for a moment: sent at the next tick
            self.log(f"routers not reported: {error}")
            return
        self._sent = (states, now)


@dataclass
class OpenRouterAlarm:
    """A router alarm while it is raised."""

    alarm_id: str
    router: str
    kind: str
    raised: float
    changed: float
    active: list[str]
    standby: list[str]
    detail: str
    root_cause: str | None
    correlated: list[str]


class RouterAlarms:
    """The leader's side: `RouterWatch` verdicts → alarm notifications, the open alarms
    kept in `router_alarms` next to the outbox so that a new leader carries them on.

    Hosts a router was last seen on stay meant to host it while they cannot be read, so
    that a lost host leaves its routers with reduced redundancy rather than forgotten."""

    def __init__(
        self,
        advert_interval: float = ADVERT_INTERVAL,
        standbys: int | None = None,
        context: Context | None = None,
        neutron: Callable[[], HaStates] | None = None,
    ) -> None:
        self.watch = RouterWatch(advert_interval, standbys)
        self.context = context or Context()
        self.neutron = neutron  # neutron's latest ha_state per router, when there is one
        if neutron is not None:
            self.watch.api_lag = API_LAG
        self.last_seen: dict[str, dict[str, str]] = {}  # host → its last current reading

    def hosts_of(self, report: HealthReport | None) -> dict[str, set[str]]:
        known = {n.node for n in report.nodes} if report else set(self.last_seen)
        for host in set(self.last_seen) - known:  # no longer a cluster node
            del self.last_seen[host]
        hosts: dict[str, set[str]] = {}
        for host, states in self.last_seen.items():
            for router in states:
                hosts.setdefault(router, set()).add(host)
        return hosts

    def derive(
        self,
        readings: dict[str, dict[str, str]],
        report: HealthReport | None,
        book: dict[str, OpenRouterAlarm],
        host_alarms: dict[str, str],
        now: float,
    ) -> tuple[dict[str, OpenRouterAlarm], list[Outgoing]]:
        """The open alarms after `readings` (host → routers, current ones only), and the
        notifications that says; `host_alarms`: host → its open alarm's id."""
        self.last_seen.update(readings)
        fenced = frozenset(
            n.node for n in (report.nodes if report else []) if n.health is Health.HOST_DOWN_FENCED
        )
        hosts_of = self.hosts_of(report)
        api = None
        if self.neutron is not None:
            nodes = {n.node for n in report.nodes} if report else set(self.last_seen)
            seen = {router for states in readings.values() for router in states} | set(hosts_of)
            api = on_nodes(self.neutron(), nodes, seen)
        found = self.watch.observe(readings, now, api=api, fenced=fenced, hosts_of=hosts_of)
        after: dict[str, OpenRouterAlarm] = {}
        out: list[Outgoing] = []
        for alarm in found:
            key = f"{alarm.router}/{alarm.kind}"
            new = self._open(alarm, book.get(key), host_alarms, now)
            after[key] = new
            if new is not book.get(key):
                out.append(self._raised(new, now))
        for key, gone in book.items():
            if key in after:
                continue
            if (gone.router, gone.kind) in self.watch.first_seen:  # still there, within
                after[key] = gone  # the grace of a new leader: open as it was
            else:
                out.append(self._cleared(gone, now))
        return after, out

    def _open(
        self,
        alarm: RouterAlarm,
        current: OpenRouterAlarm | None,
        host_alarms: dict[str, str],
        now: float,
    ) -> OpenRouterAlarm:
        correlated = [host_alarms[alarm.root_cause]] if alarm.root_cause in host_alarms else []
        fields = (list(alarm.active), list(alarm.standby), alarm.detail, alarm.root_cause)
        if current is not None and (*fields, correlated) == (
            current.active,
            current.standby,
            current.detail,
            current.root_cause,
            current.correlated,
        ):
            return current
        raised = current.raised if current else alarm.since
        identifier = (
            current.alarm_id
            if current
            else str(uuid.uuid5(ALARM_NAMESPACE, f"router/{alarm.router}/{alarm.kind}/{raised}"))
        )
        return OpenRouterAlarm(
            identifier, alarm.router, alarm.kind, raised, now, *fields, correlated
        )

    def _raised(self, alarm: OpenRouterAlarm, now: float) -> Outgoing:
        details = [alarm.detail, f"active: {', '.join(alarm.active) or 'none'}"]
        details.append(f"standby: {', '.join(alarm.standby) or 'none'}")
        if alarm.root_cause:
            details.append(f"root cause: host {alarm.root_cause} fenced")
        body = alarm_body(
            alarm.alarm_id,
            alarm.router,
            FaultyResource(alarm.router, "router", "NETWORK"),
            raised=alarm.raised,
            changed=alarm.changed,
            severity=SEVERITIES[alarm.kind],
            event_type="COMMUNICATIONS_ALARM",
            fault_type=alarm.kind,
            probable_cause=CAUSES[alarm.kind],
            root=not alarm.correlated,
            correlated=alarm.correlated,
            details=details,
            event_time=alarm.raised,
            context=self.context,
        )
        return raised_notification(body, _host(alarm), alarm.changed, now, alarm.raised)

    def _cleared(self, alarm: OpenRouterAlarm, now: float) -> Outgoing:
        severity = SEVERITIES[alarm.kind]
        return cleared_notification(_host(alarm), alarm.alarm_id, severity, now, now, self.context)


def _host(alarm: OpenRouterAlarm) -> str:
    """The host a router alarm is filed under: its root cause, else its first active."""
    return alarm.root_cause or (alarm.active[0] if alarm.active else "")


class RouterStage:
    """The publisher's router stage: `tick` on every loop turn (every node reports; the
    leader looks every `interval` and stores what `RouterAlarms` says, in one
    transaction with the open alarms)."""

    def __init__(
        self,
        outbox: Outbox,
        store: Callable[[Outgoing], bool],
        reporter: RouterReporter,
        alarms: RouterAlarms,
        values: Callable[[], dict[str, str]],
        interval: float = ADVERT_INTERVAL / 2,
    ) -> None:
        self.outbox, self.store, self.reporter, self.alarms = outbox, store, reporter, alarms
        self.values = values
        self.interval = interval
        self._next = 0.0
        self.table = AlarmTable(outbox.db, "router_alarms")

    def tick(self, leader: bool, report: HealthReport | None) -> int:
        """Notifications stored."""
        now = time.monotonic()
        self.reporter.tick(now)
        if not leader or now < self._next:
            return 0
        self._next = now + self.interval
        wall = time.time()
        return self.derive(current_readings(self.values(), report, wall), report, wall)

    def derive(
        self, readings: dict[str, dict[str, str]], report: HealthReport | None, now: float
    ) -> int:
        with self.outbox.transaction() as db:
            rows = self.table.read(db)
            book = {key: OpenRouterAlarm(**state) for key, state in rows.items()}
            host_alarms = {
                host: json.loads(state)["alarm_id"]
                for host, state in db.execute("SELECT host, state FROM alarms")
            }
            after, out = self.alarms.derive(readings, report, book, host_alarms, now)
            self.table.write(db, rows, {key: vars(alarm) for key, alarm in after.items()})
            return sum(1 for item in out if self.store(item))

    def open_alarms(self) -> list[OpenRouterAlarm]:
        return [OpenRouterAlarm(**state) for state in self.table.read(self.outbox.db).values()]
