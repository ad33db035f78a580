"""The mini cloud in the lab (`hakit lab cloud up`): boots per second with 1, 2 and 3
active nova-schedulers (the anchor: one scheduler), and the time from a compute node's
power cut to its servers ACTIVE on the other nodes (fencing, then force-down and
evacuation by the health publisher).

Each burst sends BOOTS servers of 1 VCPU at once through the three nova-apis (capacity
3 x 10 VCPU), waits until each is ACTIVE or ERROR, and deletes them. The scheduler count
is the clone's clone-max.

    python -m bench.minicloud [--runs 3] [--boots 30] [--write FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.monitor import write
from hakit.tools.drill.runner import wait_for
from hakit.tools.lab import cloud
from hakit.tools.lab.lab import Lab

BEGIN, END = "<!-- bench:minicloud:begin -->", "<!-- bench:minicloud:end -->"
NODES = ("node1", "node2", "node3")
SCHEDULERS = "nova-scheduler-clone"


def set_schedulers(lab: Lab, count: int | None) -> None:
    """clone-max of the scheduler clone (None: every node)."""
    meta = ["--set-parameter", "clone-max", "--parameter-value", str(count)] if count else \
        ["--delete-parameter", "clone-max"]  # fmt: skip
    lab.run("node1", ["crm_resource", "--resource", SCHEDULERS, "--meta", *meta], check=False)
    wanted = count or len(NODES)
    wait_for(lambda: len(cloud.running(lab)[SCHEDULERS]) == wanted, 180, f"{wanted} schedulers")
    time.sleep(5)  # the new ones consume their queue


def burst(lab: Lab, boots: int) -> tuple[float, int]:
    """(seconds from the first POST until every server settled, ACTIVE count)."""
    apis = [cloud.compute_api(lab, node, timeout=180) for node in NODES]

    def post_all() -> list[str]:
        with ThreadPoolExecutor(boots) as pool:
            return list(pool.map(lambda i: cloud.boot(apis[i % 3], f"b-{i:03d}"), range(boots)))

    began = time.monotonic()
    ids = lab.as_client(post_all)

    def statuses() -> list[str]:
        return [status for _, status in cloud.placed(lab, ids).values()]

    wait_for(lambda: set(statuses()) <= {"ACTIVE", "ERROR"}, 600, "every server ACTIVE or ERROR")
    seconds = time.monotonic() - began
    active = statuses().count("ACTIVE")
    cloud.delete_servers(lab)
    return seconds, active


def power_cut(lab: Lab) -> float:
    """Seconds from node3's power cut to its three servers ACTIVE on node1/node2."""
    api = cloud.compute_api(lab, "node1")
    ids = lab.as_client(lambda: [cloud.boot(api, f"cut-{i}", "node3") for i in range(3)])
    wait_for(lambda: set(cloud.placed(lab, ids).values()) == {("node3", "ACTIVE")}, 180,
             "servers ACTIVE on node3")  # fmt: skip
    began = time.monotonic()
    lab.cut("node3")
    elsewhere = {("node1", "ACTIVE"), ("node2", "ACTIVE")}
    wait_for(lambda: set(cloud.placed(lab, ids).values()) <= elsewhere, 300,
             "servers ACTIVE elsewhere")  # fmt: skip
    seconds = time.monotonic() - began
    lab.restore()
    lab.wait_until_online(timeout=180)
    wait_for(lambda: cloud.compute_states(lab).get("node3") == "up", 300, "node3's nova-compute up")
    cloud.delete_servers(lab)
    return seconds


def table(rates: dict[int, list[float]], cuts: list[float], boots: int) -> str:
    anchor = statistics.median(rates[1])
    lines = [f"{boots} boots of 1 VCPU at once through 3 nova-apis (capacity 30 VCPU), "
             f"{len(rates[1])} runs per setting; the anchor is one scheduler.", "",
             "| active nova-schedulers | ACTIVE servers/s, median | max | ratio to anchor |",
             "|---|---|---|---|"]  # fmt: skip
    for count, values in rates.items():
        median = statistics.median(values)
        lines.append(f"| {count} | {median:.2f} | {max(values):.2f} | {median / anchor:.2f} |")
    lines += ["", f"Power cut of a compute node → its 3 servers ACTIVE on the others "
              f"(fencing, force-down, evacuation): median {statistics.median(cuts):.1f} s, "
              f"max {max(cuts):.1f} s over {len(cuts)} runs."]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--boots", type=int, default=30)
    parser.add_argument("--write", type=Path, help="update this markdown file")
    args = parser.parse_args()
    lab = Lab()
    lab.up(nodes=3, profile="fast")
    cloud.up(lab, compute=True, timeout=900)
    wait_for(lambda: cloud.compute_states(lab) == dict.fromkeys(NODES, "up"), 300,
             "three computes up")  # fmt: skip
    cloud.ensure_flavor(lab)
    cloud.delete_servers(lab)
    rates: dict[int, list[float]] = {1: [], 2: [], 3: []}
    try:
        for _ in range(args.runs):  # alternate: the same machine state for each setting
            for count, values in rates.items():
                set_schedulers(lab, count)
                seconds, active = burst(lab, args.boots)
                values.append(active / seconds)
                print(f"{count} scheduler(s): {active} ACTIVE in {seconds:.1f}s", flush=True)
        set_schedulers(lab, None)
        cuts = [power_cut(lab) for _ in range(args.runs)]
    finally:
        set_schedulers(lab, None)
    text = table(rates, cuts, args.boots)
    print(text)
    if args.write:
        write(args.write, text, BEGIN, END, "Mini cloud: boots per scheduler count, power cut")
    return 0


if __name__ == "__main__":
    sys.exit(main())
