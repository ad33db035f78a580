"""Health test fixtures: CIB files made by Pacemaker's own tools, the installed alert agent,
and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hakit.resource_agents.health import webhook
from hakit.resource_agents.health.sources import Snapshot
from hakit.tools.install_agents import install
from hakit.tools.topology.load import load
from hakit.tools.topology.render import render, to_text

DATA = Path(__file__).parent / "data"
NODES = ("node1", "node2", "node3")
SYSTEM_PYTHON = "/usr/bin/python3"
CRM_MON = ("crm_mon", "--one-shot", "--inactive", "--output-as=xml", "--include=all")
# `hakit health ...` in a fresh process, through cli.add_parser as tools/cli.py will wire it
CLI = (
    "import argparse, sys; from hakit.resource_agents.health.cli import add_parser; "
    "p = argparse.ArgumentParser(); add_parser(p.add_subparsers()); "
    "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
)


def pacemaker(*command: str, cib: Path | None = None) -> str:
    """Run a Pacemaker tool (on a CIB file when given); its output."""
    env = {**os.environ, "LC_ALL": "C"}
    if cib is not None:
        env["CIB_file"] = str(cib)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
    return done.stdout


class Cib:
    """CIB files: the test topology rendered by hakit, then changed only by crm_simulate,
    cibadmin and crm_attribute, as a cluster would be."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        loaded = load(DATA / "cluster.yaml")
        assert loaded.topology is not None, loaded.problems
        empty = directory / "configured.xml"
        empty.write_text(to_text(render(loaded.topology)))
        up = [arg for node in NODES for arg in ("--node-up", node)]
        self.placed = self.simulate(empty, "placed", "--quorum", "true", *up)
        pacemaker("cibadmin", "--modify", "--xml-text", '<cib dc-uuid="1"/>', cib=self.placed)

    def simulate(self, source: Path, name: str, *events: str, execute: bool = True) -> Path:
        """crm_simulate `events` on `source` (and run the transition when `execute`)."""
        target = self.directory / f"{name}.xml"
        pacemaker(
            "crm_simulate",
            "--xml-file",
            str(source),
            *(["--simulate"] if execute else []),
            *events,
            "--save-output",
            str(target),
        )
        return target

    def edit(self, source: Path, name: str, *command: str) -> Path:
        """A copy of `source` changed by one Pacemaker command (CIB_file)."""
        target = self.directory / f"{name}.xml"
        target.write_bytes(source.read_bytes())
        pacemaker(*command, cib=target)
        return target

    def snapshot(self, path: Path) -> Snapshot:
        return Snapshot.from_text(pacemaker(*CRM_MON, cib=path))

    def where(self, path: Path, resource: str) -> list[str]:
        return self.snapshot(path).status.running_on(resource)


@pytest.fixture(scope="session")
def cib(tmp_path_factory: pytest.TempPathFactory) -> Cib:
    return Cib(tmp_path_factory.mktemp("cib"))


# --- the alert agent ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def alert_agent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The alert agent as `hakit agents install` installs it, in a scratch OCF root."""
    root = tmp_path_factory.mktemp("ocf")
    install(python=SYSTEM_PYTHON, root=root)
    return root / "libexec" / "hakit" / "alert"


def alert_env(
    outbox: Path,
    kind: str,
    node: str,
    desc: str,
    *,
    epoch: int,
    usec: int = 0,
    sequence: int = 1,
    **extra: str,
) -> dict[str, str]:
    """The environment Pacemaker gives an alert agent."""
    return {
        "PATH": "/usr/bin:/bin",
        "hakit_outbox": str(outbox),
        "CRM_alert_version": "2.1.5",
        "CRM_alert_kind": kind,
        "CRM_alert_node": node,
        "CRM_alert_desc": desc,
        "CRM_alert_recipient": "",
        "CRM_alert_node_sequence": str(sequence),
        "CRM_alert_timestamp": time.strftime("%H:%M:%S", time.gmtime(epoch)),
        "CRM_alert_timestamp_epoch": str(epoch),
        "CRM_alert_timestamp_usec": str(usec),
        **{f"CRM_alert_{k}": v for k, v in extra.items()},
    }


def fencing_desc(target: str, executioner: str, *, ok: bool = True, action: str = "reboot") -> str:
    """A fencing alert's description, as pacemaker-controld words it."""
    result = "OK" if ok else "Timer expired"
    return (
        f"Operation {action} of {target} by {executioner} for "
        f"pacemaker-controld.1234@node1: {result} (ref=4f1c6c1e-3e0b-4a64-9f0e)"
    )


class AlertRunner:
    """Runs the installed alert agent as Pacemaker would: a fresh `python3 -IS` process."""

    def __init__(self, script: Path, outbox: Path) -> None:
        self.script = script
        self.outbox = outbox
        self.sequence = 0

    def __call__(
        self, kind: str, node: str, desc: str, *, epoch: float | None = None, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        self.sequence += 1
        when = time.time() if epoch is None else epoch
        env = alert_env(
            self.outbox,
            kind,
            node,
            desc,
            epoch=int(when),
            usec=int(round(when % 1 * 1e6)) % 1000000,
            sequence=self.sequence,
            **extra,
        )
        done = subprocess.run(
            [SYSTEM_PYTHON, "-IS", str(self.script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done

    def node(self, node: str, state: str, **kw: Any) -> None:
        self("node", node, state, nodeid=str(NODES.index(node) + 1), **kw)

    def fencing(self, target: str, executioner: str = "node1", ok: bool = True, **kw: Any) -> None:
        self(
            "fencing",
            target,
            fencing_desc(target, executioner, ok=ok),
            task="st_notify_fence",
            rc="0" if ok else "62",
            **kw,
        )


@pytest.fixture
def outbox_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "outbox.db"


@pytest.fixture
def alerts(alert_agent: Path, outbox_path: Path) -> AlertRunner:
    return AlertRunner(alert_agent, outbox_path)


# --- an HTTP receiver ---------------------------------------------------------------------


@dataclass
class Receipt:
    """One request the receiver got."""

    idempotency_key: str
    signed: bool
    body: dict[str, Any]
    raw: bytes


@dataclass
class Receiver:
    """A subscriber's endpoint on 127.0.0.1: checks signatures, records what arrives; can
    go down and come back on the same port, and can answer 500 once per id after
    recording it (a lost answer, so the publisher must send it again)."""

    secret: str
    port: int = 0
    receipts: list[Receipt] = field(default_factory=list)
    fail_once: Callable[[dict[str, Any]], bool] = lambda body: False
    delay: float = 0.0
    failed: set[str] = field(default_factory=set)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # SOL 003's test of the endpoint
                self.send_response(204)
                self.end_headers()

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signed = webhook.verify(
                    receiver.secret,
                    self.headers.get(webhook.TIMESTAMP_HEADER) or "",
                    raw,
                    self.headers.get(webhook.SIGNATURE_HEADER) or "",
                )
                key = self.headers.get(webhook.IDEMPOTENCY_HEADER) or ""
                body = json.loads(raw)
                time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.receipts.append(Receipt(key, signed, body, raw))
                    lose_answer = key not in receiver.failed and receiver.fail_once(body)
                    if lose_answer:
                        receiver.failed.add(key)
                self.send_response(500 if lose_answer or not signed else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def keys(self) -> list[str]:
        with self.lock:
            return [r.idempotency_key for r in self.receipts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    the_receiver = Receiver(secret=secrets.token_urlsafe(24))
    the_receiver.start()
    try:
        yield the_receiver
    finally:
        the_receiver.stop()


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
