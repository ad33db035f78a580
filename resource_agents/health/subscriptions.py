"""SOL 003-shaped fault-management subscriptions and the API's bearer tokens.

A subscription has a callback URI, a filter (`notificationTypes`, `perceivedSeverities`
and, as a hakit extension, `hosts`) and the secret its notifications are signed with.
SOL 003's own authentication types (BASIC, OAUTH2_CLIENT_CREDENTIALS, TLS_CERT) are not
offered; the hakit type `HMAC_SHA256` takes `paramsHmac.secret`, or a secret is made and
returned once. Tokens for the API are stored only as SHA-256 hashes. The store is an
SQLite file readable by root only (it holds the signing secrets).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from hakit.resource_agents.health import webhook
from hakit.resource_agents.health.constants import (
    NOTIFICATION_TYPES,
    SEVERITIES,
    SUBSCRIPTIONS_PATH,
)
from hakit.resource_agents.health.outbox import Transaction, open_database
from hakit.resource_agents.health.sol003 import FM_PATH

DEFAULT_PATH = SUBSCRIPTIONS_PATH
HMAC_AUTH = "HMAC_SHA256"
MIN_SECRET_LENGTH = 16
TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
TOKEN_PREFIX = "hakit_"  # noqa: S105 — a prefix, not a password
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    callback_uri TEXT NOT NULL,
    filter TEXT NOT NULL,
    secret TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
"""
FILTER_KEYS = {
    "notificationTypes": NOTIFICATION_TYPES,
    "perceivedSeverities": SEVERITIES,
    "hosts": None,
}


class SubscriptionError(ValueError):
    """A subscription request that cannot be accepted; the message says why."""


class CallbackTestFailed(SubscriptionError):
    """The callback did not answer the test GET with 204."""


@dataclass(frozen=True)
class Filter:
    """Which notifications a subscriber gets; an empty list matches everything."""

    notification_types: tuple[str, ...] = ()
    perceived_severities: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()

    def matches(self, notification_type: str, severity: str, host: str) -> bool:
        return all(
            not wanted or value in wanted
            for value, wanted in (
                (notification_type, self.notification_types),
                (severity, self.perceived_severities),
                (host, self.hosts),
            )
        )

    def as_sol(self) -> dict[str, list[str]]:
        values = (self.notification_types, self.perceived_severities, self.hosts)
        return {key: list(value) for key, value in zip(FILTER_KEYS, values, strict=True) if value}

    @classmethod
    def from_sol(cls, data: object) -> Filter:
        """From a request's `filter`; SubscriptionError for unknown keys or values."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise SubscriptionError("filter must be an object")
        unknown = sorted(set(data) - set(FILTER_KEYS))
        if unknown:
            raise SubscriptionError(
                f"filter.{unknown[0]} is not supported (supported: " f"{', '.join(FILTER_KEYS)})"
            )
        lists = []
        for key, allowed in FILTER_KEYS.items():
            value = data.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise SubscriptionError(f"filter.{key} must be a list of strings")
            bad = [v for v in value if allowed is not None and v not in allowed]
            if bad:
                raise SubscriptionError(
                    f"filter.{key}: {bad[0]!r} is not one of " f"{', '.join(allowed or ())}"
                )
            lists.append(tuple(dict.fromkeys(value)))
        return cls(*lists)


@dataclass(frozen=True)
class Subscription:
    """One subscriber."""

    id: str
    callback_uri: str
    filter: Filter
    secret: str = field(repr=False)
    created: float

    def resource(self, api_base: str) -> dict[str, Any]:
        """SOL 003's FmSubscription (never the secret)."""
        return {
            "id": self.id,
            "filter": self.filter.as_sol(),
            "callbackUri": self.callback_uri,
            "_links": {"self": {"href": f"{api_base}{FM_PATH}/subscriptions/{self.id}"}},
        }


@dataclass(frozen=True)
class SubscriptionRequest:
    """A validated FmSubscriptionRequest."""

    callback_uri: str
    filter: Filter
    secret: str | None  # None: make one


def parse_request(data: object) -> SubscriptionRequest:
    """Validate a POST /subscriptions body; SubscriptionError says what is wrong."""
    if not isinstance(data, dict):
        raise SubscriptionError("the body must be a JSON object")
    unknown = sorted(set(data) - {"callbackUri", "filter", "authentication"})
    if unknown:
        raise SubscriptionError(f"{unknown[0]} is not a subscription attribute")
    uri = data.get("callbackUri")
    if not isinstance(uri, str) or not uri:
        raise SubscriptionError("callbackUri is required")
    problem = webhook.check_callback_uri(uri)
    if problem:
        raise SubscriptionError(problem)
    return SubscriptionRequest(
        uri, Filter.from_sol(data.get("filter")), _secret(data.get("authentication"))
    )


