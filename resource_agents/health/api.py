"""The subscriptions API, shaped like SOL 003's VNF fault management interface.

    POST   /vnffm/v1/subscriptions        FmSubscriptionRequest → 201 FmSubscription
                                          (303 to the existing one for the same request)
    GET    /vnffm/v1/subscriptions        → 200 [FmSubscription]
    GET    /vnffm/v1/subscriptions/{id}   → 200 FmSubscription | 404
    DELETE /vnffm/v1/subscriptions/{id}   → 204 | 404

    GET    /vnffm/v1/openapi.json         → 200 this API's OpenAPI document (no token)

    /vnffm/v1/error-reports, /vnffm/v1/correlations: VNF error reports (reports_api.py)

Every other request needs `Authorization: Bearer <token>` (`hakit health tokens add`);
errors are ProblemDetails. A callbackUri must pass the callback policy (callbacks.py)
and answer a signed test GET with 204, as SOL 003 asks. Binds to 127.0.0.1 unless told;
HTTPS with a certificate (and optional client-certificate verification), plain HTTP only
on loopback or when explicitly allowed. Each connection has a read timeout; a refused
body is never read as a next request (the connection closes).
"""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hakit.resource_agents.health import (
    callbacks,
    openapi,
    reports_api,
    subscriptions,
    vnf_reports,
)
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
MAX_JSON_DEPTH = 32
READ_TIMEOUT = 15.0  # seconds a connection may sit idle or send slowly
COLLECTION = f"{FM_PATH}/subscriptions"
OPENAPI_PATH = f"{FM_PATH}/openapi.json"


class ApiConfigError(ValueError):
    """A server that must not start as configured (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Tls:
    """HTTPS: the server's certificate and key, and the CA that client certificates must
    chain to (None: no client certificate asked)."""

    cert: str
    key: str
    client_ca: str | None = None


class ApiServer(ThreadingHTTPServer):
    """The API on one address; each connection opens the store at its first request and
    keeps it for its keep-alive requests (thread-safe)."""

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
        allow_callbacks: Sequence[str] = (),
        tls: Tls | None = None,
        plain_http: bool = False,
        numeric_callbacks: bool = False,
        read_timeout: float = READ_TIMEOUT,
        reports_path: str | None | reports_api.Default = reports_api.BESIDE_STORE,
        report_rate: float = vnf_reports.DEFAULT_RATE,
        report_burst: float = vnf_reports.DEFAULT_BURST,
        on_reports: Callable[[], None] | None = None,
    ) -> None:
        """`reports_path`: the error-report store (default: outbox.db beside the
        subscription store; None: no report routes); `on_reports` is called after new
        reports are on disk."""
        if tls is None and not plain_http and not loopback(address):
            raise ApiConfigError(
                f"{address}: plain HTTP only on loopback; give a certificate (--tls-cert, "
                "--tls-key) or allow it explicitly (--plain-http)"
            )
        self.allow_callbacks = callbacks.networks(allow_callbacks)
        SubscriptionStore(store_path).close()  # an unusable store fails here, not per request
        self.reports = reports_api.service(
            reports_path, store_path, rate=report_rate, burst=report_burst, on_reports=on_reports
        )
        try:
            super().__init__((address, port), Handler)
            if tls is not None:
                self.socket = _tls_context(tls).wrap_socket(self.socket, server_side=True)
        except BaseException:
            if self.reports is not None:
                self.reports.close()
            raise
        self.store_path = store_path
        host, bound_port = self.server_address[:2]
        scheme = "https" if tls else "http"
        self.api_base = api_base or f"{scheme}://{host!s}:{bound_port}"
        self.test_callbacks = test_callbacks
        self.callback_timeout = callback_timeout
        self.numeric_callbacks = numeric_callbacks
        self.read_timeout = read_timeout

    def server_close(self) -> None:
        super().server_close()
        if self.reports is not None:
            self.reports.close()

    def handle_error(self, request: object, client_address: object) -> None:
        """One line, never a traceback; a client that hung up is no error at all."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            return
        print(f"hakit health: a request failed: {error!r}", file=sys.stderr)


