"""VNF error reports: the issue's figures, on 127.0.0.1 with real HTTP and the real SQLite
outbox (WAL, synchronous=FULL) on disk.

- Ingest: reports/s answered 201 (or 200 for a batch) by the API, from a client in another
  process (its own GIL): single reports from 8 keep-alive connections, batches of 100 from
  4. The anchor is the naive durable store: one INSERT + COMMIT (one fsync) per report,
  8 threads sharing one connection, no group commit, no HTTP. Afterwards every accepted
  report must be in the file.
- Decision: the publisher (leader forced, crm_mon on a CIB file, inventory-resolved
  servers, a rule of 3 VNFs in 60 s) in the API's process; per run a fresh host and fresh
  VNFs report, and from the 201 of the report that completes the rule to the root alarm
  committed to the outbox (seen by a reader), and to its receipt by a subscriber (HMAC
  checked) in the client's process. The anchor is the host-alarm path measured in the
  same run (`bench.health.pipeline_latencies`: alert timestamp → host alarm received).

    python -m bench.reports [--runs N] [--seconds S] [--rounds N] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import secrets
import socket
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.health import PYTHON, cib_files, pipeline_latencies
from bench.monitor import write
from hakit.resource_agents.health import webhook
from hakit.resource_agents.health.api import ApiServer
from hakit.resource_agents.health.constants import LEADER_VARIABLE
from hakit.resource_agents.health.correlation import parse_rules
from hakit.resource_agents.health.model import rfc3339
from hakit.resource_agents.health.outbox import NOTIFICATIONS, Outbox
from hakit.resource_agents.health.publisher import Publisher, PublisherConfig
from hakit.resource_agents.health.reports_api import REPORTS
from hakit.resource_agents.health.subscriptions import (
    Filter,
    SubscriptionRequest,
    SubscriptionStore,
    subscribe,
)
from hakit.resource_agents.health.vnf_reports import ReportStore, parse_report
from hakit.tools.install_agents import install

BEGIN, END = "<!-- bench:reports:begin -->", "<!-- bench:reports:end -->"
MIN_VNFS = 3
WINDOW_S = 60
RULES = {
    "rules": [
        {
            "name": "compute-host",
            "scope": "host",
            "error_classes": [],
            "min_vnfs": MIN_VNFS,
            "window_s": WINDOW_S,
        }
    ]
}
SINGLE_CONNECTIONS, BATCH_CONNECTIONS, BATCH = 8, 4, 100
ANCHOR_THREADS = 8
REPORT_GAP = 0.1  # seconds between one VNF's report and the next one's
UNLIMITED = 1e9  # the API's rate limit out of the way (it counts reports per client)
_CREATED = re.compile(rb'"created": (\d+)')


# --- the client: raw keep-alive HTTP/1.1, so its own cost stays small --------------------


def report_parts(vnf: str, server: str, observed: float) -> tuple[bytes, bytes]:
    """A report's JSON around its idempotency key: (before, after)."""
    body = {
        "vnfInstanceId": vnf,
        "resource": {"type": "server", "id": server},
        "errorClass": "compute",
        "perceivedSeverity": "MAJOR",
        "observedTime": rfc3339(observed),
        "details": f"{vnf}: heartbeat lost on {server}",
        "idempotencyKey": "KEY",
    }
    before, after = json.dumps(body).split('"KEY"')
    return f'{before}"'.encode(), f'"{after}'.encode()


class HttpClient:
    """One keep-alive connection posting error reports with a bearer token."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")
        self.head = (
            f"POST {REPORTS} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        ).encode()

    def post(self, body: bytes) -> tuple[int, bytes]:
        self.sock.sendall(b"%sContent-Length: %d\r\n\r\n%s" % (self.head, len(body), body))
        status = int(self.reader.readline().split(None, 2)[1])
        length = 0
        while (line := self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, self.reader.read(length)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@dataclass
class Load:
    """What a load run's connections got."""

    accepted: int = 0  # reports accepted (201, or created in a 200 batch), all of them
    in_window: int = 0  # reports accepted by requests that finished in the measured window
    window: float = 0.0
    refused: dict[int, int] = field(default_factory=dict)  # other statuses: how many


