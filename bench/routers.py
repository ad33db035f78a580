"""Router HA watch: detection of a dual master and false alarms over planned failovers,
with real keepalived laid out as neutron's L3 agents lay it out (hakit.lab.routers: 3
agent hosts, 4 routers, neutron's default advert_int of 2 s).

- dual master: one host's HA port stops forwarding; from the cut, from the moment the
  data plane shows two masters (keepalived's own takeover, the anchor: no watcher can
  see a dual master before it exists) to the alarm, and from the fix to the clear;
- planned failovers: the active keepalived stopped (SIGTERM), a standby takes over, the
  stopped one started again; alarms raised meanwhile (goal 0);
- a reading: one `ip -all netns exec` per host against one `ip -n NS` per router.

    python -m bench.routers [--runs N] [--failovers N] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.monitor import write
from hakit.lab.routers import RouterLab
from hakit.resource_agents.health.routers import (
    NAMESPACE_PREFIX,
    RouterAlarm,
    RouterWatch,
    graces,
)

BEGIN, END = "<!-- bench:routers:begin -->", "<!-- bench:routers:end -->"
ADVERT = 2
POLL = 0.5


def until(check: Callable[[], bool], timeout: float = 60) -> float:
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            raise SystemExit(f"not within {timeout:g}s")
        time.sleep(0.05)
    return time.monotonic()


class Watcher(threading.Thread):
    """The watch polling every host every POLL seconds, its alarms kept."""

    def __init__(self, lab: RouterLab) -> None:
        super().__init__(daemon=True)
        self.lab, self.watch = lab, RouterWatch(advert_interval=ADVERT)
        self.current: list[RouterAlarm] = []
        self.raised: list[RouterAlarm] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.current = self.watch.observe(self.lab.readings(), time.monotonic())
            self.raised += self.current
            self.stopped.wait(POLL)


def settled(lab: RouterLab) -> None:
    until(lambda: all(len(lab.active_hosts(r)) == 1 for r in lab.router_ids()), 120)


def dual_master(lab: RouterLab, watcher: Watcher, router: str) -> tuple[float, float, float]:
    """(cut → two masters, two masters → alarm, fix → cleared), seconds."""
    settled(lab)
    (active,) = lab.active_hosts(router)
    standby = next(h for h in range(1, lab.hosts + 1) if h != active)
    cut = time.monotonic()
    lab.cut(router, standby)
    try:
        both = until(lambda: len(lab.active_hosts(router)) == 2)
        alarmed = until(lambda: any(a.kind == "ROUTER_SPLIT_BRAIN" for a in watcher.current))
    finally:
        lab.cut(router, standby, cut=False)
    fixed = time.monotonic()
    cleared = until(lambda: not watcher.current)
    return both - cut, alarmed - both, cleared - fixed


def planned_failovers(lab: RouterLab, count: int) -> int:
    """`count` planned failovers spread over the routers at once; how many were made."""
    made: list[int] = []

    def fail_over(router: str, times: int) -> None:
        for _ in range(times):
            (active,) = lab.active_hosts(router)
            instance = lab.instance(router, active)
            lab.stop_keepalived(instance)
            until(lambda: len(lab.active_hosts(router)) == 1)
            lab.start_keepalived(instance)
            made.append(1)

    routers = lab.router_ids()
    workers = [threading.Thread(target=fail_over, args=(r, count // len(routers))) for r in routers]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(made)


def reading_seconds(lab: RouterLab, runs: int = 20) -> tuple[float, float]:
    """Median seconds to read one host: one command for every namespace, and one per
    router namespace."""
    names = [NAMESPACE_PREFIX + r for r in lab.router_ids()]
    ours, naive = [], []
    for _ in range(runs):
        began = time.perf_counter()
        lab.readings()
        ours.append((time.perf_counter() - began) / lab.hosts)
        began = time.perf_counter()
        for name in names:
            lab.on_host(1, "ip", "-n", name, "-o", "-4", "addr", "show")
        naive.append(time.perf_counter() - began)
    return statistics.median(ours), statistics.median(naive)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="dual masters injected")
    parser.add_argument("--failovers", type=int, default=100)
    parser.add_argument("--write", type=Path, help="update this markdown file")
    args = parser.parse_args()
    lab = RouterLab(hosts=3, routers=4, advert_interval=ADVERT)
    lab.up()
    watcher = Watcher(lab)
    try:
        settled(lab)
        ours, naive = reading_seconds(lab)
        watcher.start()
        runs = [dual_master(lab, watcher, lab.router_ids()[i % 4]) for i in range(args.runs)]
        settled(lab)
        watcher.raised.clear()
        made = planned_failovers(lab, args.failovers)
        time.sleep(graces(ADVERT)["ROUTER_NO_ACTIVE"] + 1)  # one left would be raised by now
        false_alarms = len({(a.router, a.kind, a.since) for a in watcher.raised})
    finally:
        watcher.stopped.set()
        watcher.join(timeout=10)
        lab.down()
    takeover = [r[0] for r in runs]
    detection = [r[1] for r in runs]
    from_cut = [r[0] + r[1] for r in runs]
    cleared = [r[2] for r in runs]

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} s | {max(values):.1f} s"

    text = "\n".join(
        [
            f"3 agent hosts, 4 routers, advert_int {ADVERT} s (neutron's default), watch "
            f"polling every {POLL} s; {args.runs} dual masters, {made} planned failovers.",
            "",
            "| measure | median | max |",
            "|---|---|---|",
            f"| anchor: the cut → two masters (keepalived's own takeover) | {cell(takeover)} |",
            f"| two masters → ROUTER_SPLIT_BRAIN raised | {cell(detection)} |",
            f"| the cut → alarm | {cell(from_cut)} |",
            f"| the fix → alarm cleared | {cell(cleared)} |",
            f"| reading a host: one `ip -all netns exec` | {ours * 1e3:.0f} ms | |",
            f"| reading a host: `ip -n NS` per router (4) | {naive * 1e3:.0f} ms | |",
            "",
            f"Detection after the dual master exists: "
            f"{statistics.median(detection) / statistics.median(takeover):.2f}x the anchor "
            f"(goal ≤ 10 s: {max(detection):.1f} s). False alarms over {made} planned "
            f"failovers: {false_alarms} (goal 0).",
        ]
    )
    print(text)
    if args.write:
        write(args.write, text, BEGIN, END, "Router HA watch")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
