"""The subscriptions API over real HTTP on 127.0.0.1: bearer tokens, SOL 003 shapes, the
callback test, and only hashes of tokens on disk."""

from __future__ import annotations

import http.client
import inspect
import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hakit.resource_agents.health.api import DEFAULT_ADDRESS, ApiServer
from hakit.resource_agents.health.subscriptions import SubscriptionStore
from tests.health.conftest import Receiver


class Client:
    def __init__(self, server: ApiServer) -> None:
        self.port = server.server_address[1]

    def __call__(
        self,
        method: str,
        path: str,
        body: object = None,
        token: str | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return (
            response.status,
            dict(response.getheaders()),
            json.loads(payload) if payload else None,
        )


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "subscriptions.db"


@pytest.fixture
def token(store_path: Path) -> str:
    with SubscriptionStore(str(store_path)) as store:
        return store.add_token("mano")


@pytest.fixture
def api(store_path: Path) -> Iterator[Client]:
    server = ApiServer(
        DEFAULT_ADDRESS,
        0,
        store_path=str(store_path),
        callback_timeout=2.0,
        allow_callbacks=["127.0.0.0/8"],  # the receivers run on loopback
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Client(server)
    finally:
        server.shutdown()
        server.server_close()


PATH = "/vnffm/v1/subscriptions"


def test_no_token_or_a_wrong_one_is_refused(api: Client, token: str) -> None:
    for method, path in (
        ("GET", PATH),
        ("POST", PATH),
        ("GET", f"{PATH}/x"),
        ("DELETE", f"{PATH}/x"),
    ):
        for bad in (None, "", "hakit_wrong", token + "x"):
            status, headers, problem = api(
                method, path, {"callbackUri": "http://127.0.0.1:1/"}, bad
            )
            assert status == 401, (method, path, bad)
            assert headers["WWW-Authenticate"] == 'Bearer realm="hakit"'
            assert headers["Content-Type"] == "application/problem+json"
            assert problem["status"] == 401
    assert api("GET", PATH, token=token)[0] == 200


def test_subscribe_read_repeat_delete(api: Client, token: str, receiver: Receiver) -> None:
    request = {
        "callbackUri": receiver.uri,
        "filter": {"notificationTypes": ["AlarmNotification"], "hosts": ["node2"]},
    }
    status, headers, created = api("POST", PATH, request, token)
    assert status == 201
    subscription_id = created["id"]
    assert headers["Location"].endswith(f"{PATH}/{subscription_id}")
    assert created["callbackUri"] == receiver.uri and created["filter"] == request["filter"]
    secret = created["authentication"]["paramsHmac"]["secret"]
    assert created["authentication"]["authType"] == ["HMAC_SHA256"] and len(secret) >= 32
    status, _, read = api("GET", f"{PATH}/{subscription_id}", token=token)
    assert status == 200 and "authentication" not in read and secret not in json.dumps(read)
    assert api("GET", PATH, token=token)[2] == [read]
    status, headers, _ = api("POST", PATH, request, token)
    assert status == 303 and headers["Location"] == read["_links"]["self"]["href"]
    assert api("DELETE", f"{PATH}/{subscription_id}", token=token)[0] == 204
    assert api("GET", f"{PATH}/{subscription_id}", token=token)[0] == 404
    assert api("DELETE", f"{PATH}/{subscription_id}", token=token)[0] == 404


def test_a_given_secret_is_used_and_not_echoed(
    api: Client, token: str, receiver: Receiver, store_path: Path
) -> None:
    secret = secrets.token_urlsafe(24)
    request = {
        "callbackUri": receiver.uri,
        "authentication": {"authType": ["HMAC_SHA256"], "paramsHmac": {"secret": secret}},
    }
    status, _, created = api("POST", PATH, request, token)
    assert status == 201 and "authentication" not in created
    with SubscriptionStore(str(store_path)) as store:
        subscription = store.get(created["id"])
    assert subscription is not None and subscription.secret == secret


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"{not json", 400, "Expecting property name"),
        ({"filter": {}}, 400, "callbackUri is required"),
        ({"callbackUri": "ftp://x/"}, 400, "callbackUri must be an http or https URL"),
        (
            {"callbackUri": "http://127.0.0.1:9/", "filter": {"eventTypes": ["X"]}},
            400,
            "filter.eventTypes is not supported",
        ),
        (
            {"callbackUri": "http://127.0.0.1:9/", "filter": {"perceivedSeverities": ["LOUD"]}},
            400,
            "filter.perceivedSeverities: 'LOUD' is not one of",
        ),
        (
            {"callbackUri": "http://127.0.0.1:9/", "authentication": {"authType": ["BASIC"]}},
            400,
            'authentication.authType must be ["HMAC_SHA256"]',
        ),
        (
            {"callbackUri": "http://127.0.0.1:9/"},
            422,
            "callbackUri did not answer the test GET with 204",
        ),
    ],
)
def test_bad_requests_are_problems(
    api: Client, token: str, body: object, status: int, detail: str
) -> None:
    got, headers, problem = api(
        "POST",
        PATH,
        None if isinstance(body, bytes) else body,
        token,
        raw=body if isinstance(body, bytes) else None,
    )
    assert (got, problem["status"]) == (status, status)
    assert headers["Content-Type"] == "application/problem+json"
    assert problem["detail"].startswith(detail), problem


def test_a_callback_that_does_not_answer_204_is_refused(api: Client, token: str) -> None:
    status, _, problem = api(
        "POST", PATH, {"callbackUri": f"http://127.0.0.1:{api.port}/nowhere"}, token
    )
    assert (status, problem["detail"]) == (422, "callbackUri did not answer the test GET with 204")


def test_unknown_paths_and_methods(api: Client, token: str) -> None:
    assert api("GET", "/vnffm/v1/elsewhere", token=token)[0] == 404
    status, headers, _ = api("DELETE", PATH, token=token)
    assert status == 405 and headers["Allow"] == "GET, POST"


def test_only_token_hashes_are_stored(store_path: Path, token: str) -> None:
    assert token.encode() not in store_path.read_bytes()
    assert store_path.stat().st_mode & 0o777 == 0o600
    with SubscriptionStore(str(store_path)) as store:
        assert store.token_name(token) == "mano" and store.token_name("hakit_x") is None
        assert store.token_names() == ["mano"]
        assert store.delete_token("mano") and store.token_name(token) is None


def test_the_api_binds_to_loopback_by_default() -> None:
    assert DEFAULT_ADDRESS == "127.0.0.1"
    assert inspect.signature(ApiServer).parameters["address"].default == "127.0.0.1"