def _secret(authentication: object) -> str | None:
    if authentication is None:
        return None
    if not isinstance(authentication, dict) or authentication.get("authType") != [HMAC_AUTH]:
        raise SubscriptionError(
            f'authentication.authType must be ["{HMAC_AUTH}"] (hakit '
            "signs every notification with HMAC-SHA256)"
        )
    params = authentication.get("paramsHmac") or {}
    secret = params.get("secret") if isinstance(params, dict) else None
    if secret is None:
        return None
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        raise SubscriptionError(
            f"authentication.paramsHmac.secret must be a string of at "
            f"least {MIN_SECRET_LENGTH} characters"
        )
    return secret


def hmac_authentication(secret: str) -> dict[str, object]:
    """A request's (or a new subscription's) `authentication` with this secret."""
    return {"authType": [HMAC_AUTH], "paramsHmac": {"secret": secret}}


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SubscriptionStore:
    """Subscriptions and API tokens in one SQLite file (mode 0600)."""

    def __init__(self, path: str = DEFAULT_PATH, *, create: bool = True) -> None:
        self.path = str(path)
        self.db = open_database(self.path, _SCHEMA, SCHEMA_VERSION, mode=0o600, create=create)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> SubscriptionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- subscriptions ---

    def create(self, request: SubscriptionRequest, secret: str | None = None) -> Subscription:
        """Store a subscription, signed with `secret`, the request's, or a new one."""
        subscription = Subscription(
            str(uuid.uuid4()),
            request.callback_uri,
            request.filter,
            secret or request.secret or new_secret(),
            time.time(),
        )
        self.db.execute(
            "INSERT INTO subscriptions (id, callback_uri, filter, secret, created)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                subscription.id,
                subscription.callback_uri,
                json.dumps(subscription.filter.as_sol(), sort_keys=True),
                subscription.secret,
                subscription.created,
            ),
        )
        return subscription

    def get(self, subscription_id: str) -> Subscription | None:
        rows = self._select("WHERE id = ?", (subscription_id,))
        return rows[0] if rows else None

    def all(self) -> list[Subscription]:
        return self._select("ORDER BY created, id", ())

    def find(self, callback_uri: str, wanted: Filter) -> Subscription | None:
        """An existing subscription with the same callback and filter (SOL 003: 303)."""
        return next(
            (
                s
                for s in self._select("WHERE callback_uri = ?", (callback_uri,))
                if s.filter == wanted
            ),
            None,
        )

    def delete(self, subscription_id: str) -> bool:
        cursor = self.db.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,))
        return cursor.rowcount == 1

    def _select(self, where: str, args: tuple[str, ...]) -> list[Subscription]:
        columns = "id, callback_uri, filter, secret, created"
        rows = self.db.execute(f"SELECT {columns} FROM subscriptions {where}", args).fetchall()  # noqa: S608
        return [
            Subscription(r[0], r[1], Filter.from_sol(json.loads(r[2])), r[3], r[4]) for r in rows
        ]

    # --- API tokens ---

    def add_token(self, name: str) -> str:
        """A new bearer token for the API, shown once; only its hash is kept."""
        if not TOKEN_NAME.fullmatch(name):
            raise SubscriptionError(
                "a token name is 1 to 64 letters, digits, '.', '_', '@' or '-' "
                "(starting with a letter or digit)"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with Transaction(self.db):
            if self.db.execute("SELECT 1 FROM api_tokens WHERE name = ?", (name,)).fetchone():
                raise SubscriptionError(f"a token named {name!r} exists; delete it first")
            self.db.execute(
                "INSERT INTO api_tokens (name, token_hash, created) VALUES (?, ?, ?)",
                (name, hash_token(token), time.time()),
            )
        return token

    def token_name(self, token: str) -> str | None:
        """The name of a valid token, None for any other string."""
        row = self.db.execute(
            "SELECT name FROM api_tokens WHERE token_hash = ?", (hash_token(token),)
        ).fetchone()
        return str(row[0]) if row else None

    def token_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM api_tokens ORDER BY name")]

    def delete_token(self, name: str) -> bool:
        return self.db.execute("DELETE FROM api_tokens WHERE name = ?", (name,)).rowcount == 1


def subscribe(
    store: SubscriptionStore, request: SubscriptionRequest, *, test_timeout: float | None = 5.0
) -> tuple[Subscription, bool]:
    """(subscription, created): the existing one for the same callback and filter, or a
    new one once its callback answered the test GET (skipped when `test_timeout` is None)."""
    existing = store.find(request.callback_uri, request.filter)
    if existing is not None:
        return existing, False
    secret = request.secret or new_secret()
    if test_timeout is not None:
        try:
            status = webhook.probe(request.callback_uri, secret, timeout=test_timeout)
        except webhook.DeliveryError as error:
            raise CallbackTestFailed(f"callbackUri test failed: {error}") from None
        if status != 204:
            raise CallbackTestFailed(f"callbackUri test failed: GET answered {status}, not 204")
    return store.create(request, secret), True
