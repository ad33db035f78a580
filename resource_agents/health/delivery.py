"""Stage 2 of the publisher: one thread per subscription walks the `notifications` stream
in order (see `publisher`), signed POSTs with retries and backoff, strict order."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from hakit.resource_agents.health import webhook
from hakit.resource_agents.health.outbox import NOTIFICATIONS, Outbox, Record
from hakit.resource_agents.health.sol003 import for_subscription
from hakit.resource_agents.health.subscriptions import Subscription

if TYPE_CHECKING:
    from hakit.resource_agents.health.publisher import Publisher


def log(message: str) -> None:
    """One line on stderr, its UTC time first (the agent's log file has no other clock);
    never a traceback."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    sys.stderr.write(f"{stamp} hakit-publisher: {message}\n")
    sys.stderr.flush()


class Delivery(threading.Thread):
    """Delivers the notification stream to one subscriber, in order, until stopped."""

    def __init__(self, publisher: Publisher, subscription: Subscription) -> None:
        super().__init__(name=f"deliver-{subscription.id}", daemon=True)
        self.publisher = publisher
        self.subscription = subscription
        self.cursor = self.cursor_name(subscription.id)
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.failures = 0

    @staticmethod
    def cursor_name(subscription_id: str) -> str:
        return f"subscription:{subscription_id}"

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()

    def run(self) -> None:
        config = self.publisher.config
        try:
            box = Outbox(config.outbox)
        except Exception as error:
            log(f"{self.subscription.callback_uri}: outbox unreadable: {error}")
            return
        try:
            while not self.stopped.is_set():
                try:
                    self._deliver_pending(box)
                except Exception as error:  # the database, mostly: try again shortly
                    log(f"{self.subscription.callback_uri}: delivery stopped: {error}")
                    self.stopped.wait(config.retry_initial)
        finally:
            box.close()

    def _deliver_pending(self, box: Outbox) -> None:
        config = self.publisher.config
        self.wake.clear()
        if not self.publisher.leader.is_set():
            self.wake.wait(config.resync_interval)
            return
        position = box.cursor(self.cursor)
        if position is None:  # new: start with what was stored after it subscribed
            position = box.last_seq(NOTIFICATIONS, recorded_before=self.subscription.created)
            box.advance(self.cursor, position)
        records = box.read(NOTIFICATIONS, position, limit=config.batch)
        if not records:
            self.wake.wait(config.resync_interval)
            return
        for record in records:
            if self.stopped.is_set() or not self.publisher.leader.is_set():
                return
            stored = json.loads(record.body)
            wanted = self.subscription.filter.matches(record.kind, stored["severity"], record.node)
            if wanted and not self._send(record, stored["notification"]):
                delay = min(config.retry_initial * 2 ** (self.failures - 1), config.retry_max)
                self.stopped.wait(delay)
                return
            box.advance(self.cursor, record.seq)

    def _send(self, record: Record, notification: dict[str, Any]) -> bool:
        config = self.publisher.config
        uri = self.subscription.callback_uri
        personal = for_subscription(notification, self.subscription.id, config.context.api_base)
        body = json.dumps(personal, sort_keys=True).encode()
        try:
            status = webhook.post_notification(
                uri, body, self.subscription.secret, record.event_id, timeout=config.http_timeout
            )
            problem = None if 200 <= status < 300 else f"HTTP {status}"
        except webhook.DeliveryError as error:
            problem = str(error)
        if self.publisher.metrics is not None:
            self.publisher.metrics.delivery(
                self.subscription.id,
                problem is None,
                retry=self.failures > 0,
                recorded=record.recorded,
            )
        if problem is None:
            if self.failures:
                log(f"{uri}: delivering again after {self.failures} failed attempt(s)")
            self.failures = 0
            return True
        self.failures += 1
        if self.failures == 1:
            log(
                f"{uri}: {record.kind} {record.event_id} not delivered ({problem}); "
                "retrying with backoff"
            )
        return False
