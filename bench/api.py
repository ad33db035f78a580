"""The subscriptions API: keep-alive request latency, hakit's server (TCP_NODELAY) against
the anchor, the same server with Nagle's algorithm left on (as http.server has it).

    python -m bench.api [--requests N] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.monitor import write
from hakit.resource_agents.health.api import ApiServer, Handler
from hakit.resource_agents.health.subscriptions import SubscriptionStore

BEGIN, END = "<!-- bench:api:begin -->", "<!-- bench:api:end -->"


class NagleHandler(Handler):
    disable_nagle_algorithm = False


def latencies(store: str, token: str, requests: int, handler: type[Handler]) -> list[float]:
    """Milliseconds per authenticated GET, one keep-alive connection."""
    server = ApiServer("127.0.0.1", 0, store_path=store)
    server.RequestHandlerClass = handler
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    times = []
    try:
        for _ in range(requests):
            began = time.perf_counter()
            connection.request(
                "GET", "/vnffm/v1/subscriptions", headers={"Authorization": f"Bearer {token}"}
            )
            connection.getresponse().read()
            times.append((time.perf_counter() - began) * 1000)
    finally:
        connection.close()
        server.shutdown()
        server.server_close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "subscriptions.db")
        with SubscriptionStore(store) as subscriptions:
            token = subscriptions.add_token("bench")
        anchor = statistics.median(latencies(store, token, args.requests, NagleHandler))
        ours = statistics.median(latencies(store, token, args.requests, Handler))
    text = "\n".join(
        [
            f"{time.strftime('%Y-%m-%d')}, {args.requests} keep-alive GETs each, one "
            "connection, 127.0.0.1.",
            "",
            "| server | median ms per request | vs anchor |",
            "|---|---:|---:|",
            f"| anchor: the same server, Nagle's algorithm on | {anchor:.2f} | 1.0x |",
            f"| hakit (TCP_NODELAY) | {ours:.2f} | {anchor / ours:.0f}x faster |",
            "",
            f"Goal: a keep-alive request under 5 ms — {ours:.2f} ms.",
        ]
    )
    print(text)
    if args.write:
        write(args.write, text, BEGIN, END, "Subscriptions API: keep-alive requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
