"""VNF error reports: parsing, a durable store, a group-committing writer, rate limits.

A VNF (or its manager) reports an error it sees on one of its resources: a server, a port
or a volume. `parse_report` checks a request; `ReportStore` keeps reports in the outbox's
SQLite file (WAL, synchronous=FULL) in a table of its own; `ReportWriter` gives one
thread the writing connection and commits whatever the request threads queued in one
transaction (one fsync for many reports): once `add` returns, the reports are on disk.
A repeated (client, idempotency key) is not a second report.

The table's DDL is portable: on MariaDB or PostgreSQL (an active/active API clone)
only `seq` differs, `BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY` (MariaDB) or
`BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY` (PostgreSQL); every statement here is
plain SQL (SELECT-then-INSERT under the unique constraint, no INSERT OR IGNORE; a clone
that loses a race on the same key gets a unique violation and retries, finding the
first). There, `seq` follows allocation, not commit order: a reader paging with `after`
should re-read a short window. The table has no schema version of its own yet (its DDL
is IF NOT EXISTS); the file's `PRAGMA user_version` belongs to the outbox and is left to it.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import re
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from hakit.resource_agents.health.constants import OUTBOX_PATH, SEVERITIES
from hakit.resource_agents.health.model import rfc3339
from hakit.resource_agents.health.outbox import Outbox, Transaction

DEFAULT_PATH = OUTBOX_PATH
RESOURCE_TYPES = ("server", "port", "volume")
ERROR_CLASSES = ("compute", "network", "storage", "unknown")
RESOLUTIONS = ("pending", "resolved", "unresolved")
MAX_ID = 255
MAX_DETAILS = 4096
MAX_BATCH = 100
MAX_SKEW = 300.0  # seconds an observedTime may lie in the future (clock skew)
DEFAULT_RATE = 500.0  # reports per second and client
DEFAULT_BURST = 1000.0
FIELDS = (
    *("vnfInstanceId", "resource", "errorClass", "perceivedSeverity"),
    *("observedTime", "details", "idempotencyKey"),
)
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:[Zz]|([+-])(\d\d):(\d\d))",
    re.ASCII,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vnf_reports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id VARCHAR(36) NOT NULL UNIQUE,
    client VARCHAR(64) NOT NULL,
    idempotency_key VARCHAR(255) NOT NULL,
    vnf_instance_id VARCHAR(255) NOT NULL,
    resource_type VARCHAR(16) NOT NULL,
    resource_id VARCHAR(255) NOT NULL,
    error_class VARCHAR(16) NOT NULL,
    severity VARCHAR(16) NOT NULL,
    observed DOUBLE PRECISION NOT NULL,
    received DOUBLE PRECISION NOT NULL,
    details TEXT NOT NULL,
    host VARCHAR(255),
    physnet VARCHAR(255),
    backend VARCHAR(255),
    resolution VARCHAR(16) NOT NULL,
    reason TEXT NOT NULL,
    resolved_at DOUBLE PRECISION,
    UNIQUE (client, idempotency_key)
);
CREATE INDEX IF NOT EXISTS vnf_reports_by_resolution ON vnf_reports (resolution, seq);
CREATE INDEX IF NOT EXISTS vnf_reports_by_observed ON vnf_reports (observed)
"""
_REPORT_COLUMNS = (
    "id, client, idempotency_key, vnf_instance_id, resource_type, resource_id, error_class,"
    " severity, observed, received, details"
)
_COLUMNS = f"seq, {_REPORT_COLUMNS}, host, physnet, backend, resolution, reason, resolved_at"


