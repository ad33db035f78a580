"""The mini cloud in the lab (`hakit lab cloud up`): boots per second with 1, 2 and 3
active nova-schedulers (the anchor: one scheduler), the VCPU over-allocated by a burst
with placement's default claim retry and with hakit's setting, and the time from a
compute node's power cut to its servers ACTIVE on the other nodes (fencing, then
force-down and evacuation by the health publisher).

Each burst is the scheduler drill's (hakit.lab.drill.scheduler): BOOTS servers of 1 VCPU
at once through the three nova-apis (capacity 3 x `cloud_config.COMPUTE_VCPUS`), until each is
ACTIVE or ERROR; the scheduler count is the clone's clone-max.

    python -m bench.minicloud [--runs 3] [--boots N (default: the capacity)] [--write FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from bench.monitor import write
from hakit.lab import cloud, cloud_access, cloud_config
from hakit.lab.drill import scheduler
from hakit.lab.drill.environment import LabEnvironment
from hakit.lab.drill.runner import wait_for
from hakit.lab.lab import Lab

BEGIN, END = "<!-- bench:minicloud:begin -->", "<!-- bench:minicloud:end -->"
NODES = ("node1", "node2", "node3")
UNSAFE_BOOTS = 100


def power_cut(lab: Lab) -> float:
    """Seconds from node3's power cut to its three servers ACTIVE on node1/node2."""
    api = cloud_access.compute_api(lab, "node1")
    ids = lab.as_client(lambda: [cloud.boot(api, f"cut-{i}", "node3") for i in range(3)])
    wait_for(
        lambda: set(cloud.placed(lab, ids).values()) == {("node3", "ACTIVE")},
        180,
        "servers ACTIVE on node3",
    )
    began = time.monotonic()
    lab.cut("node3")
    elsewhere = {("node1", "ACTIVE"), ("node2", "ACTIVE")}
    wait_for(
        lambda: set(cloud.placed(lab, ids).values()) <= elsewhere, 300, "servers ACTIVE elsewhere"
    )
    seconds = time.monotonic() - began
    lab.restore()
    lab.wait_until_online(timeout=180)
    wait_for(lambda: cloud.compute_states(lab).get("node3") == "up", 300, "node3's nova-compute up")
    cloud.delete_servers(lab)
    return seconds


def table(
    rates: dict[int, list[float]], over: dict[str, list[int]], cuts: list[float], boots: int
) -> str:
    anchor = statistics.median(rates[1])
    lines = [
        f"{boots} boots of 1 VCPU at once through 3 nova-apis "
        f"(capacity {3 * cloud_config.COMPUTE_VCPUS} VCPU), "
        f"{len(rates[1])} runs per setting; the anchor is one scheduler.",
        "",
        "| active nova-schedulers | ACTIVE servers/s, median | max | ratio to anchor |",
        "|---|---|---|---|",
    ]
    for count, values in rates.items():
        median = statistics.median(values)
        lines.append(f"| {count} | {median:.2f} | {max(values):.2f} | {median / anchor:.2f} |")
    lines += [
        "",
        f"VCPU over-allocated (used beyond capacity, summed over the 3 providers) by "
        f"{UNSAFE_BOOTS} boots through 3 schedulers, per run:",
        "",
        "| placement.conf | runs | over-allocated VCPU |",
        "|---|---|---|",
    ]
    for setting, counts in over.items():
        lines.append(f"| {setting} | {len(counts)} | {', '.join(map(str, counts))} |")
    lines += [
        "",
        f"Power cut of a compute node → its 3 servers ACTIVE on the others "
        f"(fencing, force-down, evacuation): median {statistics.median(cuts):.1f} s, "
        f"max {max(cuts):.1f} s over {len(cuts)} runs.",
    ]
    return "\n".join(lines)


def over_allocation(env: LabEnvironment, runs: int) -> dict[str, list[int]]:
    """Over-allocated VCPU per burst, placement's default retry and hakit's setting."""
    over: dict[str, list[int]] = {}
    for safe, setting in (
        (False, "placement's default (retry 10)"),
        (True, "hakit (allocation_conflict_retry_count = 1)"),
    ):
        scheduler.set_placement_claims(env.lab, safe=safe)
        options = scheduler.BurstOptions(3, UNSAFE_BOOTS, unsafe=not safe)
        over[setting] = [scheduler.run_burst(env, options).over_allocated for _ in range(runs)]
    return over


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--boots", type=int, default=3 * cloud_config.COMPUTE_VCPUS)
    parser.add_argument("--write", type=Path, help="update this markdown file")
    args = parser.parse_args()
    lab = Lab()
    lab.up(nodes=3, profile="fast")
    cloud.up(lab, compute=True, timeout=900)
    wait_for(
        lambda: cloud.compute_states(lab) == dict.fromkeys(NODES, "up"), 300, "three computes up"
    )
    cloud.ensure_flavor(lab)
    cloud.delete_servers(lab)
    env = LabEnvironment(lab)
    rates: dict[int, list[float]] = {1: [], 2: [], 3: []}
    try:
        for _ in range(args.runs):  # alternate: the same machine state for each setting
            for count, values in rates.items():
                result = scheduler.run_burst(env, scheduler.BurstOptions(count, args.boots))
                values.append(result.statuses.get("ACTIVE", 0) / result.seconds)
                print(
                    f"{count} scheduler(s): {result.statuses} in {result.seconds:.1f}s", flush=True
                )
        over = over_allocation(env, args.runs)
        print(f"over-allocated VCPU: {over}", flush=True)
        scheduler.set_schedulers(lab, None)
        cuts = [power_cut(lab) for _ in range(args.runs)]
    finally:
        scheduler.set_placement_claims(lab, safe=True)
        scheduler.set_schedulers(lab, None)
    text = table(rates, over, cuts, args.boots)
    print(text)
    if args.write:
        write(args.write, text, BEGIN, END, "Mini cloud: boots per scheduler count, power cut")
    return 0


if __name__ == "__main__":
    sys.exit(main())
