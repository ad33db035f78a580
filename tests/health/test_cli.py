"""`hakit health` through its argparse wiring (`add_parser`), as tools/cli.py will call it."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hakit.resource_agents.health.cli import add_parser
from tests.health.conftest import CLI, AlertRunner, Cib, Receiver


def hakit_health(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="hakit")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["health", *argv])
    return int(args.func(args))


def test_the_table_and_json_come_from_the_live_view(
    cib: Cib,
    alerts: AlertRunner,
    outbox_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(
        "CIB_file", str(cib.simulate(cib.placed, "cli-fenced", "--node-fail", "node2"))
    )
    alerts.fencing("node2", executioner="node3")
    assert hakit_health("--outbox", str(outbox_path)) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == ["NODE", "HEALTH", "REASONS"]
    assert table[3].startswith("node2  HOST_DOWN_FENCED           fenced: reboot by node3 at ")
    assert hakit_health("--json", "--outbox", str(outbox_path)) == 0
    data = json.loads(capsys.readouterr().out)
    assert [n["health"] for n in data["nodes"]] == ["OK", "HOST_DOWN_FENCED", "OK"]
    assert data["nodes"][1]["fence"]["executioner"] == "node3"
    assert hakit_health("--json", "--outbox", str(outbox_path.parent / "none.db")) == 0
    without = json.loads(capsys.readouterr().out)  # no alert evidence, no fencer: not "fenced"
    assert without["nodes"][1]["health"] == "HOST_LEFT_CLUSTER"


def test_no_cluster_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no Pacemaker tools here
    assert (
        hakit_health("--outbox", str(tmp_path / "o.db")) == 3
    )  # the environment (README: exit codes)
    err = capsys.readouterr().err
    assert err.startswith("hakit health: crm_mon ") and err.endswith(
        ": not installed on this node\n"
    )


def test_tokens_and_subscriptions(
    tmp_path: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--subscriptions", str(tmp_path / "subs.db")]
    assert hakit_health("tokens", *store, "add", "mano") == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("hakit_")
    assert hakit_health("tokens", *store, "add", "mano") == 2
    assert "a token named 'mano' exists" in capsys.readouterr().err
    assert hakit_health("tokens", *store, "list") == 0
    assert capsys.readouterr().out == "mano\n"

    assert (
        hakit_health(
            "subscriptions",
            *store,
            "add",
            receiver.uri,
            "--severity",
            "CRITICAL",
            "--host",
            "node2",
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("subscribed: ") and out[1].startswith("secret (shown once): ")
    subscription_id = out[0].split(": ")[1]
    assert hakit_health("subscriptions", *store, "list") == 0
    assert capsys.readouterr().out == (
        f"{subscription_id}  {receiver.uri}  "
        '{"hosts": ["node2"], "perceivedSeverities": ["CRITICAL"]}\n'
    )
    assert hakit_health("subscriptions", *store, "add", "http://127.0.0.1:9/x") == 2
    assert capsys.readouterr().err.startswith("hakit health: callbackUri test failed: ")
    assert hakit_health("subscriptions", *store, "delete", subscription_id) == 2  # no --yes
    assert "add --yes" in capsys.readouterr().err
    assert hakit_health("subscriptions", *store, "delete", subscription_id, "--yes") == 0
    assert hakit_health("subscriptions", *store, "delete", subscription_id, "--yes") == 2
    assert hakit_health("tokens", *store, "delete", "mano", "--yes") == 0


def test_watch_prints_each_change_once(cib: Cib, tmp_path: Path) -> None:
    live = tmp_path / "live.xml"
    live.write_bytes(cib.placed.read_bytes())
    lost = cib.simulate(cib.placed, "cli-watch-lost", "--node-fail", "node2", execute=False)
    watch = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI,
            "health",
            "--watch",
            "--json",
            "--interval",
            "0.1",
            "--outbox",
            str(tmp_path / "none.db"),
        ],
        env={**os.environ, "CIB_file": str(live)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watch.stdout is not None
    first = json.loads(watch.stdout.readline())
    time.sleep(0.5)  # several rounds, no change: nothing printed
    live.write_bytes(lost.read_bytes())
    second = json.loads(watch.stdout.readline())
    watch.send_signal(signal.SIGINT)
    rest, err = watch.communicate(timeout=10)
    assert watch.returncode == 0 and rest == "" and "Traceback" not in err
    assert [n["health"] for n in first["nodes"]] == ["OK", "OK", "OK"]
    assert [n["health"] for n in second["nodes"]] == ["OK", "HOST_UNREACHABLE_UNFENCED", "OK"]


#: The signal arrives while the main thread holds the event's own lock (inside
#: Event.wait, before it waits or after it woke): the handler's stop must not take it there.
SIGNAL_INSIDE_WAIT = """
import signal, threading
from hakit.resource_agents.health.cli import _until_terminated
stopping = threading.Event()
_until_terminated(stopping.set)
with stopping._cond:
    signal.raise_signal(signal.SIGTERM)
assert stopping.wait(5)
"""


def test_a_signal_inside_the_wait_for_it_stops_and_never_deadlocks() -> None:
    """`--watch`, publish and serve stop on a flag the signal sets; set in the handler
    itself (the main thread, holding the flag's lock) it hung `--watch` in CI."""
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_INSIDE_WAIT],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_serve_until_terminated(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLI,
            "health",
            "serve",
            "--port",
            str(port),
            "--subscriptions",
            str(tmp_path / "subs.db"),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert serve.stderr is not None
    assert serve.stderr.readline() == f"hakit health: API on http://127.0.0.1:{port}\n"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/vnffm/v1/subscriptions")
    assert connection.getresponse().status == 401
    connection.close()
    serve.send_signal(signal.SIGTERM)
    _, err = serve.communicate(timeout=10)
    assert serve.returncode == 0 and err == ""