def load(
    port: int, token: str, connections: int, batch: int, warmup: float, seconds: float
) -> Load:
    """Post from `connections` keep-alive connections (batches of `batch`, or single
    reports when 0) for `warmup` + `seconds`; count what finished in the last `seconds`."""
    run = uuid.uuid4().hex[:12]
    begin = time.monotonic() + warmup
    end = begin + seconds
    result = Load(window=seconds)
    lock = threading.Lock()

    def connection(index: int) -> None:
        before, after = report_parts(f"vnf-{index}", f"vm-{index}", time.time())
        client = HttpClient(port, token)
        accepted = in_window = sent = 0
        refused: dict[int, int] = {}
        try:
            while time.monotonic() < end:
                keys = [b"%s-%d-%d" % (run.encode(), index, sent + n) for n in range(batch or 1)]
                sent += len(keys)
                reports = [before + key + after for key in keys]
                body = b"[" + b",".join(reports) + b"]" if batch else reports[0]
                status, answer = client.post(body)
                if batch and status == 200:
                    created = _CREATED.search(answer)
                    count = int(created.group(1)) if created else 0
                elif not batch and status == 201:
                    count = 1
                else:
                    refused[status] = refused.get(status, 0) + 1
                    continue
                accepted += count
                if begin <= time.monotonic() < end:
                    in_window += count
        finally:
            client.close()
        with lock:
            result.accepted += accepted
            result.in_window += in_window
            for status, n in refused.items():
                result.refused[status] = result.refused.get(status, 0) + n

    threads = [threading.Thread(target=connection, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result


# --- ingest ---------------------------------------------------------------------------------


@dataclass
class Contender:
    """One way of ingesting, its outbox file, and its rounds' rates."""

    name: str
    outbox: Path
    run: Callable[[Contender], Load]
    rates: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # this process's CPU s per report
    cores: list[float] = field(default_factory=list)  # its CPU s per wall s
    accepted: int = 0
    refused: dict[int, int] = field(default_factory=dict)

    def round(self) -> None:
        """One round; the CPU is this process's (the API or the naive store, not the
        client, which runs in another process)."""
        before, began = os.times(), time.monotonic()
        got = self.run(self)
        after, wall = os.times(), time.monotonic() - began
        cpu = after.user + after.system - before.user - before.system
        self.rates.append(got.in_window / got.window)
        self.cpu.append(cpu / max(got.accepted, 1))
        self.cores.append(cpu / wall)
        self.accepted += got.accepted
        for status, n in got.refused.items():
            self.refused[status] = self.refused.get(status, 0) + n

    def stored(self) -> int:
        with ReportStore(str(self.outbox)) as store:
            return store.count()


def api_load(
    pool: ProcessPoolExecutor,
    subscriptions: Path,
    token: str,
    connections: int,
    batch: int,
    warmup: float,
    seconds: float,
) -> Callable[[Contender], Load]:
    """A contender's round: the API on its outbox, the client in the pool's process."""

    def run(contender: Contender) -> Load:
        server = ApiServer(
            "127.0.0.1",
            0,
            store_path=str(subscriptions),
            reports_path=str(contender.outbox),
            report_rate=UNLIMITED,
            report_burst=UNLIMITED,
        )
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        try:
            port = server.server_address[1]
            return pool.submit(load, port, token, connections, batch, warmup, seconds).result()
        finally:
            server.shutdown()
            server.server_close()  # the writer commits what is queued, then stops

    return run


def naive_store(warmup: float, seconds: float) -> Callable[[Contender], Load]:
    """The anchor's round: `ANCHOR_THREADS` threads, each report its own transaction
    (`ReportStore.add` of one report: INSERT, COMMIT, fsync) on one shared connection."""

    def run(contender: Contender) -> Load:
        store = ReportStore(str(contender.outbox))
        lock = threading.Lock()
        begin = time.monotonic() + warmup
        end = begin + seconds
        result = Load(window=seconds)
        key_prefix = uuid.uuid4().hex[:12]

        def thread(index: int) -> None:
            body = json.loads(b"KEY".join(report_parts(f"vnf-{index}", f"vm-{index}", time.time())))
            accepted = in_window = 0
            while time.monotonic() < end:
                body["idempotencyKey"] = f"{key_prefix}-{index}-{accepted}"
                report = parse_report(body, "bench", time.time())
                with lock:
                    store.add([report])
                accepted += 1
                if begin <= time.monotonic() < end:
                    in_window += 1
            with lock:
                result.accepted += accepted
                result.in_window += in_window

        threads = [threading.Thread(target=thread, args=(i,)) for i in range(ANCHOR_THREADS)]
        for each in threads:
            each.start()
        for each in threads:
            each.join()
        store.close()
        return result

    return run


def fsync_ms(directory: Path, times: int = 200) -> float:
    """Median milliseconds of one 4 KiB write + fsync in `directory`: the disk's cost."""
    path = directory / "fsync.probe"
    took = []
    with path.open("wb") as probe:
        for _ in range(times):
            began = time.perf_counter()
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
            took.append((time.perf_counter() - began) * 1e3)
    path.unlink()
    return statistics.median(took)


def filesystem(path: Path) -> str:
    """The file system type `path` is on (tmpfs would make fsync free)."""
    best, kind = "", "?"
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[1]
            if str(path).startswith(point.rstrip("/") + "/") and len(point) >= len(best):
                best, kind = point, fields[2]
    return kind


# --- decision and delivery ---------------------------------------------------------------


class Subscriber:
    """A subscriber's endpoint: checks each delivery's HMAC signature and notes when each
    host's root alarm first arrived."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.roots: dict[str, float] = {}
        self.deliveries = 0
        self.unsigned = 0
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # SOL 003's test of the endpoint
                self.send_response(204)
                self.end_headers()

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.time()
                signed = webhook.verify(
                    subscriber.secret,
                    self.headers.get(webhook.TIMESTAMP_HEADER) or "",
                    raw,
                    self.headers.get(webhook.SIGNATURE_HEADER) or "",
                )
                subscriber.deliveries += 1
                if not signed:
                    subscriber.unsigned += 1
                alarm = json.loads(raw).get("alarm") or {}
                if signed and alarm.get("isRootCause"):
                    subscriber.roots.setdefault(alarm["managedObjectId"], arrived)
                self.send_response(204 if signed else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def root_committed(box: Outbox, host: str, after: int) -> tuple[bool, int]:
    """Whether the root alarm on `host` is in the notifications stream after `after`; the
    last sequence number looked at."""
    for record in box.read(NOTIFICATIONS, after, limit=-1):
        after = record.seq
        alarm = json.loads(record.body)["notification"].get("alarm") or {}
        if alarm.get("isRootCause") and alarm.get("managedObjectId") == host:
            return True, after
    return False, after


def vnf_manager(channel: Connection, secret: str) -> None:
    """The client's process: a subscriber, and a VNF manager posting reports run by run,
    timing (from the completing report's 201) the root alarm committed and received.
    Answers ("ok", (times, deliveries, unsigned)) or ("error", why)."""
    subscriber = Subscriber(secret)
    try:
        channel.send(subscriber.port)
        port, token, outbox, runs = channel.recv()
        times = decide(subscriber, HttpClient(port, token), outbox, runs)
        time.sleep(0.5)  # the last children's deliveries, to count their signatures
        channel.send(("ok", (times, subscriber.deliveries, subscriber.unsigned)))
    except EOFError:  # the bench gave up
        pass
    except Exception as error:
        channel.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        subscriber.stop()


def decide(
    subscriber: Subscriber, client: HttpClient, outbox: str, runs: int
) -> list[tuple[float, float]]:
    """Per run (a fresh host and VNFs): seconds from the completing report's 201 to its
    root alarm committed, and to its receipt."""
    box = Outbox(outbox)
    seen = 0
    times = []
    try:
        for run in range(runs):
            host = f"host{run}"
            for index in range(MIN_VNFS):
                time.sleep(REPORT_GAP)
                before, after = report_parts(f"vnf-{run}-{index}", f"vm-{run}-{index}", time.time())
                status, _ = client.post(before + uuid.uuid4().hex.encode() + after)
                if status != 201:
                    raise RuntimeError(f"run {run}: report {index} answered {status}")
            answered = time.time()
            deadline = answered + 10
            found = False
            while not found and time.time() < deadline:
                found, seen = root_committed(box, host, seen)
                if not found:
                    time.sleep(0.0005)
            committed = time.time()
            while host not in subscriber.roots and time.time() < deadline:
                time.sleep(0.001)
            if not found or host not in subscriber.roots:
                raise RuntimeError(f"run {run}: no root alarm for {host} within 10 s")
            times.append((committed - answered, subscriber.roots[host] - answered))
    finally:
        client.close()
        box.close()
    return times


@dataclass
class Decisions:
    committed: list[float]  # seconds from the Nth report's 201 to the root alarm committed
    received: list[float]  # … to the root alarm received by the subscriber
    deliveries: int
    unsigned: int


def decisions(directory: Path, runs: int) -> Decisions:
    """The publisher and its API in this process; the VNF manager and subscriber in another."""
    directory.mkdir()
    placed, _ = cib_files(directory)
    outbox, subscriptions = directory / "outbox.db", directory / "subscriptions.db"
    inventory = directory / "inventory.json"
    hosts = {f"host{r}": [f"vm-{r}-{i}" for i in range(MIN_VNFS)] for r in range(runs)}
    inventory.write_text(json.dumps(hosts))
    with SubscriptionStore(str(subscriptions)) as store:
        token = store.add_token("vnfm")
    secret = secrets.token_urlsafe(24)
    spawn = multiprocessing.get_context("spawn")
    channel, theirs = spawn.Pipe()
    manager = spawn.Process(target=vnf_manager, args=(theirs, secret), daemon=True)
    manager.start()
    subscriber_port = channel.recv()
    with SubscriptionStore(str(subscriptions)) as store:
        request = SubscriptionRequest(f"http://127.0.0.1:{subscriber_port}/", Filter(), secret)
        subscribe(store, request)  # its test GET included
    os.environ[LEADER_VARIABLE] = "1"
    os.environ["CIB_file"] = str(placed)  # noqa: SIM112 — Pacemaker's name
    config = PublisherConfig(
        outbox=str(outbox),
        subscriptions=str(subscriptions),
        inventory=str(inventory),
        correlation=parse_rules(RULES),
    )  # the rest as `hakit health publish` has it (poll 50 ms, resync 5 s)
    server = ApiServer("127.0.0.1", 0, store_path=str(subscriptions), reports_path=str(outbox))
    publisher = Publisher(config)
    assert server.reports is not None  # noqa: S101 — reports_path given
    server.reports.writer.on_stored = publisher.wake.set
    threads = [
        threading.Thread(target=server.serve_forever, args=(0.05,)),
        threading.Thread(target=publisher.run),
    ]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 10
        while not (publisher.leader.is_set() and publisher.deliveries):
            if time.monotonic() > deadline:
                raise RuntimeError("the publisher did not lead and deliver within 10 s")
            time.sleep(0.01)
        channel.send((server.server_address[1], token, str(outbox), runs))
        outcome, answer = channel.recv()
        if outcome != "ok":
            raise RuntimeError(f"the VNF manager's process: {answer}")
        times, deliveries, unsigned = answer
    finally:
        channel.close()  # a manager still waiting for its orders ends
        manager.join(timeout=10)
        if manager.is_alive():
            manager.terminate()
        publisher.stop()
        server.shutdown()
        server.server_close()
        for thread in threads:
            thread.join(timeout=10)
    return Decisions([c for c, _ in times], [r for _, r in times], deliveries, unsigned)


# --- the report ------------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest rank, as bench.health (of 40, p99 is the largest)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def us(contender: Contender) -> str:
    """Median CPU microseconds per report."""
    return f"{statistics.median(contender.cpu) * 1e6:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40, help="decision runs (a host each)")
    parser.add_argument("--seconds", type=float, default=2.0, help="per ingest round")
    parser.add_argument("--rounds", type=int, default=5, help="ingest rounds (median)")
    parser.add_argument("--write", type=Path, help="update this markdown file")
    args = parser.parse_args()
    started = time.monotonic()
    warmup = 0.5
    with tempfile.TemporaryDirectory(prefix="hakit-bench-reports-") as tmp:
        root = Path(tmp)
        disk, fsync = filesystem(root), fsync_ms(root)
        subscriptions = root / "subscriptions.db"
        with SubscriptionStore(str(subscriptions)) as store:
            token = store.add_token("bench")
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            pool.submit(time.sleep, 0).result()  # the client's process is up
            contenders = [
                Contender("anchor", root / "anchor.db", naive_store(warmup, args.seconds)),
                Contender(
                    "single",
                    root / "single.db",
                    api_load(
                        pool, subscriptions, token, SINGLE_CONNECTIONS, 0, warmup, args.seconds
                    ),
                ),
                Contender(
                    "batch",
                    root / "batch.db",
                    api_load(
                        pool, subscriptions, token, BATCH_CONNECTIONS, BATCH, warmup, args.seconds
                    ),
                ),
            ]
            for _ in range(args.rounds):  # round-robin: the machine's noise hits all alike
                for contender in contenders:
                    contender.round()
        anchor, single, batch = contenders
        durable = {c.name: (c.accepted, c.stored()) for c in contenders}
        install(python=PYTHON, root=root / "ocf")
        agent = root / "ocf" / "libexec" / "hakit" / "alert"
        (root / "host-alarm").mkdir()
        host_alarm = pipeline_latencies(agent, root / "host-alarm", args.runs)
        found = decisions(root / "decisions", args.runs)
    elapsed = time.monotonic() - started
    refused = {c.name: c.refused for c in contenders if c.refused}
    if refused or any(accepted != stored for accepted, stored in durable.values()):
        raise SystemExit(f"not every report accepted and stored: {durable}, refused {refused}")
    base = statistics.median(anchor.rates)

    def rate_row(what: str, contender: Contender) -> str:
        rates = sorted(contender.rates)
        rate = statistics.median(rates)
        accepted, stored = durable[contender.name]
        return (
            f"| {what} | {rate:,.0f} | {rates[0]:,.0f} to {rates[-1]:,.0f} | {rate / base:.2f}x "
            f"| {us(contender)} | {statistics.median(contender.cores):.2f} "
            f"| {accepted:,} / {stored:,} |"
        )

    single_rate, batch_rate = statistics.median(single.rates), statistics.median(batch.rates)
    disk_clause = (
        "the naive store, one fsync per report, commits more reports a second than the API "
        "accepts singly, while "
        if single_rate < base
        else "group commit puts it ahead of the naive store (one fsync per report), though "
    )
    best = max(single_rate, batch_rate)
    decide_p99 = quantile(found.committed, 0.99)
    receive_p95 = quantile(found.received, 0.95)
    text = "\n".join(
        [
            f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, 127.0.0.1; outbox on {disk} "
            f"(a 4 KiB write + fsync: {fsync:.2f} ms). "
            f"`python -m bench.reports --write docs/benchmarks.md` took {elapsed:.0f} s.",
            "",
            f"Ingest: {args.rounds} rounds of {args.seconds:g} s (after {warmup:g} s of warm-up) "
            "per row, round-robin; reports/s, median (range). The client runs in another "
            "process; the API's rate limit is lifted. CPU is the measured process's (the API "
            "with its writer, or the naive store), per report accepted and per wall second.",
            "",
            "| ingest | reports/s | range | vs anchor | CPU µs per report | CPU (cores) "
            "| accepted / in the file |",
            "|---|---:|---:|---:|---:|---:|---:|",
            rate_row(
                "anchor: naive store, one INSERT + COMMIT (fsync) per report, "
                f"{ANCHOR_THREADS} threads, one connection, no HTTP",
                anchor,
            ),
            rate_row(f"API, single reports, {SINGLE_CONNECTIONS} keep-alive connections", single),
            rate_row(f"API, batches of {BATCH}, {BATCH_CONNECTIONS} keep-alive connections", batch),
            "",
            f"Decision: {args.runs} runs, each a fresh host whose {MIN_VNFS} servers (inventory) "
            f"belong to {MIN_VNFS} fresh VNFs, reporting {REPORT_GAP * 1e3:.0f} ms apart on one "
            f"keep-alive connection; rule: {MIN_VNFS} VNFs within {WINDOW_S} s (suspicions stay "
            f"open: the last run's step holds {args.runs - 1} others). The publisher and the API "
            "share a process as `hakit health publish --api-port` has them (poll 50 ms, woken by "
            "a stored report; crm_mon on a CIB file); the VNF manager, a reader of the outbox "
            "and the subscriber share another. From the 201 answering the report that completes "
            "the rule:",
            "",
            "| measure | p50 | p95 | p99 |",
            "|---|---:|---:|---:|",
            "| root alarm committed to the outbox (`notifications`, seen by a reader) "
            f"| {ms(statistics.median(found.committed))} | {ms(quantile(found.committed, 0.95))} "
            f"| {ms(decide_p99)} |",
            "| root alarm received by the subscriber (HMAC-signed POST) "
            f"| {ms(statistics.median(found.received))} | {ms(receive_p95)} "
            f"| {ms(quantile(found.received, 0.99))} |",
            "| anchor, same run: alert timestamp → host alarm received (`bench.health`, "
            f"{args.runs} alerts) | {ms(statistics.median(host_alarm))} "
            f"| {ms(quantile(host_alarm, 0.95))} | {ms(quantile(host_alarm, 0.99))} |",
            "",
            f"Goals: ingest ≥ 2,000 reports/s with durable storage — {best:,.0f} in batches, "
            f"{single_rate:,.0f} as single reports; decision p99 < 100 ms — {ms(decide_p99)}; "
            f"root alarm at the subscriber p95 ≤ 1 s — {ms(receive_p95)}. "
            f"{found.deliveries} deliveries (roots and children), {found.unsigned} with a bad "
            "signature.",
            "",
            "Single reports are limited by the API process's CPU, not the disk: "
            + disk_clause
            + f"the API spends {us(single)} µs of CPU per report (at "
            f"{statistics.median(single.cores):.2f} cores: Python runs one thread at a time) "
            "on http.server's request and header parsing, the bearer-token lookup, JSON in and "
            "out and the handoff to the writer, which commits whatever the connections queued "
            f"meanwhile in one transaction. A batch of {BATCH} pays that per-request cost once "
            f"({us(batch)} µs per report), hence {batch_rate / single_rate:.1f}x the rate. "
            "The decision is short because a stored report wakes the publisher at once (no "
            "poll wait) and the correlation step runs no crm_mon; the host-alarm anchor starts "
            "a Python process (the alert agent) and runs crm_mon on its way. p99 of "
            f"{args.runs} runs is the slowest one.",
        ]
    )
    print(text)
    if args.write:
        write(args.write, text, BEGIN, END, "VNF error reports: ingest and decision")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
