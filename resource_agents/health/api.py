"""The subscriptions API, shaped like SOL 003's VNF fault management interface.

    POST   /vnffm/v1/subscriptions        FmSubscriptionRequest → 201 FmSubscription
                                          (303 to the existing one for the same request)
    GET    /vnffm/v1/subscriptions        → 200 [FmSubscription]
    GET    /vnffm/v1/subscriptions/{id}   → 200 FmSubscription | 404
    DELETE /vnffm/v1/subscriptions/{id}   → 204 | 404

Every request needs `Authorization: Bearer <token>` (`hakit health tokens add`); errors
are ProblemDetails. Before a subscription is created its callback is tested with a
signed GET that must answer 204, as SOL 003 asks. Binds to 127.0.0.1 unless told.
"""

from __future__ import annotations

import json
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hakit.resource_agents.health import subscriptions
from hakit.resource_agents.health.constants import API_ADDRESS, API_PORT
from hakit.resource_agents.health.sol003 import FM_PATH
from hakit.resource_agents.health.subscriptions import (
    CallbackTestFailed,
    SubscriptionStore,
    parse_request,
    subscribe,
)

DEFAULT_ADDRESS = API_ADDRESS
DEFAULT_PORT = API_PORT
MAX_BODY = 64 * 1024
COLLECTION = f"{FM_PATH}/subscriptions"


class ApiServer(ThreadingHTTPServer):
    """The API on one address; each request opens the store afresh (thread-safe)."""

    daemon_threads = True

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        port: int = DEFAULT_PORT,
        *,
        store_path: str = subscriptions.DEFAULT_PATH,
        api_base: str | None = None,
        test_callbacks: bool = True,
        callback_timeout: float = 5.0,
    ) -> None:
        SubscriptionStore(store_path).close()  # an unusable store fails here, not per request
        super().__init__((address, port), Handler)
        self.store_path = store_path
        host, bound_port = self.server_address[:2]
        self.api_base = api_base or f"http://{host!s}:{bound_port}"
        self.test_callbacks = test_callbacks
        self.callback_timeout = callback_timeout

    def handle_error(self, request: object, client_address: object) -> None:
        """One line, never a traceback; a client that hung up is no error at all."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            return
        print(f"hakit health: a request failed: {error!r}", file=sys.stderr)


class Handler(BaseHTTPRequestHandler):
    """One request: authenticate, route, answer JSON or ProblemDetails."""

    server: ApiServer
    server_version = "hakit-health"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the publisher's log is for deliveries."""

    def _handle(self, method: str) -> None:
        try:
            body = self._body()
            with SubscriptionStore(self.server.store_path) as store:
                if not self._authenticated(store):
                    self._problem(
                        HTTPStatus.UNAUTHORIZED,
                        "a valid bearer token is required",
                        {"WWW-Authenticate": 'Bearer realm="hakit"'},
                    )
                    return
                self._route(method, body, store)
        except _Refused as refusal:
            self._problem(refusal.status, refusal.detail, refusal.headers)
        except Exception as error:  # never a traceback to the client or the terminal
            self._problem(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}: {error}")

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit():
            raise _Refused(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
        if int(length) > MAX_BODY:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the limit is {MAX_BODY} bytes")
        return self.rfile.read(int(length))

    def _authenticated(self, store: SubscriptionStore) -> bool:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        return (
            scheme.lower() == "bearer"
            and bool(token)
            and store.token_name(token.strip()) is not None
        )

    def _route(self, method: str, body: bytes, store: SubscriptionStore) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == COLLECTION:
            if method == "POST":
                self._create(body, store)
            elif method == "GET":
                self._json(HTTPStatus.OK, [s.resource(self.server.api_base) for s in store.all()])
            else:
                raise _Refused(
                    HTTPStatus.METHOD_NOT_ALLOWED, f"{method} {path}", {"Allow": "GET, POST"}
                )
            return
        prefix, _, subscription_id = path.rpartition("/")
        if prefix != COLLECTION or not subscription_id:
            raise _Refused(HTTPStatus.NOT_FOUND, f"no resource at {path}")
        subscription = store.get(subscription_id)
        if subscription is None:
            raise _Refused(HTTPStatus.NOT_FOUND, f"no subscription {subscription_id}")
        if method == "GET":
            self._json(HTTPStatus.OK, subscription.resource(self.server.api_base))
        elif method == "DELETE":
            store.delete(subscription_id)
            self._send(HTTPStatus.NO_CONTENT, b"", {})
        else:
            raise _Refused(
                HTTPStatus.METHOD_NOT_ALLOWED, f"{method} {path}", {"Allow": "GET, DELETE"}
            )

    def _create(self, body: bytes, store: SubscriptionStore) -> None:
        try:
            request = parse_request(json.loads(body or b"null"))
            timeout = self.server.callback_timeout if self.server.test_callbacks else None
            subscription, created = subscribe(store, request, test_timeout=timeout)
        except CallbackTestFailed as error:
            raise _Refused(HTTPStatus.UNPROCESSABLE_ENTITY, str(error)) from None
        except ValueError as error:  # SubscriptionError, or JSON that does not parse
            raise _Refused(HTTPStatus.BAD_REQUEST, str(error)) from None
        resource = subscription.resource(self.server.api_base)
        location = {"Location": resource["_links"]["self"]["href"]}
        if not created:
            self._send(HTTPStatus.SEE_OTHER, b"", location)
            return
        if request.secret is None:  # made here: shown this once
            resource["authentication"] = subscriptions.hmac_authentication(subscription.secret)
        self._json(HTTPStatus.CREATED, resource, location)

    def _json(
        self, status: HTTPStatus, data: object, headers: dict[str, str] | None = None
    ) -> None:
        self._send(
            status,
            json.dumps(data, sort_keys=True).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    def _problem(
        self, status: HTTPStatus, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        problem = {
            "type": "about:blank",
            "title": status.phrase,
            "status": int(status),
            "detail": detail,
        }
        self._send(
            status,
            json.dumps(problem).encode(),
            {"Content-Type": "application/problem+json", **(headers or {})},
        )

    def _send(self, status: HTTPStatus, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


class _Refused(Exception):
    """An error answer: status, detail, extra headers."""

    def __init__(self, status: HTTPStatus, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
