"""The API's VNF error-report routes (api.py authenticates, then hands these over).

    POST /vnffm/v1/error-reports        ErrorReportRequest → 201 ErrorReport + Location
                                        (a repeated idempotency key: 200, the first one)
                                        [ErrorReportRequest] (1..100) → 200 ErrorReportBatch,
                                        all or nothing (400 names the bad elements)
    GET  /vnffm/v1/error-reports?after=SEQ&limit=N   → 200 [ErrorReport], oldest first
    GET  /vnffm/v1/error-reports/{id}   → 200 ErrorReport | 404
    GET  /vnffm/v1/correlations[/{id}]  → 200 | 404 (what the reports were traced to)

The client is the bearer token's name: idempotency keys are per client, and so is the
rate limit (a token bucket counting reports; 429 with Retry-After). A 201 or 200 means the
reports are on disk (`vnf_reports.ReportWriter`).
"""

from __future__ import annotations

import enum
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs

from hakit.resource_agents.health.outbox import StoreError
from hakit.resource_agents.health.sol003 import FM_PATH
from hakit.resource_agents.health.vnf_reports import (
    DEFAULT_BURST,
    DEFAULT_RATE,
    MAX_BATCH,
    RateLimiter,
    ReportError,
    ReportStore,
    ReportWriter,
    StoredReport,
    WriterClosed,
    parse_report,
    retry_after,
)

REPORTS = f"{FM_PATH}/error-reports"
CORRELATIONS = f"{FM_PATH}/correlations"
MAX_BODY = 512 * 1024  # a batch of 100 reports with long details
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_SEQ = 2**63 - 1
WRITE_TIMEOUT = 30.0  # seconds a request waits for its commit (then 503: retry, same key)


class Default(enum.Enum):
    """ApiServer's default report store."""

    BESIDE_STORE = "outbox.db"  # beside the subscription store (constants.OUTBOX_PATH)


BESIDE_STORE = Default.BESIDE_STORE


@dataclass(frozen=True)
class Request:
    """An authenticated request for a report route."""

    method: str
    path: str  # without the query, no trailing slash
    query: str
    body: bytes
    client: str  # the token's name
    idempotency_key: str | None  # the Idempotency-Key header
    api_base: str


@dataclass(frozen=True)
class Answer:
    """JSON to send, or a ProblemDetails `problem` (its detail)."""

    status: HTTPStatus
    data: object = None
    headers: dict[str, str] = field(default_factory=dict)
    problem: str | None = None


class ReportService:
    """What the API keeps for these routes: the store's path, its writer, the rate limit."""

    def __init__(
        self,
        path: str,
        *,
        rate: float = DEFAULT_RATE,
        burst: float = DEFAULT_BURST,
        on_reports: Callable[[], None] | None = None,
    ) -> None:
        self.limiter = RateLimiter(rate, burst)
        self.path = path
        #: why this instance takes no reports now (None: it does), e.g. not the leader
        self.refusing: Callable[[], str | None] = lambda: None
        self.writer = ReportWriter(path, on_stored=on_reports)

    def close(self) -> None:
        self.writer.close()


def service(
    path: str | None | Default,
    store_path: str,
    *,
    rate: float = DEFAULT_RATE,
    burst: float = DEFAULT_BURST,
    on_reports: Callable[[], None] | None = None,
) -> ReportService | None:
    """The service for ApiServer's `reports_path` (None: no report routes)."""
    if isinstance(path, Default):
        path = os.path.join(os.path.dirname(store_path), path.value)
    if path is None:
        return None
    return ReportService(path, rate=rate, burst=burst, on_reports=on_reports)


def owns(path: str) -> bool:
    """Whether `path` (no query, no trailing slash) is one of these routes."""
    return any(path == base or path.startswith(f"{base}/") for base in (REPORTS, CORRELATIONS))


def correlations_answer(store_path: str, correlation_id: str | None) -> object | None:
    """The correlations (a list, newest first), or one of them with the reports it counted
    (None: no such correlation). Each explains itself: rule, window, VNFs, evidence."""
    from hakit.resource_agents.health.correlator import correlations

    with ReportStore(store_path) as store:
        if (
            store.db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'correlations'"
            ).fetchone()
            is None
        ):
            return [] if correlation_id is None else None
        found = correlations(store.db, correlation_id)
        if correlation_id is None:
            return found
        if not found:
            return None
        reports = [store.get(report_id) for report_id in found[0]["report_ids"]]
    return {**found[0], "reports": [r.as_resource() for r in reports if r is not None]}


