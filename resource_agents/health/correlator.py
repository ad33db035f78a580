"""The publisher's correlation stage: VNF error reports → resolved to the NFVI → correlated
(`correlation.step`) → SOL 003 alarms in the outbox's notifications stream.

Each run, on the leader only: pending reports are resolved (`resolve.Resolver`; a cloud
that does not answer leaves them pending, retried every `retry_s`), the reports observed
within the rules' horizon become observations (less those a lost host already explained),
the hosts Pacemaker lost (their open host alarm is HOST_DOWN_FENCED or
HOST_UNREACHABLE_UNFENCED) the evidence, and the open
correlations (table `correlations`) move on. The notifications and the correlations are
written in one transaction, so a crash between them cannot alarm twice or lose one. A
closed correlation stays (for `explain`) until `retention`. Optional action: disable a
suspect host's nova-compute with the reason (never forced down: that needs a fence).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from hakit.resource_agents.health.correlation import (
    Book,
    Correlation,
    Evidence,
    Observation,
    Rules,
    explain,
    step,
)
from hakit.resource_agents.health.model import Health
from hakit.resource_agents.health.nova import ComputeAPI, NovaError
from hakit.resource_agents.health.outbox import Outbox
from hakit.resource_agents.health.resolve import PENDING, Resolver
from hakit.resource_agents.health.sol003 import Context, OpenAlarm, Outgoing
from hakit.resource_agents.health.vnf_reports import ReportStore, StoredReport

CORRELATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS correlations (id TEXT PRIMARY KEY, slot TEXT NOT NULL,"
    " open INTEGER NOT NULL, raised REAL NOT NULL, closed REAL, state TEXT NOT NULL)"
)
RESOLVE_BATCH = 200
EXPIRY_CHECK_S = 0.5  # with nothing new, how often open correlations' windows are checked


class Correlator:
    """Runs the stage over one outbox file (reports, correlations, notifications)."""

    def __init__(
        self,
        outbox: Outbox,
        rules: Rules,
        *,
        resolver: Resolver,
        context: Context,
        store: Callable[[Outgoing], bool],
        log: Callable[[str], None],
        compute: ComputeAPI | None = None,
        retry_s: float = 5.0,
        retention: float = 7 * 86400.0,
    ) -> None:
        self.outbox = outbox
        self.rules = rules
        self.resolver = resolver
        self.context = context
        self.store = store
        self.log = log
        self.compute = compute
        self.retry_s = retry_s
        self.retention = retention
        self.reports = ReportStore(outbox.path)
        self.outbox.db.execute(CORRELATIONS_TABLE)
        self._retry_at: dict[str, float] = {}
        self._seen: tuple[object, ...] | None = None
        self._expiry_check = 0.0  # nothing new: windows are checked this often

    def close(self) -> None:
        self.reports.close()

    def run(self, open_alarms: list[OpenAlarm], now: float | None = None) -> int:
        """One step when anything changed (new or resolved reports, lost hosts) or, every
        EXPIRY_CHECK_S, while correlations are open (their windows run out); the
        notifications stored."""
        now = time.time() if now is None else now
        lost = {a.host: a.alarm_id for a in open_alarms if Health(a.health).host_lost}
        book = self.book()
        newest = self.outbox.db.execute("SELECT max(seq) FROM vnf_reports").fetchone()[0]
        seen = (newest, tuple(sorted(lost.items())))
        resolved = self.resolve_pending()
        changed = bool(resolved) or seen != self._seen
        if not changed and (not book.correlations or now < self._expiry_check):
            return 0
        self._seen = seen
        self._expiry_check = now + EXPIRY_CHECK_S
        result = step(
            book, self.observations(now, lost), Evidence(lost), self.rules, now, self.context
        )
        stored = 0
        with self.outbox.transaction() as db:
            stored = sum(1 for item in result.outgoing if self.store(item))
            open_ids = set()
            for correlation in result.book.correlations.values():
                open_ids.add(correlation.id)
                self._save(db, correlation, is_open=True)
            for correlation in result.closed:
                if correlation.id not in open_ids:
                    self._save(db, correlation, is_open=False)
            db.execute(
                "DELETE FROM correlations WHERE open = 0 AND closed < ?", (now - self.retention,)
            )
        for action in result.actions:
            self._disable(action.host, action.reason)
        return stored

    def book(self) -> Book:
        rows = self.outbox.db.execute("SELECT state FROM correlations WHERE open = 1")
        return Book.of(Correlation.from_dict(json.loads(row[0])) for row in rows)

    def observations(self, now: float, lost: Mapping[str, str]) -> list[Observation]:
        """The resolved reports within the horizon, less those a lost host explained (a
        "fenced" correlation's whose host is back: they make no suspicion of it)."""
        since = now - self.rules.horizon_s
        explained = self.explained(since, lost)
        return [
            observation(stored)
            for stored in self.reports.observed_since(since)
            if stored.resolution == "resolved" and stored.id not in explained
        ]

    def explained(self, since: float, lost: Mapping[str, str]) -> set[str]:
        rows = self.outbox.db.execute(
            "SELECT state FROM correlations WHERE slot LIKE 'fenced/%'"
            " AND (open = 1 OR closed >= ?)",
            (since,),
        )
        explained: set[str] = set()
        for (state,) in rows:
            data = json.loads(state)
            if data["key"] not in lost:
                explained.update(data["report_ids"])
        return explained

    def resolve_pending(self) -> int:
        """Resolve what is pending (retrying a failed lookup every `retry_s`); how many
        reports were settled (resolved or unresolved)."""
        settled = 0
        now = time.monotonic()
        for stored in self.reports.pending(RESOLVE_BATCH):
            if self._retry_at.get(stored.id, 0.0) > now:
                continue
            report = stored.report
            answer = self.resolver.resolve(report.resource_type, report.resource_id)
            if answer.state == PENDING:
                if stored.id not in self._retry_at:
                    self.log(
                        f"report {stored.id}: {report.resource_type} not resolved yet: "
                        f"{answer.reason}"
                    )
                self._retry_at[stored.id] = now + self.retry_s
                continue
            self._retry_at.pop(stored.id, None)
            self.reports.resolve(
                stored.id,
                host=answer.host,
                physnet=answer.physnet,
                backend=answer.backend,
                state=answer.state,
                reason=answer.reason,
            )
            settled += 1
        return settled

    def _save(self, db: Any, correlation: Correlation, *, is_open: bool) -> None:
        db.execute(
            "INSERT OR REPLACE INTO correlations (id, slot, open, raised, closed, state)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                correlation.id,
                correlation.slot,
                int(is_open),
                correlation.raised,
                correlation.cleared,
                json.dumps(correlation.as_dict(), sort_keys=True),
            ),
        )

    def _disable(self, host: str, reason: str) -> None:
        if self.compute is None:
            self.log(f"nova-compute on {host} not disabled: no cloud configured ({reason})")
            return
        try:
            changed = self.compute.set_disabled(host, reason)
        except NovaError as error:
            self.log(f"nova-compute on {host}: disabling failed: {error.reason}")
            return
        if changed:
            self.log(f"nova-compute on {host} disabled: {reason}")


def observation(stored: StoredReport) -> Observation:
    report = stored.report
    scopes = {
        name: value
        for name, value in (
            ("host", stored.host),
            ("physnet", stored.physnet),
            ("backend", stored.backend),
        )
        if value
    }
    return Observation(
        report.id,
        report.vnf_instance_id,
        report.error_class,
        report.severity,
        report.observed,
        scopes,
    )


def correlations(db: Any, correlation_id: str | None = None) -> list[dict[str, Any]]:
    """Stored correlations (newest first), each with its `explanation` lines and the
    reports it counted."""
    query = "SELECT state FROM correlations"
    rows = (
        db.execute(f"{query} WHERE id = ?", (correlation_id,))
        if correlation_id is not None
        else db.execute(f"{query} ORDER BY raised DESC LIMIT 1000")
    )
    found = []
    for (state,) in rows.fetchall():
        data: Mapping[str, Any] = json.loads(state)
        correlation = Correlation.from_dict(data)
        found.append({**data, "explanation": explain(correlation)})
    return found