class ReportError(ValueError):
    """A report that cannot be accepted; `problems` names every bad field."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class ErrorReport:
    """One accepted report (`id` is assigned at ingest, `client` is the token's name)."""

    id: str
    client: str
    idempotency_key: str
    vnf_instance_id: str
    resource_type: str
    resource_id: str
    error_class: str
    severity: str
    observed: float
    received: float
    details: str = ""

    def as_resource(self) -> dict[str, Any]:
        """The API's JSON shape (without the stored resolution)."""
        return {
            "id": self.id,
            "vnfInstanceId": self.vnf_instance_id,
            "resource": {"type": self.resource_type, "id": self.resource_id},
            "errorClass": self.error_class,
            "perceivedSeverity": self.severity,
            "observedTime": rfc3339(self.observed),
            "receivedTime": rfc3339(self.received),
            "details": self.details,
            "idempotencyKey": self.idempotency_key,
        }


@dataclass(frozen=True)
class StoredReport:
    """A report as stored: its sequence number and what is known of its cause."""

    report: ErrorReport
    seq: int
    resolution: str = "pending"
    host: str | None = None
    physnet: str | None = None
    backend: str | None = None
    reason: str = ""
    resolved_at: float | None = None

    @property
    def id(self) -> str:
        return self.report.id

    def as_resource(self) -> dict[str, Any]:
        """The API's JSON shape: the report, `seq` and `resolution`."""
        resolution: dict[str, Any] = {"state": self.resolution}
        for key, value in (
            ("host", self.host),
            ("physnet", self.physnet),
            ("backend", self.backend),
            ("reason", self.reason),
        ):
            if value:
                resolution[key] = value
        if self.resolved_at is not None:
            resolution["resolvedTime"] = rfc3339(self.resolved_at)
        return {**self.report.as_resource(), "seq": self.seq, "resolution": resolution}


def parse_report(
    data: object, client: str, now: float, *, idempotency_key: str | None = None
) -> ErrorReport:
    """A report from its request JSON (`idempotency_key`: the Idempotency-Key header, when
    given); ReportError naming every bad field at once."""
    if not isinstance(data, dict):
        raise ReportError(["a report must be a JSON object"])
    problems: list[str] = []
    unknown = [str(key) for key in data if key not in FIELDS]
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:3])
        problems.append(f"not report fields: {shown} (fields: {', '.join(FIELDS)})")
    vnf_instance_id = _identifier(data.get("vnfInstanceId"), "vnfInstanceId", problems)
    resource = data.get("resource")
    if isinstance(resource, dict):
        if set(resource) - {"type", "id"}:
            problems.append("resource has only type and id")
        resource_type = _choice(resource.get("type"), "resource.type", RESOURCE_TYPES, problems)
        resource_id = _identifier(resource.get("id"), "resource.id", problems)
    else:
        problems.append("resource must be an object with type and id")
        resource_type = resource_id = ""
    error_class = _choice(data.get("errorClass"), "errorClass", ERROR_CLASSES, problems)
    severity = _choice(data.get("perceivedSeverity"), "perceivedSeverity", SEVERITIES, problems)
    observed = _observed(data.get("observedTime"), now, problems)
    details = data.get("details", "")
    if not (isinstance(details, str) and len(details) <= MAX_DETAILS) or _CONTROL.search(details):
        problems.append(
            f"details must be a string of at most {MAX_DETAILS} characters"
            " (no control characters but tab, CR and LF)"
        )
    key = data.get("idempotencyKey", idempotency_key)
    if idempotency_key is not None and key != idempotency_key:
        problems.append("idempotencyKey differs from the Idempotency-Key header")
    key = _identifier(key, "idempotencyKey (or the Idempotency-Key header)", problems)
    if problems:
        raise ReportError(problems)
    return ErrorReport(
        str(uuid.uuid4()),
        client,
        key,
        vnf_instance_id,
        resource_type,
        resource_id,
        error_class,
        severity,
        observed,
        now,
        str(details),
    )


def _identifier(value: object, name: str, problems: list[str]) -> str:
    if isinstance(value, str) and 0 < len(value) <= MAX_ID and value.isprintable():
        return value
    problems.append(f"{name} must be a string of 1 to {MAX_ID} printable characters")
    return ""


def _choice(value: object, name: str, allowed: Sequence[str], problems: list[str]) -> str:
    if isinstance(value, str) and value in allowed:
        return value
    problems.append(f"{name} must be one of {', '.join(allowed)}")
    return ""


