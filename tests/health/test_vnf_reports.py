"""VNF error reports: parsing, the durable store in the outbox's file, the group-committing
writer, per-client rate limits, and the API routes over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hakit.resource_agents.health.api import ApiServer
from hakit.resource_agents.health.model import rfc3339
from hakit.resource_agents.health.outbox import Outbox
from hakit.resource_agents.health.subscriptions import SubscriptionStore
from hakit.resource_agents.health.vnf_reports import (
    RateLimiter,
    ReportError,
    ReportStore,
    ReportWriter,
    parse_report,
    retry_after,
)
from tests.health.test_api_hardening import serving

PATH = "/vnffm/v1/error-reports"
NOW = 1_700_000_000.0


def report(key: str = "k1", **changes: Any) -> dict[str, Any]:
    """A valid report request."""
    return {
        "vnfInstanceId": "vnf-1",
        "resource": {"type": "server", "id": "8b2f0c3e-5a4d-4a55-9d1a-2f4e2c9b7a10"},
        "errorClass": "compute",
        "perceivedSeverity": "MAJOR",
        "observedTime": rfc3339(NOW - 10),
        "details": "heartbeat lost\nsince 10 s",
        "idempotencyKey": key,
        **changes,
    }


# --- parsing --------------------------------------------------------------------------


def test_a_valid_report_parses() -> None:
    parsed = parse_report(report(observedTime="2023-11-14T22:13:10.5+01:00"), "mano", NOW)
    assert (parsed.client, parsed.idempotency_key, parsed.resource_type) == ("mano", "k1", "server")
    assert parsed.observed == NOW - 3600 + 0.5 - 10 and parsed.received == NOW
    resource = parsed.as_resource()
    assert resource["observedTime"] == "2023-11-14T21:13:10.500000Z"
    assert resource["resource"] == {"type": "server", "id": report()["resource"]["id"]}
    assert parse_report(report(), "mano", NOW).id != parsed.id  # an id per ingest


def test_parse_errors_name_every_field() -> None:
    bad = {
        "vnfInstanceId": "a\x1bb",
        "resource": {"type": "disk", "id": ""},
        "errorClass": "power",
        "perceivedSeverity": "major",
        "observedTime": "yesterday",
        "details": "x" * 5000,
        "idempotencyKey": "k" * 256,
        "extra": 1,
    }
    with pytest.raises(ReportError) as caught:
        parse_report(bad, "mano", NOW)
    message = str(caught.value)
    for name in (
        "vnfInstanceId",
        "resource.type",
        "resource.id",
        "errorClass",
        "perceivedSeverity",
        "observedTime",
        "details",
        "idempotencyKey",
        "'extra'",
    ):
        assert name in message, name
    assert len(caught.value.problems) == 9


@pytest.mark.parametrize(
    ("when", "accepted"),
    [
        (rfc3339(NOW + 240), True),
        (rfc3339(NOW + 400), False),  # clock skew beyond 5 minutes
        (rfc3339(NOW - 30 * 86400), True),
        ("1969-12-31T23:59:59Z", False),
        ("2023-02-30T00:00:00Z", False),
        ("2023-11-14T22:13:10", False),  # no offset: not RFC 3339
        ("2023-11-14t22:13:10z", True),
    ],
)
def test_observed_time(when: str, accepted: bool) -> None:
    if accepted:
        parse_report(report(observedTime=when), "mano", NOW)
    else:
        with pytest.raises(ReportError, match="observedTime"):
            parse_report(report(observedTime=when), "mano", NOW)


def test_the_key_may_come_from_the_header_but_must_agree() -> None:
    headerless = {k: v for k, v in report().items() if k != "idempotencyKey"}
    assert parse_report(headerless, "m", NOW, idempotency_key="h").idempotency_key == "h"
    with pytest.raises(ReportError, match="idempotencyKey"):
        parse_report(headerless, "m", NOW)
    with pytest.raises(ReportError, match="differs"):
        parse_report(report("body"), "m", NOW, idempotency_key="header")
    with pytest.raises(ReportError, match="details"):
        parse_report(report(details="\ud800"), "m", NOW)  # not UTF-8: refused, not a 500


# --- the store and the writer -----------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "state" / "outbox.db")


def test_a_repeated_key_is_the_first_report_and_keys_are_per_client(db: str) -> None:
    with ReportStore(db) as store:
        first = parse_report(report("k"), "mano", NOW)
        [(stored, created)] = store.add([first])
        assert created and stored.seq == 1
        again = parse_report(report("k", details="other words"), "mano", NOW)
        [(repeat, created)] = store.add([again])
        assert not created and repeat == stored and repeat.report.details == first.details
        [(other, created)] = store.add([parse_report(report("k"), "vnfm-2", NOW)])
        assert created and other.id != first.id
        assert store.count() == 2


def test_the_outbox_keeps_its_schema_in_the_same_file(db: str) -> None:
    with Outbox(db) as box:
        box.append("e1", "{}")
    with ReportStore(db) as store:
        store.add([parse_report(report(), "mano", NOW)])
    with Outbox(db) as box:
        assert [r.event_id for r in box.read("events", 0)] == ["e1"]
        assert box.db.execute("PRAGMA user_version").fetchone()[0] == 1


def test_resolve_pending_and_observed_since(db: str) -> None:
    with ReportStore(db) as store:
        added = store.add(
            [
                parse_report(report(str(n), observedTime=rfc3339(NOW - 100 + n)), "m", NOW)
                for n in range(5)
            ]
        )
        ids = [stored.id for stored, _ in added]
        assert store.resolve(ids[1], host="compute-3", state="resolved", reason="host down")
        assert store.resolve(ids[1], physnet="physnet1", state="resolved", reason="and its link")
        assert not store.resolve("nope", state="unresolved", reason="")
        with pytest.raises(ValueError, match="state"):
            store.resolve(ids[0], state="done", reason="")
        resolved = store.get(ids[1])
        assert resolved is not None
        assert (resolved.host, resolved.physnet, resolved.resolution) == (
            "compute-3",
            "physnet1",
            "resolved",
        )
        assert resolved.as_resource()["resolution"]["reason"] == "and its link"
        assert [s.id for s in store.pending(10)] == [ids[0], *ids[2:]]
        assert [s.id for s in store.observed_since(NOW - 97)] == ids[3:]
        assert [s.seq for s in store.after(2, 2)] == [3, 4]


def test_the_writer_groups_commits_and_calls_back(db: str) -> None:
    calls = []
    writer = ReportWriter(db, on_stored=lambda: calls.append(1))
    try:
        futures = [writer.submit([parse_report(report(f"{n}"), "m", NOW)]) for n in range(50)]
        assert all(f.result(10)[0][1] for f in futures)
        repeat = writer.add([parse_report(report("7"), "m", NOW)])
        assert not repeat[0][1]
    finally:
        writer.close()
    assert 1 <= len(calls) <= 50  # once per commit that stored something new
    connection = sqlite3.connect(db)  # a fresh connection: it is on disk
    assert connection.execute("SELECT count(*) FROM vnf_reports").fetchone()[0] == 50
    connection.close()


def test_the_rate_limiter_is_a_token_bucket() -> None:
    now = [0.0]
    limiter = RateLimiter(10, 5, clock=lambda: now[0])
    assert limiter.take("a", 5) is None
    wait = limiter.take("a", 1)
    assert wait is not None and wait == pytest.approx(0.1) and retry_after(wait) == "1"
    assert retry_after(1.01) == "2"
    assert limiter.take("b", 1) is None  # per client
    now[0] = 0.5
    assert limiter.take("a", 5) is None
    assert limiter.take("a", 50) == pytest.approx(0.5)  # capped at the burst
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(0, 5)


# --- the API --------------------------------------------------------------------------


class Api:
    """A keep-alive client of one server."""

    def __init__(self, server: ApiServer, token: str | None) -> None:
        self.server = server
        self.token = token
        self.connection = http.client.HTTPConnection(
            "127.0.0.1", server.server_address[1], timeout=30
        )

    def __call__(
        self, method: str, path: str, body: object = None, **headers: str
    ) -> tuple[int, dict[str, str], Any]:
        sent = {"Content-Type": "application/json", **headers}
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        self.connection.request(method, path, body=data, headers=sent)
        response = self.connection.getresponse()
        payload = response.read()
        return response.status, dict(response.getheaders()), json.loads(payload or b"null")


@pytest.fixture
def subscriptions(tmp_path: Path) -> str:
    return str(tmp_path / "subscriptions.db")


@pytest.fixture
def tokens(subscriptions: str) -> dict[str, str]:
    with SubscriptionStore(subscriptions) as store:
        return {name: store.add_token(name) for name in ("mano", "vnfm-2")}


def serve(subscriptions: str, **options: Any) -> Iterator[ApiServer]:
    yield from serving(ApiServer("127.0.0.1", 0, store_path=subscriptions, **options))


@pytest.fixture
def woken() -> threading.Event:
    return threading.Event()


@pytest.fixture
def server(
    subscriptions: str, tokens: dict[str, str], db: str, woken: threading.Event
) -> Iterator[ApiServer]:
    yield from serve(subscriptions, reports_path=db, on_reports=woken.set)


@pytest.fixture
def api(server: ApiServer, tokens: dict[str, str]) -> Api:
    return Api(server, tokens["mano"])


def test_post_is_durable_idempotent_and_per_client(
    api: Api, server: ApiServer, tokens: dict[str, str], db: str, woken: threading.Event
) -> None:
    status, headers, created = api("POST", PATH, report("same"))
    assert status == 201 and headers["Location"] == f"{server.api_base}{PATH}/{created['id']}"
    assert created["resolution"] == {"state": "pending"} and created["seq"] == 1
    assert woken.wait(5)
    connection = sqlite3.connect(db)  # answered 201: in the file for a fresh connection
    row = connection.execute("SELECT id, client FROM vnf_reports").fetchall()
    connection.close()
    assert row == [(created["id"], "mano")]
    status, _, repeated = api("POST", PATH, report("same", details="changed"))
    assert (status, repeated) == (200, created)
    status, _, other = Api(server, tokens["vnfm-2"])("POST", PATH, report("same"))
    assert status == 201 and other["id"] != created["id"]
    headerless = {k: v for k, v in report().items() if k != "idempotencyKey"}
    assert api("POST", PATH, headerless, **{"Idempotency-Key": "h1"})[0] == 201
    status, _, read = api("GET", f"{PATH}/{created['id']}")
    assert (status, read) == (200, created)


def test_every_report_route_needs_a_token(server: ApiServer) -> None:
    for token in (None, "hakit_wrong"):
        anonymous = Api(server, token)
        for method, path in (
            ("POST", PATH),
            ("GET", PATH),
            ("GET", f"{PATH}/x"),
            ("GET", "/vnffm/v1/correlations"),
        ):
            status, headers, problem = anonymous(method, path, report())
            assert (status, problem["status"]) == (401, 401), (method, path)
            assert headers["WWW-Authenticate"] == 'Bearer realm="hakit"'


def test_a_client_over_its_rate_gets_429_then_is_let_in(
    subscriptions: str, tokens: dict[str, str], db: str
) -> None:
    """The bucket counts reports: a batch of 3 empties it, 1 a second comes back."""
    for server in serve(subscriptions, reports_path=db, report_rate=1, report_burst=3):
        api = Api(server, tokens["mano"])
        assert api("POST", PATH, [report(f"{n}") for n in range(3)])[0] == 200
        status, headers, problem = api("POST", PATH, report("3"))
        assert status == 429 and problem["status"] == 429
        assert (
            headers["Retry-After"] == "1" and headers["Content-Type"] == "application/problem+json"
        )
        assert Api(server, tokens["vnfm-2"])("POST", PATH, report("3"))[0] == 201
        time.sleep(int(headers["Retry-After"]))
        assert api("POST", PATH, report("3"))[0] == 201


def test_a_batch_is_all_or_nothing(api: Api, db: str) -> None:
    batch = [report(f"b{n}") for n in range(100)]
    status, _, answer = api("POST", PATH, batch)
    assert status == 200 and answer["created"] == 100 and len(answer["reports"]) == 100
    status, _, again = api("POST", PATH, batch)
    assert (status, again["created"]) == (200, 0) and again["reports"] == answer["reports"]
    broken = [report(f"c{n}") for n in range(10)]
    broken[3]["errorClass"] = "power"
    broken[7]["resource"] = {"type": "server"}
    status, _, problem = api("POST", PATH, broken)
    assert status == 400 and "reports[3]: errorClass" in problem["detail"]
    assert "reports[7]: resource.id" in problem["detail"] and "reports[4]" not in problem["detail"]
    assert api("POST", PATH, [report(f"d{n}") for n in range(101)])[0] == 400
    assert api("POST", PATH, [])[0] == 400
    with ReportStore(db) as store:
        assert store.count() == 100


def test_reports_page_after_a_sequence_number(api: Api) -> None:
    api("POST", PATH, [report(f"p{n}") for n in range(25)])
    status, _, page = api("GET", f"{PATH}?after=10&limit=5")
    assert status == 200 and [r["seq"] for r in page] == [11, 12, 13, 14, 15]
    assert len(api("GET", PATH)[2]) == 25 and api("GET", f"{PATH}?after=25")[2] == []
    for bad in ("limit=0", "limit=1001", "after=-1", "after=x", f"after={2**64}"):
        assert api("GET", f"{PATH}?{bad}")[0] == 400, bad
    assert api("GET", f"{PATH}/nope")[0] == 404
    assert api("DELETE", f"{PATH}/nope")[1]["Allow"] == "GET"
    status, _, correlations = api("GET", "/vnffm/v1/correlations")
    assert (status, correlations) == (200, [])
    assert api("GET", "/vnffm/v1/correlations/c1")[0] == 404


def test_bad_bodies_are_problems_not_500s(api: Api) -> None:
    for body in (None, "text", 5, {"vnfInstanceId": 1}):
        status, headers, problem = api("POST", PATH, body)
        assert status == 400 and headers["Content-Type"] == "application/problem+json", body
    headers = {"Authorization": f"Bearer {api.token}"}
    for raw in (b"{", b"[" * 40 + b"]" * 40, b'{"a": NaN'):
        api.connection.request("POST", PATH, body=raw, headers=headers)
        response = api.connection.getresponse()
        assert (response.status, json.loads(response.read())["status"]) == (400, 400), raw
    head = (  # the body is never sent: the answer comes before it, and closes
        f"POST {PATH} HTTP/1.1\r\nAuthorization: Bearer {api.token}\r\n"
        "Content-Length: 600000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", api.server.server_address[1]), 10) as sock:
        sock.sendall(head.encode())
        answer = sock.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 413") and b"524288 bytes" in answer


def test_report_routes_are_absent_when_disabled(subscriptions: str, tokens: dict[str, str]) -> None:
    for server in serve(subscriptions, reports_path=None):
        api = Api(server, tokens["mano"])
        assert api("POST", PATH, report())[0] == 404
        assert api("GET", "/vnffm/v1/correlations")[0] == 404
        assert api("GET", "/vnffm/v1/subscriptions")[0] == 200


def test_twenty_threads_lose_nothing_and_store_no_duplicate(
    api: Api, server: ApiServer, db: str
) -> None:
    """Each thread posts its own keys and a key every thread shares."""
    statuses: list[int] = []
    ids: set[str] = set()
    lock = threading.Lock()

    def post(thread: int) -> None:
        client = Api(server, api.token)
        for n in range(15):
            key = "shared" if n == 7 else f"t{thread}-{n}"
            status, _, body = client("POST", PATH, report(key))
            with lock:
                statuses.append(status)
                ids.add(body["id"])

    threads = [threading.Thread(target=post, args=(t,)) for t in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(201) == 20 * 14 + 1 and statuses.count(200) == 19
    with ReportStore(db) as store:
        stored = store.after(0, 1000)
    assert len(stored) == len(ids) == 281
    assert len({(s.report.client, s.report.idempotency_key) for s in stored}) == 281
