"""`hakit health receive`, the reference subscriber, as its own process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakit.resource_agents.health import webhook
from hakit.resource_agents.health.receiver import accepted_keys, read_log

SECRET = os.urandom(8).hex()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    (tmp_path / "secret").write_text(SECRET + "\n")
    log, port = tmp_path / "received.jsonl", free_port()
    argv = [
        sys.executable,
        "-m",
        "hakit.tools.cli",
        "health",
        "receive",
        "--port",
        str(port),
        "--secret-file",
        str(tmp_path / "secret"),
        "--log",
        str(log),
    ]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        assert process.poll() is None and time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/cb", log, tmp_path
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
        assert b"Traceback" not in err


def post(uri: str, secret: str, key: str, body: dict[str, object]) -> int:
    return webhook.post_notification(uri, json.dumps(body).encode(), secret, key, timeout=5)


def test_signed_deliveries_accepted_forged_refused_duplicates_marked(
    receiver: tuple[str, Path, Path],
) -> None:
    uri, log, _ = receiver
    assert post(uri, SECRET, "n1", {"id": "n1"}) == 204
    assert post(uri, "not-the-secret", "n2", {"id": "n2"}) == 401
    assert post(uri, SECRET, "n1", {"id": "n1"}) == 204
    assert post(uri, SECRET, "n3", {"id": "n3"}) == 204
    entries = read_log(log)
    answered = [(e["stage"], e["key"], e["duplicate"]) for e in entries if e["stage"] != "arrived"]
    assert answered == [
        ("accepted", "n1", False),
        ("refused", "n2", False),
        ("accepted", "n1", True),
        ("accepted", "n3", False),
    ]
    assert accepted_keys(log) == ["n1", "n3"]
    assert [e["notification"] for e in entries if e["key"] == "n3"] == [{"id": "n3"}] * 2