def handle(
    reports: ReportService | None, request: Request, parse_json: Callable[[bytes], object]
) -> Answer:
    """Route one request; `parse_json` reads a body (ValueError when it is not JSON)."""
    if reports is None:
        return Answer(HTTPStatus.NOT_FOUND, problem=f"no resource at {request.path}")
    data: object = None
    bad_json = None
    if request.method == "POST" and request.path == REPORTS:
        refusal = reports.refusing()
        if refusal is not None:
            return Answer(
                HTTPStatus.SERVICE_UNAVAILABLE, headers={"Retry-After": "1"}, problem=refusal
            )
        try:
            data = parse_json(request.body)
        except ValueError as error:
            bad_json = str(error)
    cost = min(max(len(data), 1), MAX_BATCH) if isinstance(data, list) else 1
    wait = reports.limiter.take(request.client, cost)
    if wait is not None:
        return Answer(
            HTTPStatus.TOO_MANY_REQUESTS,
            headers={"Retry-After": retry_after(wait)},
            problem=f"more than {reports.limiter.rate:g} reports a second; retry later",
        )
    if bad_json is not None:
        return Answer(HTTPStatus.BAD_REQUEST, problem=bad_json)
    try:
        return _route(reports, request, data)
    except (sqlite3.OperationalError, StoreError, TimeoutError, WriterClosed) as error:
        return Answer(
            HTTPStatus.SERVICE_UNAVAILABLE,
            headers={"Retry-After": "1"},
            problem=f"the report store is not available ({error}); retry with the same key",
        )


def _route(reports: ReportService, request: Request, data: object) -> Answer:
    base, item = _split(request.path)
    allowed = "GET, POST" if request.path == REPORTS else "GET"
    if "/" in item:
        return Answer(HTTPStatus.NOT_FOUND, problem=f"no resource at {request.path}")
    if request.method == "POST" and request.path == REPORTS:
        return _post(reports, request, data)
    if request.method != "GET":
        return Answer(
            HTTPStatus.METHOD_NOT_ALLOWED,
            headers={"Allow": allowed},
            problem=f"{request.method} {request.path}",
        )
    if base == CORRELATIONS:
        found = correlations_answer(reports.path, item or None)
        if found is None:
            return Answer(HTTPStatus.NOT_FOUND, problem=f"no correlation {item}")
        return Answer(HTTPStatus.OK, found)
    if not item:
        return _list(reports, request.query)
    with ReportStore(reports.path) as store:
        stored = store.get(item)
    if stored is None:
        return Answer(HTTPStatus.NOT_FOUND, problem=f"no error report {item}")
    return Answer(HTTPStatus.OK, stored.as_resource())


def _split(path: str) -> tuple[str, str]:
    """(the collection, what follows it)."""
    base = REPORTS if path == REPORTS or path.startswith(f"{REPORTS}/") else CORRELATIONS
    return base, path[len(base) + 1 :]


def _post(reports: ReportService, request: Request, data: object) -> Answer:
    now = time.time()
    if not isinstance(data, list):
        try:
            report = parse_report(
                data, request.client, now, idempotency_key=request.idempotency_key
            )
        except ReportError as error:
            return Answer(HTTPStatus.BAD_REQUEST, problem=str(error))
        [(stored, created)] = reports.writer.add([report], WRITE_TIMEOUT)
        location = {"Location": f"{request.api_base}{REPORTS}/{stored.id}"}
        status = HTTPStatus.CREATED if created else HTTPStatus.OK
        return Answer(status, stored.as_resource(), location)
    if request.idempotency_key is not None:
        return Answer(
            HTTPStatus.BAD_REQUEST,
            problem="the Idempotency-Key header is for one report: give each its idempotencyKey",
        )
    if not 0 < len(data) <= MAX_BATCH:
        return Answer(HTTPStatus.BAD_REQUEST, problem=f"a batch holds 1 to {MAX_BATCH} reports")
    batch, problems = [], []
    for index, element in enumerate(data):
        try:
            batch.append(parse_report(element, request.client, now))
        except ReportError as error:
            problems.append(f"reports[{index}]: {error}")
    if problems:
        return Answer(HTTPStatus.BAD_REQUEST, problem="; ".join(problems))
    added = reports.writer.add(batch, WRITE_TIMEOUT)
    return Answer(
        HTTPStatus.OK,
        {"reports": [stored.as_resource() for stored, _ in added], "created": _created(added)},
    )


def _created(added: list[tuple[StoredReport, bool]]) -> int:
    return sum(1 for _, created in added if created)


def _list(reports: ReportService, query: str) -> Answer:
    try:
        arguments = parse_qs(query, keep_blank_values=True, max_num_fields=20)
    except ValueError:
        arguments = {"after": ["too many fields"]}
    after = _integer(arguments.get("after"), 0, 0, MAX_SEQ)
    limit = _integer(arguments.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
    if after is None or limit is None:
        return Answer(
            HTTPStatus.BAD_REQUEST,
            problem=f"after is a sequence number (0 or more); limit is 1 to {MAX_LIMIT}",
        )
    with ReportStore(reports.path) as store:
        return Answer(HTTPStatus.OK, [stored.as_resource() for stored in store.after(after, limit)])


def _integer(values: list[str] | None, default: int, low: int, high: int) -> int | None:
    """The first value as an integer in [low, high]; None when it is not one."""
    if not values:
        return default
    text = values[0]
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        return None
    return int(text) if low <= int(text) <= high else None
