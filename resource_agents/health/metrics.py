"""The publisher's Prometheus metrics (`hakit health publish --metrics-port`), named after
ClusterLabs' ha_cluster_exporter: prefix `hakit_`, snake_case labels (`node`,
`resource`), units in the names, one line per possible class of a node.

Imported only when a metrics port is given: it needs prometheus_client, which nothing
else on a node does (`hakit agents install` copies it beside the agents). A dedicated
registry holds two kinds of metrics:

- read when scraped (`StateCollector`): leadership, each node's health class and the
  resources down on it (the latest health the publisher derived), open alarms, and from
  the outbox the notifications each subscriber has yet to acknowledge;
- counted by the publisher since it started: alarms raised, changed and cleared,
  deliveries and retries, the delivery lag, evacuations.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from hakit.ocf.exits import EnvironmentProblem
from hakit.resource_agents.health.constants import ALARM_CLEARED_NOTIFICATION
from hakit.resource_agents.health.liveness import readonly_uri
from hakit.resource_agents.health.model import Health, HealthReport
from hakit.resource_agents.health.nova import ComputeAPI, NovaError, Server
from hakit.resource_agents.health.outbox import EVENTS, NOTIFICATIONS

try:
    from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
    from prometheus_client.core import GaugeMetricFamily, Metric
    from prometheus_client.process_collector import ProcessCollector
except ModuleNotFoundError as missing:  # the agents' -IS interpreter without hakit's copy
    raise EnvironmentProblem(
        f"--metrics-port needs prometheus_client ({missing}); `hakit agents install` "
        "copies it beside the agents"
    ) from None

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from hakit.resource_agents.health.evacuation import ComputeRecovery
    from hakit.resource_agents.health.publisher import Publisher
    from hakit.resource_agents.health.sol003 import OpenAlarm, Outgoing

#: seconds from a notification stored to its subscriber's 2xx
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
SUBSCRIPTION_CURSOR = "subscription:"  # publisher.Delivery.cursor_name's prefix


class PublisherMetrics:
    """The registry, the counters the publisher moves, and the HTTP server, if serving."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_*: memory, CPU, open files
        alarm_labels = ("severity", "fault_type")
        self.raised = self._counter(
            "hakit_alarms_raised", "Alarms raised (root and instance alarms)", alarm_labels
        )
        self.changed = self._counter(
            "hakit_alarms_changed", "AlarmNotifications for alarms already open", alarm_labels
        )
        self.cleared = self._counter("hakit_alarms_cleared", "Alarms cleared", alarm_labels)
        self.deliveries = self._counter(
            "hakit_deliveries",
            "Attempts to deliver a notification, by result (delivered: HTTP 2xx)",
            ("subscription", "result"),
        )
        self.retries = self._counter(
            "hakit_delivery_retries",
            "Delivery attempts that repeat a failed one",
            ("subscription",),
        )
        self.lag = Histogram(
            "hakit_delivery_lag_seconds",
            "From a notification stored to its subscriber's 2xx",
            ("subscription",),
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.evacuations = Evacuations(
            self._counter(
                "hakit_evacuations",
                "Server evacuations off fenced hosts: started (nova accepted the request), "
                "succeeded (the server left the host), failed (refused, or left in ERROR)",
                ("result",),
            )
        )
        self.server: WSGIServer | None = None

    def _counter(self, name: str, documentation: str, labels: Iterable[str]) -> Counter:
        return Counter(name, documentation, tuple(labels), registry=self.registry)

    # --- what the publisher reports -----------------------------------------------------

    def watch(self, publisher: Publisher) -> None:
        """Read `publisher`'s state on every scrape."""
        self.registry.register(StateCollector(publisher))

    def stored(self, items: Iterable[tuple[OpenAlarm | None, Outgoing]]) -> None:
        """Notifications stored (committed), each with its host's alarm before them."""
        for before, item in items:
            if item.notification_type == ALARM_CLEARED_NOTIFICATION:
                fault = before.health.value if before is not None else ""
                self.cleared.labels(item.severity, fault).inc()
                continue
            alarm = item.body["alarm"]
            known = {before.alarm_id, *before.instances.values()} if before is not None else set()
            counter = self.changed if alarm["id"] in known else self.raised
            counter.labels(item.severity, alarm["faultType"]).inc()

    def delivery(self, subscription: str, ok: bool, *, retry: bool, recorded: float) -> None:
        """One attempt to deliver a notification stored at `recorded` (UNIX time)."""
        self.deliveries.labels(subscription, "delivered" if ok else "failed").inc()
        if retry:
            self.retries.labels(subscription).inc()
        if ok:
            self.lag.labels(subscription).observe(max(time.time() - recorded, 0.0))

    def forget(self, subscription: str) -> None:
        """A deleted subscription's series go (its counters would never move again)."""
        for result in ("delivered", "failed"):
            _remove(self.deliveries, subscription, result)
        _remove(self.retries, subscription)
        _remove(self.lag, subscription)

    def reconcile(self, recovery: ComputeRecovery, api: ComputeAPI, report: HealthReport) -> None:
        """`recovery.reconcile`, its evacuations counted."""
        self.evacuations.reconcile(recovery, api, report)

    # --- serving ------------------------------------------------------------------------

    def serve(self, address: str, port: int) -> int:
        """Serve /metrics on address:port from a daemon thread; the port (0: any free)."""
        try:
            self.server, _ = start_http_server(port, addr=address, registry=self.registry)
        except OSError as error:
            raise EnvironmentProblem(
                f"metrics on {address}:{port}: {error.strerror or error}"
            ) from None
        return int(self.server.server_port)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def serve(address: str, port: int) -> PublisherMetrics:
    """The publisher's metrics, served (`hakit health publish --metrics-port`)."""
    from hakit.resource_agents.health.delivery import log

    metrics = PublisherMetrics()
    port = metrics.serve(address, port)
    log(f"metrics on {address}:{port} (/metrics)")
    return metrics


def _remove(metric: Counter | Histogram, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:  # never seen
        pass


class StateCollector:
    """Metrics read at scrape time: from the publisher's latest health, and the outbox
    (a read-only connection of its own per scrape: scrapes run on the server's threads)."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    def describe(self) -> list[Metric]:
        return []  # nothing to check for clashes: the names are the ones below

    def collect(self) -> Iterator[Metric]:
        publisher = self.publisher
        yield GaugeMetricFamily(
            "hakit_leader",
            "1 when this instance derives and delivers (the DC of a quorate partition)",
            value=1.0 if publisher.leader.is_set() else 0.0,
        )
        yield from health_metrics(publisher.report)
        success = GaugeMetricFamily(
            "hakit_scrape_success", "Whether a collector read its state", labels=["collector"]
        )
        try:
            yield from outbox_metrics(publisher.config.outbox)
            success.add_metric(["outbox"], 1.0)
        except sqlite3.Error as error:
            from hakit.resource_agents.health.delivery import log

            log(f"metrics: outbox not read: {error}")
            success.add_metric(["outbox"], 0.0)
        yield success


def health_metrics(report: HealthReport | None) -> Iterator[Metric]:
    """hakit_node_health (one line per node and class, 1 for the node's) and
    hakit_resource_down (a line per resource down on a node), from the latest report."""
    nodes = GaugeMetricFamily(
        "hakit_node_health",
        "Each node's health class: 1 for its class, 0 for the others",
        labels=["node", "class"],
    )
    down = GaugeMetricFamily(
        "hakit_resource_down",
        "Resources failed, or stopped after a failure, on a running node (1; absent if not)",
        labels=["node", "resource"],
    )
    for node in report.nodes if report is not None else []:
        for health in Health:
            nodes.add_metric([node.node, health.value], 1.0 if node.health is health else 0.0)
        for resource in node.services_down:
            down.add_metric([node.node, resource], 1.0)
    yield nodes
    yield down


def outbox_metrics(path: str) -> list[Metric]:
    """Open alarms, what subscribers have yet to acknowledge, and what the outbox keeps."""
    db = sqlite3.connect(readonly_uri(path), uri=True, timeout=2.0)
    try:
        cursors: dict[str, int] = dict(db.execute("SELECT subscriber, position FROM cursors"))
        kept = db.execute("SELECT stream, count(*) FROM records GROUP BY stream").fetchall()
        alarms = [json.loads(row[0]) for row in db.execute("SELECT state FROM alarms")]
        pending = {
            name.removeprefix(SUBSCRIPTION_CURSOR): db.execute(
                "SELECT count(*), min(recorded) FROM records WHERE stream = ? AND seq > ?",
                (NOTIFICATIONS, position),
            ).fetchone()
            for name, position in cursors.items()
            if name.startswith(SUBSCRIPTION_CURSOR)
        }
        (events,) = db.execute(
            "SELECT count(*) FROM records WHERE stream = ? AND seq > ?",
            (EVENTS, cursors.get("publisher", 0)),
        ).fetchone()
    finally:
        db.close()
    return [
        _open_alarms(alarms),
        *_pending(pending, time.time()),
        GaugeMetricFamily(
            "hakit_outbox_pending_events",
            "Alert events the publisher has not derived yet",
            value=float(events),
        ),
        _labelled(
            "hakit_outbox_records",
            "Records the outbox keeps, per stream",
            ["stream"],
            {(stream,): float(count) for stream, count in kept},
        ),
    ]


def _open_alarms(alarms: list[dict[str, Any]]) -> Metric:
    counts: dict[tuple[str, ...], float] = {}
    for alarm in alarms:
        key = (alarm["host"], alarm["health"], alarm.get("severity", ""))
        counts[key] = counts.get(key, 0.0) + 1 + len(alarm.get("instances") or {})
    return _labelled(
        "hakit_alarms_open",
        "Open alarms (a host's root alarm and its instances'), per node",
        ["node", "fault_type", "severity"],
        counts,
    )


def _pending(pending: dict[str, tuple[int, float | None]], now: float) -> list[Metric]:
    depth: dict[tuple[str, ...], float] = {}
    age: dict[tuple[str, ...], float] = {}
    for subscription, (count, oldest) in pending.items():
        depth[(subscription,)] = float(count)
        age[(subscription,)] = max(now - oldest, 0.0) if oldest else 0.0
    return [
        _labelled(
            "hakit_outbox_depth",
            "Notifications stored that the subscriber has not acknowledged yet",
            ["subscription"],
            depth,
        ),
        _labelled(
            "hakit_outbox_oldest_pending_seconds",
            "Age of the oldest of them (0: none)",
            ["subscription"],
            age,
        ),
    ]


def _labelled(
    name: str, documentation: str, labels: list[str], values: dict[tuple[str, ...], float]
) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


# --- evacuations ----------------------------------------------------------------------------


class Evacuations:
    """Counts what `ComputeRecovery` does about evacuations, from what it asks nova (seen
    through `_Observed`) and its table: started when nova accepts a request; failed when
    nova refuses one, or when a server is requested again (the last attempt left it in
    ERROR) or given up on; succeeded when a server started here is no longer on its host."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.watched: set[tuple[str, str]] = set()  # (server, host): started, outcome unseen

    def reconcile(self, recovery: ComputeRecovery, api: ComputeAPI, report: HealthReport) -> None:
        observed = _Observed(api)
        try:
            recovery.reconcile(cast(ComputeAPI, observed), report)
        finally:
            self._count(observed, recovery)

    def _count(self, observed: _Observed, recovery: ComputeRecovery) -> None:
        rows = recovery.outbox.db.execute("SELECT server, host, gave_up FROM evacuations")
        table = {(server, host): bool(gave_up) for server, host, gave_up in rows}
        started, failed, succeeded = len(observed.requested), observed.refused, 0
        for key in observed.requested:
            failed += key in self.watched
            self.watched.add(key)
        for key in list(self.watched):
            server, host = key
            listed = observed.listed.get(host)
            if table.get(key):  # given up on
                failed += 1
            elif listed is not None and server not in {s.id for s in listed}:
                succeeded += 1
            elif key in table:
                continue
            self.watched.discard(key)  # decided, or forgotten (the host is back)
        for result, count in (("started", started), ("failed", failed), ("succeeded", succeeded)):
            if count:
                self.counter.labels(result).inc(count)


class _Observed:
    """The compute API as `ComputeRecovery` uses it, remembering the servers it listed on
    each host and the evacuations nova accepted or refused."""

    def __init__(self, api: ComputeAPI) -> None:
        self.api = api
        self.listed: dict[str, list[Server]] = {}
        self.requested: list[tuple[str, str]] = []  # (server, host)
        self.refused = 0
        self.lock = threading.Lock()  # evacuations are requested from several threads

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    def servers(self, host: str | None = None) -> list[Server]:
        found = self.api.servers(host)
        if host is not None:
            self.listed[host] = [s for s in found if s.host == host]
        return found

    def evacuate(self, server_id: str) -> None:
        host = next(
            (h for h, listed in self.listed.items() if any(s.id == server_id for s in listed)), ""
        )
        try:
            self.api.evacuate(server_id)
        except NovaError:
            with self.lock:
                self.refused += 1
            raise
        with self.lock:
            self.requested.append((server_id, host))
