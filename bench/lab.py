"""Lab bring-up time and power-cut failover, default vs fast profile, in one run.

For each profile: `hakit lab down --purge`, then `up` (timed), the demo layout, then
N power cuts of the node running the active/passive resource. Detection, fencing and
"running elsewhere" come from the cluster's own logs (lab/timeline.py).

    python -m bench.lab [--runs 5] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from bench.monitor import write
from hakit.lab.demo import WEB, configure, running_on
from hakit.lab.lab import Lab
from hakit.lab.timeline import failover_events

BEGIN, END = "<!-- bench:lab:begin -->", "<!-- bench:lab:end -->"
STEPS = ("lost from the membership", "fencing of", "started on")


def settle(lab: Lab, timeout: float = 180) -> str:
    """Wait until all nodes are online and the A/P resource runs; return its node."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = lab.cluster_status(lab.nodes[0], timeout=5)
        if status and status.dc and all(n.online for n in status.nodes):
            node = running_on(lab, WEB)
            clones = status.running_on("worker-clone")
            if node and len(clones) == len(lab.nodes):
                return node
        time.sleep(0.5)
    raise SystemExit("the lab did not settle")


def one_cut(lab: Lab) -> dict[str, float]:
    victim = settle(lab)
    time.sleep(2)
    cut_at = time.time()
    lab.cut(victim)
    deadline = time.monotonic() + 120
    while running_on(lab, WEB, exclude=victim) in (None, victim):
        if time.monotonic() > deadline:
            raise SystemExit(f"{WEB} not recovered")
        time.sleep(0.2)
    time.sleep(2)
    logs = {n: lab.node_dir(n) / "var-log-pacemaker" / "pacemaker.log" for n in lab.nodes}
    events = failover_events(logs, since=cut_at - 0.5, target=victim, resource=WEB)
    figures = {}
    for label, key in (
        ("detected", "lost from the membership"),
        ("fenced", "complete"),
        ("running elsewhere", "started on"),
    ):
        hit = next((e for e in events if key in e.what), None)
        if hit is None:
            raise SystemExit(f"no '{key}' in the logs: {events}")
        figures[label] = hit.at - cut_at
    return figures


def measure(profile: str, runs: int) -> tuple[float, list[dict[str, float]]]:
    lab = Lab()
    lab.down(purge=True)
    lab = Lab()
    began = time.monotonic()
    lab.up(nodes=3, profile=profile)
    up_time = time.monotonic() - began
    configure(lab)
    cuts = []
    for index in range(runs):
        cuts.append(one_cut(lab))
        print(
            f"{profile} cut {index + 1}: "
            + ", ".join(f"{k} +{v:.2f}s" for k, v in cuts[-1].items())
        )
    return up_time, cuts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    results = {profile: measure(profile, args.runs) for profile in ("default", "fast")}
    Lab().down()
    rows = [
        f"3-node lab, {args.runs} power cuts of the node running the active/passive "
        f"resource per profile, {time.strftime('%Y-%m-%d')}; medians (max), seconds after "
        "the cut, from the cluster's logs.",
        "",
        "| profile | lab up from nothing | detected | fenced | running elsewhere |",
        "|---|---:|---:|---:|---:|",
    ]
    for profile, (up_time, cuts) in results.items():
        cells = [
            f"{statistics.median(c[k] for c in cuts):.2f} ({max(c[k] for c in cuts):.2f})"
            for k in ("detected", "fenced", "running elsewhere")
        ]
        rows.append(f"| {profile} | {up_time:.1f} | " + " | ".join(cells) + " |")
    fast = statistics.median(c["running elsewhere"] for c in results["fast"][1])
    rows += [
        "",
        f"Goals: lab up < 15 s with fast — {results['fast'][0]:.1f} s; resource "
        f"running elsewhere ≤ 5 s after a power cut with fast — {fast:.2f} s.",
    ]
    text = "\n".join(rows)
    print(text)
    if args.write:
        write(args.write, text, BEGIN, END, "Lab: bring-up and power-cut failover")
    return 0


if __name__ == "__main__":
    sys.exit(main())
