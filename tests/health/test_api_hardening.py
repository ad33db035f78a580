"""The subscriptions API under hostile input, over real sockets on 127.0.0.1: no 500 for
a bad request, a refused body never read as a next request, idle connections let go,
callbacks that could probe the network refused with one generic answer, HTTPS with
client certificates, plain HTTP only on loopback, and a fuzz run against its OpenAPI."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from hakit.resource_agents.health.api import ApiConfigError, ApiServer, Tls
from hakit.resource_agents.health.callbacks import REFUSED
from hakit.resource_agents.health.outbox import StoreError
from hakit.resource_agents.health.subscriptions import SubscriptionError, SubscriptionStore
from tests.health.conftest import Receiver

PATH = "/vnffm/v1/subscriptions"


def serving(server: ApiServer) -> Iterator[ApiServer]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "subscriptions.db"


@pytest.fixture
def token(store: Path) -> str:
    with SubscriptionStore(str(store)) as subscriptions:
        return subscriptions.add_token("mano")


@pytest.fixture
def server(store: Path, token: str) -> Iterator[ApiServer]:
    yield from serving(
        ApiServer("127.0.0.1", 0, store_path=str(store), callback_timeout=2.0, read_timeout=1.0)
    )


def raw(server: ApiServer, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send bytes, read until the server closes the connection (or `wait` passes)."""
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=wait) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def request(
    server: ApiServer, method: str, path: str, body: object, token: str
) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request(method, path, body=data, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, json.loads(payload) if payload else {}


def test_deeply_nested_json_is_a_4xx(server: ApiServer, token: str) -> None:
    status, problem = request(server, "POST", PATH, b"[" * 32000 + b"]" * 32000, token)
    assert status == 400 and "nests deeper" in problem["detail"]
    status, _ = request(server, "POST", PATH, b"[" * 60000 + b"]" * 60000, token)
    assert status == 413


@pytest.mark.parametrize("length", ["²", "-1", "1e3", "0x10", "5, 5"])
def test_a_bad_content_length_is_a_400_and_closes(server: ApiServer, length: str) -> None:
    answer = raw(server, f"GET {PATH} HTTP/1.1\r\nContent-Length: {length}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 400") and b"Connection: close" in answer


def test_a_body_that_does_not_come_is_a_408_not_a_500(server: ApiServer) -> None:
    answer = raw(server, f"POST {PATH} HTTP/1.1\r\nContent-Length: 5\r\n\r\nab".encode())
    assert answer.startswith(b"HTTP/1.1 408") and b"Connection: close" in answer


def test_a_refused_body_is_never_read_as_a_second_request(
    server: ApiServer, token: str, receiver: Receiver
) -> None:
    """A 413 closes the connection: an authenticated DELETE hidden in the unread body
    is not executed."""
    with SubscriptionStore(server.store_path) as subscriptions:
        from hakit.resource_agents.health.subscriptions import parse_request

        victim = subscriptions.create(parse_request({"callbackUri": receiver.uri}))
    smuggled = (
        f"DELETE {PATH}/{victim.id} HTTP/1.1\r\nAuthorization: Bearer {token}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    head = (
        f"POST {PATH} HTTP/1.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {10**6}\r\n\r\n"
    ).encode()
    answer = raw(server, head + smuggled)
    assert answer.count(b"HTTP/1.1 ") == 1 and answer.startswith(b"HTTP/1.1 413")
    with SubscriptionStore(server.store_path) as subscriptions:
        assert subscriptions.get(victim.id) is not None


def test_an_idle_connection_is_let_go(server: ApiServer) -> None:
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as idle:
        assert idle.recv(1) == b""  # closed by the server, not by our timeout
    assert time.monotonic() - began < 9


@pytest.mark.parametrize(
    "uri",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[fe80::1]:80/",
        "http://0.0.0.0:22/",
        "http://0:22/",
        "http://2130706433:22/",  # 127.0.0.1, decimal
        "http://0x7f000001:22/",
        "http://127.1:22/",
        "http://10.0.0.1:22/",  # private, not allowed here
        "http://192.168.1.1/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::1]:22/",
        "http://224.0.0.1/",
    ],
)
def test_callbacks_that_could_probe_the_network_are_refused_alike(
    server: ApiServer, token: str, uri: str
) -> None:
    status, problem = request(server, "POST", PATH, {"callbackUri": uri}, token)
    assert (status, problem["detail"]) == (422, REFUSED)


def test_private_callbacks_pass_only_when_allowed(
    store: Path, token: str, receiver: Receiver
) -> None:
    for allowed, expected in (([], 422), (["127.0.0.0/8"], 201)):
        for api in serving(
            ApiServer("127.0.0.1", 0, store_path=str(store), allow_callbacks=allowed)
        ):
            status, _ = request(api, "POST", PATH, {"callbackUri": receiver.uri}, token)
            assert status == expected, allowed


