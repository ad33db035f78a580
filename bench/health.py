"""Health pipeline speed.

- On one machine, no cluster: the alert agent as Pacemaker runs it, and from an alert's
  own timestamp to receipt at a subscriber (outbox poll, crm_mon on a CIB file,
  classification, SOL 003 alarm, signed POST to 127.0.0.1).
- In the 3-node lab (fast profile, demo topology): `--cuts N` power cuts of a non-DC
  node; for every notification they cause (unreachable, fenced, rejoining, cleared), from
  the Pacemaker event time it carries (the alert's own microsecond timestamp) to its
  receipt by `hakit health receive` in the infra namespace.

    python -m bench.health [--runs N] [--cuts N] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.monitor import write
from hakit.lab.health import LabReceiver, dc, event_time, host_alarms, settled
from hakit.lab.lab import Lab
from hakit.ocf import cluster
from hakit.resource_agents.health.constants import LEADER_VARIABLE
from hakit.resource_agents.health.publisher import Publisher, PublisherConfig
from hakit.resource_agents.health.subscriptions import (
    Filter,
    SubscriptionRequest,
    SubscriptionStore,
    subscribe,
)
from hakit.tools.install_agents import install
from hakit.tools.topology.load import load
from hakit.tools.topology.render import render, to_text

PYTHON = "/usr/bin/python3"
TOPOLOGY = Path(__file__).resolve().parent.parent / "lab" / "demo.yaml"
BEGIN, END = "<!-- bench:health:begin -->", "<!-- bench:health:end -->"


def alert_env(outbox: Path, desc: str, sequence: int, now: float) -> dict[str, str]:
    """A node alert's environment, stamped `now`."""
    return {
        "CRM_alert_kind": "node",
        "CRM_alert_node": "node2",
        "CRM_alert_desc": desc,
        "CRM_alert_node_sequence": str(sequence),
        "CRM_alert_timestamp_epoch": str(int(now)),
        "CRM_alert_timestamp_usec": str(int(now % 1 * 1e6)),
        "hakit_outbox": str(outbox),
    }


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def alert_agent_runs(agent: Path, outbox: Path, runs: int) -> list[float]:
    """Wall time of one alert agent process, as Pacemaker starts it."""
    times = []
    for sequence in range(runs):
        began = time.perf_counter()
        env = alert_env(outbox, "lost", sequence, time.time())
        subprocess.run([PYTHON, "-IS", str(agent)], env=env, check=True)
        times.append(time.perf_counter() - began)
    return times


def cib_files(directory: Path) -> tuple[Path, Path]:
    """(placed, node2 lost) CIB files, made by crm_simulate from the demo topology."""
    loaded = load(TOPOLOGY)
    assert loaded.topology is not None  # noqa: S101 — the repository's own example
    configured, placed, lost = (directory / f"{n}.xml" for n in ("configured", "placed", "lost"))
    configured.write_text(to_text(render(loaded.topology)))
    up = [arg for n in ("node1", "node2", "node3") for arg in ("--node-up", n)]
    cluster.simulate_transition(str(configured), "--quorum", "true", *up, save=str(placed))
    with cluster.using(cluster.Runner(env={**os.environ, "CIB_file": str(placed)})):
        cluster.cib_modify('<cib dc-uuid="1"/>')
    cluster.simulate_transition(str(placed), "--node-fail", "node2", save=str(lost))
    return placed, lost


def pipeline_latencies(agent: Path, directory: Path, runs: int) -> list[float]:
    """Alert timestamp → receipt of the host alarm (lost, or joining again) by a subscriber."""
    placed, lost = cib_files(directory)
    received: dict[str, float] = {}

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.setdefault(body["id"], time.time())  # the notification id: one per change
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    outbox, subscriptions = directory / "outbox.db", directory / "subscriptions.db"
    with SubscriptionStore(str(subscriptions)) as store:
        request = SubscriptionRequest(
            f"http://127.0.0.1:{server.server_address[1]}/", Filter(), None
        )
        subscribe(store, request)
    os.environ[LEADER_VARIABLE] = "1"
    os.environ["CIB_file"] = str(placed)  # noqa: SIM112 — Pacemaker's name
    publisher = Publisher(
        PublisherConfig(
            outbox=str(outbox),
            subscriptions=str(subscriptions),
            poll_interval=0.01,
            resync_interval=30.0,
        )
    )
    thread = threading.Thread(target=publisher.run)
    thread.start()
    latencies = []
    try:
        time.sleep(0.5)
        for sequence in range(runs):
            # node2 lost, then a membership member again while Pacemaker still shows it
            # offline (joining), as a cluster sees it; then online (not measured)
            desc = "lost" if sequence % 2 == 0 else "member"
            if desc == "lost":
                os.environ["CIB_file"] = str(lost)  # noqa: SIM112
            stamp = int(time.time() * 1e6) / 1e6  # what the alert's epoch and usec say
            before = len(received)
            subprocess.run(
                [PYTHON, "-IS", str(agent)],
                env=alert_env(outbox, desc, sequence, stamp),
                check=True,
            )
            wait_for_receipt(received, before, f"alert {sequence}")
            latencies.append(max(received.values()) - stamp)
            if desc == "member":
                time.sleep(0.2)  # the fresh look that confirms the joining one
                os.environ["CIB_file"] = str(placed)  # noqa: SIM112
                before = len(received)
                online = {
                    **alert_env(outbox, "online", sequence, time.time()),
                    "CRM_alert_kind": "resource",
                }
                subprocess.run([PYTHON, "-IS", str(agent)], env=online, check=True)
                wait_for_receipt(received, before, f"alert {sequence}'s clear")
    finally:
        publisher.stop()
        thread.join()
        server.shutdown()
    return latencies


