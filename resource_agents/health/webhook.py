"""Signed HTTP requests to subscribers, and the check a receiver runs on them.

Every request carries `X-Hakit-Timestamp` (UNIX seconds) and `X-Hakit-Signature:
sha256=<hex>`, an HMAC-SHA256 with the subscription's secret over
`<timestamp>.<body>`; notifications also carry `Idempotency-Key` (the notification id,
the same on every retry). Requests go straight to the callback (http.client): no proxy
from the environment is used.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import time
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Hakit-Signature"
TIMESTAMP_HEADER = "X-Hakit-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_CLOCK_SKEW = 300.0


class DeliveryError(Exception):
    """The callback could not be reached, or answered with something other than HTTP."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signed: str,
    *,
    now: float | None = None,
    max_skew: float = MAX_CLOCK_SKEW,
) -> bool:
    """A receiver's check: the signature matches and the timestamp is recent."""
    try:
        age = abs((time.time() if now is None else now) - float(timestamp))
    except ValueError:
        return False
    return age <= max_skew and hmac.compare_digest(signature(secret, timestamp, body), signed)


def signed_headers(secret: str, body: bytes, idempotency_key: str | None = None) -> dict[str, str]:
    timestamp = str(int(time.time()))
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}
    if idempotency_key:
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    return headers


def check_callback_uri(uri: str) -> str | None:
    """Why `uri` cannot be a callback, or None when it can."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return "callbackUri must be an http or https URL"
    if not parts.hostname:
        return "callbackUri has no host"
    try:
        _ = parts.port
    except ValueError:
        return "callbackUri has an invalid port"
    return None


def request(method: str, uri: str, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
    """Send one request; the HTTP status. DeliveryError when there is no HTTP answer."""
    parts = urlsplit(uri)
    problem = check_callback_uri(uri)
    if problem or parts.hostname is None:
        raise DeliveryError(problem or "no host")
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        headers = {"Content-Type": "application/json", "Accept": "application/json", **headers}
        connection.request(method, target, body=body or None, headers=headers)
        response = connection.getresponse()
        response.read(65536)
        return response.status
    except (OSError, http.client.HTTPException) as error:
        raise DeliveryError(f"{method} {uri}: {error or type(error).__name__}") from None
    finally:
        connection.close()


def post_notification(
    uri: str, body: bytes, secret: str, notification_id: str, *, timeout: float
) -> int:
    return request(
        "POST", uri, body, signed_headers(secret, body, notification_id), timeout=timeout
    )


def probe(uri: str, secret: str, *, timeout: float) -> int:
    """SOL 003's test of a notification endpoint: a GET that must answer 204."""
    return request("GET", uri, b"", signed_headers(secret, b""), timeout=timeout)
