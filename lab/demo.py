"""`make demo`: the lab, a small real HA layout, a power cut, fencing and recovery.

The layout is a YAML topology (demo.yaml beside this file), applied as
`hakit topology apply` does, in this process with node1's runner.
"""

from __future__ import annotations

import time
from pathlib import Path

from hakit.lab import cib
from hakit.lab.errors import LabError
from hakit.lab.lab import Lab
from hakit.lab.timeline import failover_events
from hakit.ocf import cluster

WEB = "web"
TOPOLOGY = Path(__file__).with_name("demo.yaml")


def configure(lab: Lab) -> None:
    """Apply the demo topology (idempotent), the cluster programs inside the first node."""
    change = cib.apply_file(lab, TOPOLOGY, node=lab.nodes[0])
    print(f"== hakit topology apply {TOPOLOGY.name}\n{cib.summary(change)}")


def running_on(lab: Lab, rsc: str, exclude: str = "") -> str | None:
    for node in lab.nodes:
        if node == exclude:
            continue
        status = lab.cluster_status(node, timeout=5)
        if status is not None and status.dc:
            nodes = status.running_on(rsc)
            return nodes[0] if nodes else None
    return None


def crm_mon(lab: Lab, node: str) -> str:
    """crm_mon's one-shot text as `node` sees it."""
    with lab.on(node):
        return cluster.status_text()


def main() -> int:
    lab = Lab()
    print("== hakit lab up (3 nodes, fast profile)")
    timings = lab.up(nodes=3, profile="fast")
    print(f"   lab ready in {timings['ready']:.1f}s")
    configure(lab)
    deadline = time.monotonic() + 90
    while (victim := running_on(lab, WEB)) is None:
        if time.monotonic() > deadline:
            raise LabError(f"{WEB} did not start; see `hakit lab exec node1 -- crm_mon -1`")
        time.sleep(0.5)
    time.sleep(2)
    survivor = next(n for n in lab.nodes if n != victim)
    print(f"== the cluster (seen from {survivor})\n{crm_mon(lab, survivor)}")
    print(f"== power cut of {victim}, which runs {WEB}")
    cut_at = time.time()
    lab.cut(victim)
    deadline = time.monotonic() + 120
    while (now := running_on(lab, WEB, exclude=victim)) in (None, victim):
        if time.monotonic() > deadline:
            raise LabError(f"{WEB} was not recovered within 120s")
        time.sleep(0.2)
    time.sleep(3)
    logs = {n: lab.node_dir(n) / "var-log-pacemaker" / "pacemaker.log" for n in lab.nodes}
    print(
        f"== what happened (from the cluster's logs; t=0 is the cut at "
        f"{time.strftime('%H:%M:%S', time.localtime(cut_at))})"
    )
    for event in failover_events(logs, since=cut_at - 0.5, target=victim, resource=WEB):
        print(f"   +{event.at - cut_at:6.3f}s  {event.what:<45} (log of {event.node})")
    print(
        f"== the cluster now (seen from {survivor}); {WEB} runs on {now}\n"
        f"{crm_mon(lab, survivor)}"
    )
    print(
        "The lab keeps running. Explore: `.venv/bin/hakit lab status`, "
        "`.venv/bin/hakit lab exec node1 -- crm_mon -1`, `... lab cut node2`; "
        "take it down: `.venv/bin/hakit lab down [--purge]`."
    )
    return 0