def wait_for_receipt(received: dict[str, float], before: int, what: str) -> None:
    deadline = time.time() + 10
    while len(received) == before and time.time() < deadline:
        time.sleep(0.001)
    if len(received) == before:
        raise RuntimeError(f"{what}: no notification within 10 s")


def node_cut_latencies(cuts: int) -> list[float]:
    """Event time → receipt for every notification about the cut node, over `cuts` cuts."""
    from hakit.lab import demo

    lab = Lab()
    lab.up(nodes=3, profile="fast")
    demo.configure(lab)
    receiver = LabReceiver(lab)
    receiver.start()
    latencies: list[float] = []
    try:
        wait_until(lambda: settled(lab), 180, "the demo's publisher clone")
        receiver.subscribe()
        time.sleep(6)  # the publishers' next resync reads the subscription
        for index in range(cuts):
            target = next(n for n in reversed(lab.nodes) if n != dc(lab))
            new = one_cut(lab, receiver, target)
            latencies += [e["received"] - event_time(e) for e in new]
            print(
                f"cut {index + 1} ({target}): "
                + ", ".join(f"{(e['received'] - event_time(e)) * 1e3:.0f} ms" for e in new)
            )
    finally:
        receiver.stop()
        receiver.unsubscribe()
        lab.down()
    return latencies


def one_cut(lab: Lab, receiver: LabReceiver, target: str) -> list[dict[str, Any]]:
    """Cut `target`'s power; what the receiver accepted until its alarm cleared."""
    before = len(receiver.first_acceptances())
    lab.cut(target)
    wait_until(
        lambda: cleared(receiver.first_acceptances()[before:], target),
        180,
        f"{target} fenced, back and its alarm cleared",
    )
    wait_until(lambda: settled(lab), 180, "the cluster settled")
    return receiver.first_acceptances()[before:]


def cleared(entries: list[dict[str, Any]], host: str) -> bool:
    """The host's alarm went through FENCED and ended."""
    alarms = host_alarms(entries, host)
    return ("AlarmNotification", "HOST_DOWN_FENCED") in alarms and alarms[-1][0] == (
        "AlarmClearedNotification"
    )


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {timeout:g} s: {what}")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--cuts", type=int, default=20, help="lab node cuts (0: none)")
    parser.add_argument("--write", type=Path, help="update this markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hakit-bench-health-") as tmp:
        root = Path(tmp)
        install(python=PYTHON, root=root / "ocf")
        agent = root / "ocf" / "libexec" / "hakit" / "alert"
        alert_agent_runs(agent, root / "warm.db", 3)
        agent_p50, agent_p99 = percentiles(alert_agent_runs(agent, root / "agent.db", args.runs))
        pipe_p50, pipe_p99 = percentiles(pipeline_latencies(agent, root, args.runs))
    lab_rows = []
    if args.cuts:
        cut = node_cut_latencies(args.cuts)
        cut_p50, cut_p99 = percentiles(cut)
        lab_rows = [
            f"| Pacemaker event time → notification received, lab node cuts "
            f"({args.cuts} cuts, {len(cut)} notifications) | {cut_p50 * 1e3:.1f} ms "
            f"| {cut_p99 * 1e3:.1f} ms |"
        ]
    text = "\n".join(
        [
            f"{args.runs} runs each, on {os.cpu_count()} CPUs.",
            "",
            "| measure | p50 | p99 |",
            "|---|---|---|",
            f"| alert agent process (`python3 -IS`, one outbox write) | {agent_p50 * 1e3:.1f} ms "
            f"| {agent_p99 * 1e3:.1f} ms |",
            "| alert timestamp → host alarm received (CIB file, 127.0.0.1) "
            f"| {pipe_p50 * 1e3:.1f} ms | {pipe_p99 * 1e3:.1f} ms |",
            *lab_rows,
            "",
            "Goal: p99 < 200 ms from the Pacemaker event to the subscriber (Doctor's: < 1 s).",
        ]
    )
    print(text)
    if args.write:
        write(args.write, text, BEGIN, END, "Health: alert to subscriber")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