def _observed(value: object, now: float, problems: list[str]) -> float:
    """observedTime: RFC 3339, not before 1970, at most MAX_SKEW seconds ahead of `now`."""
    name = "observedTime"
    match = _RFC3339.fullmatch(value) if isinstance(value, str) and len(value) <= 64 else None
    if match is None:
        problems.append(f"{name} must be an RFC 3339 date-time (2024-05-01T12:00:00Z)")
        return 0.0
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    try:
        offset = datetime.timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
        y, mo, d, h, mi, sec = (int(n) for n in (year, month, day, hour, minute, second))
        microsecond = int((fraction or "0")[:6].ljust(6, "0"))
        zone = datetime.timezone(-offset if sign == "-" else offset)
        moment = datetime.datetime(y, mo, d, h, mi, sec, microsecond, zone)
    except ValueError:
        problems.append(f"{name} is not a valid date-time")
        return 0.0
    when = moment.timestamp()
    if when < 0:
        problems.append(f"{name} is before 1970")
    elif when > now + MAX_SKEW:
        problems.append(f"{name} is more than {MAX_SKEW:.0f} seconds in the future")
    return when


class ReportStore:
    """Reports in the outbox's file (one connection, one thread at a time)."""

    def __init__(self, path: str = DEFAULT_PATH, *, timeout: float = 5.0) -> None:
        self.path = str(path)
        self._outbox = Outbox(self.path, timeout=timeout)  # the outbox's schema and version
        self.db = self._outbox.db
        try:
            exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'vnf_reports'"
            if self.db.execute(exists).fetchone() is None:
                with Transaction(self.db):
                    for statement in _SCHEMA.split(";"):
                        self.db.execute(statement)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._outbox.close()

    def __enter__(self) -> ReportStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> Transaction:
        return Transaction(self.db)

    def add(self, reports: Sequence[ErrorReport]) -> list[tuple[StoredReport, bool]]:
        """Store `reports` in one transaction: (stored, created) for each. A repeated
        (client, idempotency key) gives the report stored first with created False, even
        when the repeat's content differs (the first report stands)."""
        with Transaction(self.db):
            return [self._add(report) for report in reports]

    def _add(self, report: ErrorReport) -> tuple[StoredReport, bool]:
        found = self._select(
            "WHERE client = ? AND idempotency_key = ?", (report.client, report.idempotency_key)
        )
        if found:
            return found[0], False
        cursor = self.db.execute(
            f"INSERT INTO vnf_reports ({_REPORT_COLUMNS}, resolution, reason)"  # noqa: S608
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', '')",
            [getattr(report, name) for name in _NAMES],
        )
        return StoredReport(report, int(cursor.lastrowid or 0)), True

    def get(self, report_id: str) -> StoredReport | None:
        found = self._select("WHERE id = ?", (report_id,))
        return found[0] if found else None

    def after(self, seq: int, limit: int = 100) -> list[StoredReport]:
        """Reports after sequence number `seq`, oldest first."""
        return self._select("WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))

    def pending(self, limit: int = 100) -> list[StoredReport]:
        """Reports not yet resolved, oldest first."""
        return self._select("WHERE resolution = 'pending' ORDER BY seq LIMIT ?", (limit,))

    def observed_since(self, when: float) -> list[StoredReport]:
        """Reports observed at or after `when`, in the order they were observed."""
        return self._select("WHERE observed >= ? ORDER BY observed, seq", (when,))

    def resolve(
        self,
        report_id: str,
        *,
        host: str | None = None,
        physnet: str | None = None,
        backend: str | None = None,
        state: str,
        reason: str,
    ) -> bool:
        """Record what a report was traced to (None keeps what is stored); whether it exists."""
        if state not in RESOLUTIONS:
            raise ValueError(f"state must be one of {', '.join(RESOLUTIONS)}")
        cursor = self.db.execute(
            "UPDATE vnf_reports SET host = COALESCE(?, host), physnet = COALESCE(?, physnet),"
            " backend = COALESCE(?, backend), resolution = ?, reason = ?, resolved_at = ?"
            " WHERE id = ?",
            (host, physnet, backend, state, reason, time.time(), report_id),
        )
        return cursor.rowcount == 1

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM vnf_reports").fetchone()[0])

    def _select(self, where: str, args: tuple[object, ...]) -> list[StoredReport]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM vnf_reports {where}", args)  # noqa: S608
        return [_stored(*row) for row in rows.fetchall()]


def _stored(seq: int, *values: Any) -> StoredReport:
    *report, host, physnet, backend, resolution, reason, resolved_at = values
    return StoredReport(
        ErrorReport(*report), seq, resolution, host, physnet, backend, reason, resolved_at
    )


Added = list[tuple[StoredReport, bool]]


class WriterClosed(RuntimeError):
    """The writer was closed before the reports were stored."""


_NAMES = [name.strip() for name in _REPORT_COLUMNS.split(",")]  # ErrorReport's fields


class ReportWriter:
    """One thread owns the writing connection; request threads hand it batches and wait.
    Everything queued meanwhile is committed in one transaction, so many reports share one
    fsync. `on_stored` is called (in the writer's thread: keep it quick) after a commit
    that stored a new report."""

    def __init__(
        self,
        path: str = DEFAULT_PATH,
        *,
        on_stored: Callable[[], None] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.store = ReportStore(path, timeout=timeout)  # an unusable path fails here
        self.on_stored = on_stored
        self._queue: list[tuple[Sequence[ErrorReport], Future[Added]]] = []
        self._ready = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="hakit-reports", daemon=True)
        self._thread.start()

    def submit(self, reports: Sequence[ErrorReport]) -> Future[Added]:
        """Queue reports; the future's result is what `ReportStore.add` returned."""
        future: Future[Added] = Future()
        with self._ready:
            if self._closing:
                future.set_exception(WriterClosed("the report writer is closed"))
            else:
                self._queue.append((tuple(reports), future))
                self._ready.notify()
        return future

    def add(self, reports: Sequence[ErrorReport], timeout: float | None = 30.0) -> Added:
        """Store reports durably (TimeoutError when the commit takes longer than `timeout`)."""
        return self.submit(reports).result(timeout)

    def close(self) -> None:
        """Store what is queued, then stop."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join()
        self.store.close()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closing:
                    self._ready.wait()
                if not self._queue:
                    return
                jobs, self._queue = self._queue, []
            try:
                self._commit(jobs)
            except Exception as error:  # the writer never dies: its callers learn why
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(error)

    def _commit(self, jobs: list[tuple[Sequence[ErrorReport], Future[Added]]]) -> None:
        try:
            with self.store.transaction():
                results = [self.store.add(reports) for reports, _ in jobs]
        except Exception as error:
            if self.store.db.in_transaction:  # a COMMIT that failed
                with contextlib.suppress(sqlite3.Error):
                    self.store.db.execute("ROLLBACK")
            if len(jobs) > 1:  # one failing batch fails only itself
                for job in jobs:
                    self._commit([job])
            else:
                jobs[0][1].set_exception(error)
            return
        for (_, future), result in zip(jobs, results, strict=True):
            future.set_result(result)
        if self.on_stored is not None and any(new for result in results for _, new in result):
            try:
                self.on_stored()
            except Exception as error:
                print(f"hakit health: on_reports failed: {error!r}", file=sys.stderr)


class RateLimiter:
    """A token bucket per client: `rate` per second, up to `burst`; thread-safe."""

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: float = DEFAULT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (rate > 0 and burst >= 1):
            raise ValueError("the report rate must be above 0 and the burst at least 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str, n: int = 1) -> float | None:
        """Take `n` (at most the burst): None when allowed, else the seconds to wait."""
        wanted = min(float(n), self.burst)
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= wanted:
                self._buckets[client] = (tokens - wanted, now)
                return None
            self._buckets[client] = (tokens, now)
            return (wanted - tokens) / self.rate


def retry_after(seconds: float) -> str:
    """A Retry-After header's value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