def loopback(address: str) -> bool:
    """Whether `address` is a loopback address (or localhost)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _tls_context(tls: Tls) -> Any:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert, tls.key)
        if tls.client_ca:
            context.load_verify_locations(tls.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as error:
        raise ApiConfigError(f"TLS: {error}") from None
    return context


class Handler(BaseHTTPRequestHandler):
    """One request: authenticate, route, answer JSON or ProblemDetails."""

    server: ApiServer
    server_version = "hakit-health"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once on keep-alive

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.read_timeout)  # idle or slow: let go
        self._store: SubscriptionStore | None = None

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._store is not None:
                self._store.close()

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the publisher's log is for deliveries."""

    def _handle(self, method: str) -> None:
        if method == "GET" and self.path.split("?", 1)[0] == OPENAPI_PATH:
            self._json(HTTPStatus.OK, openapi.document())
            return
        try:
            body = self._body()
            if self._store is None:  # opening costs more than a request: once a connection
                self._store = SubscriptionStore(self.server.store_path)
            client = self._client(self._store)
            if client is None:
                self._problem(
                    HTTPStatus.UNAUTHORIZED,
                    "a valid bearer token is required",
                    {"WWW-Authenticate": 'Bearer realm="hakit"'},
                )
                return
            self._route(method, body, self._store, client)
        except _Refused as refusal:
            self._problem(refusal.status, refusal.detail, refusal.headers)
        except Exception as error:  # never a traceback to the client or the terminal
            self.close_connection = True
            self._problem(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}: {error}")

    def _body(self) -> bytes:
        """The body (Content-Length only); a refusal closes the connection, so an unread
        body is never taken for a next request."""
        length = self.headers.get("Content-Length") or "0"
        if "Transfer-Encoding" in self.headers:
            self._refuse_and_close(HTTPStatus.BAD_REQUEST, "Transfer-Encoding is not supported")
        if (
            not (length.isascii() and length.isdigit())
            or len(self.headers.get_all("Content-Length") or []) > 1
        ):
            self._refuse_and_close(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
        limit = reports_api.MAX_BODY if reports_api.owns(self._path()) else MAX_BODY
        if int(length) > limit:
            self._refuse_and_close(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the limit is {limit} bytes"
            )
        try:
            body = self.rfile.read(int(length))
        except OSError:  # the read timeout: a slow or stalled client
            body = b""
        if len(body) < int(length):
            self._refuse_and_close(HTTPStatus.REQUEST_TIMEOUT, "the body did not arrive")
        return body

    def _refuse_and_close(self, status: HTTPStatus, detail: str) -> None:
        self.close_connection = True
        raise _Refused(status, detail, {"Connection": "close"})

    def _client(self, store: SubscriptionStore) -> str | None:
        """The name of the request's valid bearer token, else None."""
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return store.token_name(token.strip())

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def _route(self, method: str, body: bytes, store: SubscriptionStore, client: str) -> None:
        path = self._path()
        if reports_api.owns(path):
            query = self.path.partition("?")[2]
            key = self.headers.get("Idempotency-Key")
            request = reports_api.Request(
                method, path, query, body, client, key, self.server.api_base
            )
            answer = reports_api.handle(self.server.reports, request, _json_body)
            if answer.problem is not None:
                self._problem(answer.status, answer.problem, answer.headers)
            else:
                self._json(answer.status, answer.data, answer.headers)
            return
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
            data = _json_body(body)
            request = parse_request(data)
            callbacks.check(
                request.callback_uri,
                self.server.allow_callbacks,
                numeric_only=self.server.numeric_callbacks,
            )
            timeout = self.server.callback_timeout if self.server.test_callbacks else None
            subscription, created = subscribe(store, request, test_timeout=timeout)
        except callbacks.CallbackRefused as error:
            raise _Refused(HTTPStatus.UNPROCESSABLE_ENTITY, str(error)) from None
        except CallbackTestFailed:  # generic: what was found there is not the caller's
            raise _Refused(
                HTTPStatus.UNPROCESSABLE_ENTITY, "callbackUri did not answer the test GET with 204"
            ) from None
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


def _json_body(body: bytes) -> object:
    """The parsed body; ValueError when it is not JSON or nests deeper than MAX_JSON_DEPTH."""
    depth = deepest = 0
    quoted = escaped = False
    openers = body.count(b"[") + body.count(b"{")  # too few to nest too deep: no scan
    for byte in body if openers > MAX_JSON_DEPTH else b"":  # counted before json recurses
        if quoted:
            escaped, quoted = (False, True) if escaped else (byte == 0x5C, byte != 0x22)
        elif byte == 0x22:
            quoted = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise ValueError(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(body or b"null")
    except RecursionError:
        raise ValueError("the body nests too deeply") from None


class _Refused(Exception):
    """An error answer: status, detail, extra headers."""

    def __init__(self, status: HTTPStatus, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
