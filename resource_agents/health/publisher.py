"""The publisher: outbox events → node health → SOL 003 notifications → subscribers.

Stages, all crash-safe through the outbox:

1. Derive. New alert events (the alert agent wakes the loop, `waker`; polled every
   `poll_interval` too), corosync membership changes (`membership`, before Pacemaker's
   alerts for them arrive), a CIB change (`CibWatcher`: a resource failing on another node
   alerts only there, but changes the CIB) or the periodic resync trigger a look at the
   cluster (`view_source`) and a classification; each host's open alarm (table
   `alarms`, next to the outbox) moves on with `sol003.transition`. The notifications
   it yields and the events' cursor are written in one transaction.
2. Deliver (`delivery`). One thread per subscription walks the `notifications` stream in order:
   a notification the filter skips or the receiver accepts (2xx) moves the
   subscription's cursor; anything else is retried, with exponential backoff, before
   any later one (strict order). After a crash the unacknowledged one is sent again
   with the same `Idempotency-Key` (at-least-once).
3. Correlate (with `correlation` rules): VNF error reports stored by the API in the same
   file are resolved and correlated into NFVI-fault alarms (`correlator`), woken at once
   by a new report (`wake`).

Only the leader derives, correlates and delivers: the DC of a quorate partition (see
`sources.leadership`), so a node cut off from the majority publishes nothing. A
non-leader skips past the events (they stay as fencing and membership evidence); every
derivation looks at every host, so a new leader catches up in its first one.

With `metrics` (`metrics.PublisherMetrics`, only given a metrics port) it counts the
alarms it stores, its deliveries and evacuations; scrapes read `report`, its latest health.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hakit.ocf import cluster
from hakit.resource_agents.health import constants, outbox, placement, sources, subscriptions
from hakit.resource_agents.health.capacity_alarms import CapacityAlarms
from hakit.resource_agents.health.cib_watcher import CibWatcher
from hakit.resource_agents.health.delivery import Delivery, log
from hakit.resource_agents.health.evacuation import ComputeRecovery
from hakit.resource_agents.health.membership import MembershipWatcher
from hakit.resource_agents.health.model import Health, HealthReport, NodeHealth, classify
from hakit.resource_agents.health.nova import ComputeAPI, NovaError
from hakit.resource_agents.health.outbox import EVENTS, NOTIFICATIONS, Outbox
from hakit.resource_agents.health.sol003 import (
    Context,
    Instance,
    OpenAlarm,
    Outgoing,
    load_inventory,
    transition,
)
from hakit.resource_agents.health.sources import ClusterView, Leadership, Snapshot
from hakit.resource_agents.health.subscriptions import SubscriptionStore
from hakit.resource_agents.health.waker import Waker

if TYPE_CHECKING:  # imported when used: metrics need prometheus_client, correlation rules
    from hakit.resource_agents.health.correlation import Rules
    from hakit.resource_agents.health.correlator import Correlator
    from hakit.resource_agents.health.metrics import PublisherMetrics
    from hakit.resource_agents.health.router_alarms import RouterStage

DERIVER = "publisher"
ALARMS_TABLE = "CREATE TABLE IF NOT EXISTS alarms (host TEXT PRIMARY KEY, state TEXT NOT NULL)"
ViewSource = Callable[[Outbox], ClusterView]
LeadershipSource = Callable[[Snapshot | None], Leadership]


@dataclass
class PublisherConfig:
    """Where the publisher reads and writes, and how fast it reacts and retries."""

    outbox: str = outbox.DEFAULT_PATH
    subscriptions: str = subscriptions.DEFAULT_PATH
    inventory: str | None = None
    context: Context = field(default_factory=Context)
    poll_interval: float = 0.05
    resync_interval: float = 5.0
    retry_initial: float = 0.5
    retry_max: float = 30.0
    http_timeout: float = 5.0
    batch: int = 500
    retention: float = 7 * 86400.0  # seconds delivered notifications and used events are kept
    #: the compute API: force nova-compute down on hosts whose fencing is confirmed; without
    #: an `inventory`, the servers it places on each host are the instances of the alarms
    nova: ComputeAPI | None = None
    #: then evacuate the fenced host's servers (each once per outage, unless it fails)
    evacuate: bool = False
    #: an evacuation that left its server in ERROR on the fenced host (no valid host, a
    #: failed rebuild) is requested again after `evacuate_retry` x attempts seconds, up to
    #: `evacuate_attempts` times in all; then it is left to the operator (its alarm stays)
    evacuate_retry: float = 60.0
    evacuate_attempts: int = 3
    #: evacuation requests in flight at once (a rack lost: hundreds of servers)
    evacuate_workers: int = constants.EVACUATE_WORKERS
    #: more than this share of the nodes lost at once (two at least) holds evacuations
    evacuate_guard: float = constants.EVACUATE_GUARD_PERCENT / 100
    evacuate_guard_hold: float = constants.EVACUATE_GUARD_HOLD
    #: seconds after an evacuation request with its server still on the fenced host: an
    #: EVACUATION_OVERDUE alarm for that server (cleared once it runs elsewhere)
    evacuate_deadline: float = constants.EVACUATE_DEADLINE
    #: also derive on every CIB change (`CibWatcher`) and membership change
    #: (`MembershipWatcher`); off for a CIB file or a fake view
    watch_cib: bool = False
    #: correlate VNF error reports (`correlator`) with these rules; None: reports are kept
    correlation: Rules | None = None
    #: watch L3 HA routers (`router_alarms`): this node reports its own, the leader alarms;
    #: their VRRP advert interval, and standbys per router (None: every host seen)
    routers: bool = False
    router_advert_interval: float = 2.0
    router_standbys: int | None = None


def live_view(box: Outbox) -> ClusterView:
    """The live cluster, with the outbox's alert evidence and the fence devices."""
    return sources.with_devices(sources.live_view(box))


