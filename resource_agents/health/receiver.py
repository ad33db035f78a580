"""A reference subscriber: receives hakit's signed notifications, checks them, logs them.

`hakit health receive --port P --secret-file F --log FILE [--delay S]` is what a MANO
integrator (or a lab, a test, a drill) points a subscription at to see what arrives.
Every POST is checked (HMAC signature, timestamp) and answered 204, or 401 when the
check fails; a GET (the subscription's test call) gets 204. Each POST is appended to the
log as one JSON line when it arrives and again when answered:

    {"stage": "arrived"|"accepted"|"refused", "received": <UNIX time>, "key": <Idempotency-Key>,
     "duplicate": <key accepted before, also by an earlier run on the same log>,
     "notification": {...}}

`--delay` holds each answer that long (to catch a publisher mid-delivery).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hakit.resource_agents.health import webhook

MAX_BODY = 4 * 1024 * 1024


class Receiver(ThreadingHTTPServer):
    """The server; `serve_forever()` until `shutdown()`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], secret: str, log: Path, delay: float = 0.0):
        log.open("a", encoding="utf-8").close()  # an unusable log fails here, not per POST
        super().__init__(address, _Handler)
        self.secret = secret
        self.log_path = log
        self.delay = delay
        self.lock = threading.Lock()
        self.accepted = set(accepted_keys(log))

    def record(self, stage: str, key: str, notification: Any) -> bool:
        """Append one line; whether `key` was accepted before."""
        with self.lock:
            duplicate = key in self.accepted
            if stage == "accepted":
                self.accepted.add(key)
            line = json.dumps(
                {
                    "stage": stage,
                    "received": time.time(),
                    "key": key,
                    "duplicate": duplicate,
                    "notification": notification,
                }
            )
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        return duplicate


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every logged line (a missing log is empty)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def accepted_keys(path: Path) -> list[str]:
    """Idempotency keys of accepted notifications, in order of first acceptance."""
    seen: dict[str, None] = {}
    for entry in read_log(path):
        if entry["stage"] == "accepted":
            seen.setdefault(entry["key"], None)
    return list(seen)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(204)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(413)
            return
        body = self.rfile.read(length)
        key = self.headers.get(webhook.IDEMPOTENCY_HEADER, "")
        try:
            notification = json.loads(body)
        except ValueError:
            notification = None
        self.server.record("arrived", key, notification)
        if self.server.delay:
            time.sleep(self.server.delay)
        good = webhook.verify(
            self.server.secret,
            self.headers.get(webhook.TIMESTAMP_HEADER, ""),
            body,
            self.headers.get(webhook.SIGNATURE_HEADER, ""),
        )
        self.server.record("accepted" if good else "refused", key, notification)
        self._answer(204 if good else 401)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