def test_the_callback_test_does_not_say_what_it_found(server: ApiServer, token: str) -> None:
    """Refused, timed out or a wrong status: the same answer (no port scanner)."""
    for api in serving(
        ApiServer("127.0.0.1", 0, store_path=server.store_path, allow_callbacks=["127.0.0.0/8"])
    ):
        closed = request(api, "POST", PATH, {"callbackUri": "http://127.0.0.1:9/"}, token)
        wrong = request(
            api, "POST", PATH, {"callbackUri": f"http://127.0.0.1:{api.server_address[1]}/x"}, token
        )
    assert closed == wrong == (422, {**closed[1]}) and "127.0.0.1" not in closed[1]["detail"]


def test_an_unusable_store_or_address_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "not.db").write_text("hello")
    with pytest.raises(StoreError):
        ApiServer("127.0.0.1", 0, store_path=str(tmp_path / "not.db"))
    with pytest.raises(ApiConfigError, match="plain HTTP only on loopback"):
        ApiServer("0.0.0.0", 0, store_path=str(tmp_path / "s.db"))  # noqa: S104
    with pytest.raises(ValueError, match="not a network"):
        ApiServer("127.0.0.1", 0, store_path=str(tmp_path / "s.db"), allow_callbacks=["ten"])


@pytest.mark.parametrize("name", ["a\nb", "esc\x1b[31m", "x" * 100_000, "", "-leading", "sp ace"])
def test_token_names_are_plain(tmp_path: Path, name: str) -> None:
    with (
        SubscriptionStore(str(tmp_path / "s.db")) as subscriptions,
        pytest.raises(SubscriptionError),
    ):
        subscriptions.add_token(name)


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1, a client certificate (real openssl)."""
    d = tmp_path_factory.mktemp("pki")
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=hakit test CA",
        "-keyout",
        f"{d}/ca.key",
        "-out",
        f"{d}/ca.pem",
    )
    for name, extra in (
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{d}/{name}.key",
            "-out",
            f"{d}/{name}.csr",
        )
        (d / f"{name}.ext").write_text(extra + "\n")
        openssl(
            "x509",
            "-req",
            "-in",
            f"{d}/{name}.csr",
            "-CA",
            f"{d}/ca.pem",
            "-CAkey",
            f"{d}/ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            f"{d}/{name}.ext",
            "-out",
            f"{d}/{name}.pem",
        )
    return d


def test_https_with_client_certificates(pki: Path, store: Path, token: str) -> None:
    tls = Tls(str(pki / "server.pem"), str(pki / "server.key"), str(pki / "ca.pem"))
    for api in serving(ApiServer("127.0.0.1", 0, store_path=str(store), tls=tls)):
        port = api.server_address[1]
        assert api.api_base.startswith("https://")
        context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        context.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
        connection.request("GET", PATH, headers={"Authorization": f"Bearer {token}"})
        assert connection.getresponse().status == 200
        connection.close()
        anonymous = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        refused = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=anonymous)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            refused.request("GET", PATH, headers={"Authorization": f"Bearer {token}"})
            refused.getresponse()
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            plain.request("GET", PATH)
            plain.getresponse()


def test_tls_may_serve_off_loopback(pki: Path, store: Path) -> None:
    tls = Tls(str(pki / "server.pem"), str(pki / "server.key"))
    for api in serving(ApiServer("0.0.0.0", 0, store_path=str(store), tls=tls)):  # noqa: S104
        assert api.api_base.startswith("https://")


@pytest.fixture
def fuzzed_api(store: Path, token: str) -> Iterator[tuple[schemathesis.BaseSchema, str]]:
    """The served OpenAPI document as a schemathesis schema, against a live server that
    resolves no name (the fuzzer's callback hosts never reach DNS)."""
    server = ApiServer(
        "127.0.0.1", 0, store_path=str(store), numeric_callbacks=True, callback_timeout=0.5
    )
    for api in serving(server):
        base = f"http://127.0.0.1:{api.server_address[1]}"
        connection = http.client.HTTPConnection("127.0.0.1", api.server_address[1], timeout=10)
        connection.request("GET", "/vnffm/v1/openapi.json")  # served without a token
        document = json.loads(connection.getresponse().read())
        connection.close()
        yield schemathesis.from_dict(document, base_url=base), token


fuzzed = schemathesis.from_pytest_fixture("fuzzed_schema")


@pytest.fixture
def fuzzed_schema(fuzzed_api: tuple[schemathesis.BaseSchema, str]) -> schemathesis.BaseSchema:
    return fuzzed_api[0]


@fuzzed.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_conforms_to_its_openapi_document(
    case: schemathesis.Case, fuzzed_api: tuple[schemathesis.BaseSchema, str]
) -> None:
    """Every answer to a generated request is documented, never a 5xx, of its shape."""
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzzed_api[1]}"})