def cluster_leadership() -> LeadershipSource:
    """`sources.leadership`, asking the local node's name once."""
    local: list[str] = []

    def ask(snapshot: Snapshot | None) -> Leadership:
        forced = sources.forced_leadership()
        if forced is not None:
            return forced
        if not local and snapshot is not None and snapshot.status.quorate:
            try:
                local.append(cluster.local_node_name())
            except cluster.ClusterCommandError:
                pass
        return sources.leadership(snapshot, local[0] if local else None)

    return ask


class Publisher:
    """Derives and delivers until `stop()`; `run()` blocks."""

    def __init__(
        self,
        config: PublisherConfig,
        *,
        view_source: ViewSource = live_view,
        leadership_source: LeadershipSource | None = None,
        metrics: PublisherMetrics | None = None,
    ) -> None:
        self.config = config
        self.view_source = view_source
        self.leadership_source = leadership_source or cluster_leadership()
        self.inventory: dict[str, list[Instance]] = (
            load_inventory(config.inventory) if config.inventory else {}
        )
        self.leader = threading.Event()
        self.stopping = threading.Event()
        self.deliveries: dict[str, Delivery] = {}
        self.outbox = Outbox(config.outbox)
        self.outbox.db.execute(ALARMS_TABLE)
        self.recovery = ComputeRecovery(self.outbox, config, log, self._notify_now)
        self.stored_outside = False  # the recovery stored a notification (`_notify_now`)
        self.report: HealthReport | None = None  # the latest health derived (or seen)
        self.last_view: ClusterView | None = None  # what `report` was classified from
        #: inside `run()`, looks run in a worker on this connection (`_fresh_view`)
        self.looker_box: Outbox | None = None
        self.wake = Waker(
            config.outbox
        )  # set: look now (new events, reports), not at the next poll
        self.correlator = self._correlator(config.correlation) if config.correlation else None
        self.routers = self._router_stage() if config.routers else None
        self.capacity = CapacityAlarms(
            self.outbox,
            self._store,
            lambda: cluster.cib_query("configuration"),
            config.context,
            placement=placement.check_of(config.nova),
        )
        self.metrics = metrics
        if metrics is not None:
            metrics.watch(self)

    # --- stage 1: derive -----------------------------------------------------------

    def cycle(self, *, resync: bool = False) -> int:
        """Handle new events (all of them, or a resync without any); notifications added.

        Events that are only membership changes and fencing results are classified at once
        from the last look plus the stored evidence (`sources.with_alert_evidence`: the
        model knows what Pacemaker will show, see `model`), then confirmed by a fresh
        look: crm_mon is slowest during exactly those changes."""
        after = self.outbox.cursor(DERIVER) or 0
        events = self.outbox.read(EVENTS, after, limit=self.config.batch)
        if not events and not resync:
            return 0
        if resync or self.last_view is None or not sources.evidence_only(events):
            return self._look(self._fresh_view(), events, resync=resync)
        added = self._quick(events)
        return added + self._look(self._fresh_view(), [])

    def _quick(self, events: list[outbox.Record]) -> int:
        """Classify evidence-only `events` from the last look (see `cycle`)."""
        assert self.last_view is not None  # noqa: S101 — callers check
        quick = sources.with_alert_evidence(self.last_view, self.outbox)
        return self._look(quick, events, reconcile=False)

    def _fresh_view(self) -> ClusterView:
        """A look (`view_source`) in a worker thread, its own outbox connection; while it
        runs (crm_mon can take 200 ms during a membership change), new evidence-only
        events are classified at once. Its evidence is read again when it ends, so it
        never hides what came meanwhile."""
        box = self.looker_box
        if box is None:
            return self.view_source(self.outbox)
        answer: list[ClusterView | BaseException] = []

        def look() -> None:
            try:
                answer.append(self.view_source(box))
            except BaseException as error:  # raised again in the publisher's thread
                answer.append(error)

        worker = threading.Thread(target=look, daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                self.wake.wait(0.005)
                after = self.outbox.cursor(DERIVER) or 0
                events = self.outbox.read(EVENTS, after, limit=self.config.batch)
                if events and self.last_view is not None and sources.evidence_only(events):
                    self._quick(events)
        finally:
            worker.join()  # never two looks on one connection
        if isinstance(answer[0], BaseException):
            raise answer[0]
        return sources.with_alert_evidence(answer[0], self.outbox)

    def _look(
        self,
        view: ClusterView,
        events: list[outbox.Record],
        *,
        resync: bool = False,
        reconcile: bool = True,
    ) -> int:
        """Classify `view`, follow leadership; as the leader derive (and reconcile nova)."""
        self.last_view = view
        self.report = report = classify(view)
        was_leader = self.leader.is_set()
        leadership = self.leadership_source(view.snapshot)
        if leadership.leader != was_leader:
            log(f"{'leading' if leadership.leader else 'not leading'}: {leadership.reason}")
            (self.leader.set if leadership.leader else self.leader.clear)()
        if not leadership.leader:
            if events:
                self.outbox.advance(DERIVER, events[-1].seq)
            return 0
        if resync and self.config.nova is not None and not self.config.inventory:
            self.refresh_inventory(self.config.nova)
        added = self.derive(view, events, report)
        if resync:  # and on every CIB change (`cycle`)
            added += self.capacity.tick(view.snapshot.status, view.now, log)
        if reconcile and self.config.nova is not None:
            self.reconcile_nova(self.config.nova, report)
        if added:
            self._wake_deliveries()
        return added

    def derive(
        self, view: ClusterView, events: list[outbox.Record], report: HealthReport | None = None
    ) -> int:
        """Move every host's alarm on to its health in `view` (classified as `report`);
        store what that says."""
        report = report or classify(view)
        latest = {e.node: e.occurred for e in events}
        default_time = events[-1].occurred if events else view.now
        stored: list[tuple[OpenAlarm | None, Outgoing]] = []
        with self.outbox.transaction() as db:
            book = {
                host: OpenAlarm.from_dict(json.loads(state))
                for host, state in db.execute("SELECT host, state FROM alarms")
            }
            nodes = {n.node: n for n in report.nodes}
            for host in sorted(set(nodes) | set(book)):
                node = nodes.get(host)
                if node is None:  # no longer a cluster node
                    node = NodeHealth(host, Health.OK, ["no longer a cluster node"])
                alarm, outgoing = transition(
                    book.get(host),
                    node,
                    now=view.now,
                    event_time=latest.get(host, default_time),
                    instances=self.inventory.get(host, []),
                    context=self.config.context,
                )
                if alarm is None:
                    db.execute("DELETE FROM alarms WHERE host = ?", (host,))
                elif outgoing:
                    db.execute(
                        "INSERT OR REPLACE INTO alarms (host, state) VALUES (?, ?)",
                        (host, json.dumps(alarm.as_dict())),
                    )
                stored += [(book.get(host), item) for item in outgoing if self._store(item)]
            if events:
                self.outbox.advance(DERIVER, events[-1].seq)
        if self.metrics is not None:
            self.metrics.stored(stored)
        return len(stored)

    def reconcile_nova(self, api: ComputeAPI, report: HealthReport) -> None:
        """nova-compute forced down on fenced hosts, their servers evacuated (`evacuation`)."""
        self.stored_outside = False
        if self.metrics is not None:
            self.metrics.reconcile(self.recovery, api, report)
        else:
            self.recovery.reconcile(api, report)
        if self.stored_outside:
            self._wake_deliveries()

    def _wake_deliveries(self) -> None:
        """Every subscription's delivery looks at the stream now (something was stored)."""
        for delivery in list(self.deliveries.values()):
            delivery.wake.set()

    def refresh_inventory(self, api: ComputeAPI) -> None:
        """host → servers from nova (the alarms' instances), when no inventory file is set."""
        try:
            servers = api.servers()
        except NovaError as error:
            log(f"server inventory from nova not refreshed: {error}")
            return
        inventory: dict[str, list[Instance]] = {}
        for server in servers:
            if server.host:
                inventory.setdefault(server.host, []).append(Instance(server.id, server.id))
        self.inventory = inventory

    def _store(self, item: Outgoing) -> bool:
        body = json.dumps({"severity": item.severity, "notification": item.body})
        return (
            self.outbox.append(
                item.notification_id,
                body,
                stream=NOTIFICATIONS,
                kind=item.notification_type,
                node=item.host,
                occurred=item.event_time,
            )
            is not None
        )

    def _notify_now(self, item: Outgoing) -> None:
        """Store a notification made outside `derive` (the evacuation guard's, in its
        transaction); `reconcile_nova` wakes the deliveries once committed."""
        if self._store(item):
            self.stored_outside = True
            if self.metrics is not None:
                self.metrics.stored([(None, item)])

    def open_alarms(self) -> list[OpenAlarm]:
        rows = self.outbox.db.execute("SELECT state FROM alarms ORDER BY host").fetchall()
        return [OpenAlarm.from_dict(json.loads(row[0])) for row in rows]

    def _correlator(self, rules: Rules) -> Correlator:
        from hakit.resource_agents.health.correlator import Correlator
        from hakit.resource_agents.health.resolve import Resolver

        resolver = Resolver(self.config.nova, inventory=self.inventory)
        return Correlator(
            self.outbox,
            rules,
            resolver=resolver,
            context=self.config.context,
            store=self._store,
            log=log,
            compute=self.config.nova,
            retention=self.config.retention,
        )

    def correlate(self) -> int:
        """The correlation stage (leader only); notifications added."""
        if self.correlator is None or not self.leader.is_set():
            return 0
        added = self.correlator.run(self.open_alarms())
        if added:
            self._wake_deliveries()
        return added

    def _router_stage(self) -> RouterStage:
        from hakit.resource_agents.health import neutron, router_alarms, routers

        def send(value: str) -> None:
            cluster.set_transient_attribute(router_alarms.ATTRIBUTE, value, private=True)

        config = self.config
        interval = config.router_advert_interval / 2
        api = neutron.check_of(config.nova)  # with a cloud, neutron's ha_state too
        return router_alarms.RouterStage(
            self.outbox,
            self._store,
            router_alarms.RouterReporter(routers.host_states, send, interval, log),
            router_alarms.RouterAlarms(
                config.router_advert_interval,
                config.router_standbys,
                config.context,
                None if api is None else lambda: api(log),
            ),
            lambda: cluster.transient_attribute_values(router_alarms.ATTRIBUTE),
            interval,
        )

    def watch_routers(self) -> int:
        """The router stage (every node reports, the leader alarms); notifications added."""
        if self.routers is None:
            return 0
        added = self.routers.tick(self.leader.is_set(), self.report)
        if added:
            self._wake_deliveries()
        return added

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        """Poll, derive, keep one delivery thread per subscription; until `stop()`."""
        next_resync = 0.0
        cib = CibWatcher(log) if self.config.watch_cib else None
        membership = MembershipWatcher(self.config.outbox, self.wake.set, log)
        self.looker_box = Outbox(self.config.outbox)
        watchers: list[CibWatcher | MembershipWatcher] = [cib, membership] if cib else []
        while not self.stopping.is_set():
            now = time.monotonic()
            resync = now >= next_resync
            for watcher in watchers if resync else []:
                watcher.ensure_running()
            try:
                self.cycle(resync=resync or (cib is not None and cib.changed()))
                self.correlate()
                self.watch_routers()
            except Exception as error:  # crm_mon down, database locked, …: retry later
                log(f"health update failed, retrying: {error}")
                self.stopping.wait(1.0)
            if resync:
                next_resync = now + self.config.resync_interval
                self._refresh_subscriptions()
                self._prune()
            self.wake.wait(self.config.poll_interval)
        for watcher in watchers:
            watcher.close()
        for delivery in self.deliveries.values():
            delivery.stop()
        for delivery in self.deliveries.values():
            delivery.join(timeout=self.config.http_timeout + 1)
        if self.correlator is not None:
            self.correlator.close()
        self.wake.close()
        self.looker_box.close()
        self.outbox.close()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def _prune(self) -> None:
        """Forget what every reader is done with, after `retention`. Node and fencing
        events stay: they are the evidence of joins and fences."""
        before = time.time() - self.config.retention
        try:
            cursors = self.outbox.subscribers()
            delivered = [cursors.get(Delivery.cursor_name(s), 0) for s in self.deliveries]
            if delivered:
                self.outbox.prune(NOTIFICATIONS, upto=min(delivered), recorded_before=before)
            self.outbox.prune(
                EVENTS,
                upto=cursors.get(DERIVER, 0),
                recorded_before=before,
                kinds=("resource", "attribute"),
            )
        except Exception as error:
            log(f"outbox not pruned: {error}")

    def _refresh_subscriptions(self) -> None:
        try:
            with SubscriptionStore(self.config.subscriptions) as store:
                current = {s.id: s for s in store.all()}
        except Exception as error:
            log(f"subscriptions unreadable ({self.config.subscriptions}): {error}")
            return
        for gone in set(self.deliveries) - set(current):
            self.deliveries.pop(gone).stop()
            self.outbox.forget(Delivery.cursor_name(gone))
            if self.metrics is not None:
                self.metrics.forget(gone)
        for subscription_id, subscription in current.items():
            if subscription_id not in self.deliveries:
                delivery = Delivery(self, subscription)
                self.deliveries[subscription_id] = delivery
                delivery.start()
