"""`make demo`: the lab, a small real HA layout, a power cut, fencing and recovery.

Until the topology generator lands, the CIB is configured with cibadmin.
"""

from __future__ import annotations

import time

from hakit.tools.lab.errors import LabError
from hakit.tools.lab.lab import Lab
from hakit.tools.lab.timeline import failover_events

WEB, WORKER = "demo-web", "demo-worker"


def _primitive(rsc: str, params: dict[str, str], interval: str) -> str:
    nvpairs = "".join(f'<nvpair id="{rsc}-ia-{k}" name="{k}" value="{v}"/>'
                      for k, v in params.items())  # fmt: skip
    return (
        f'<primitive id="{rsc}" class="ocf" provider="hakit" type="service">'
        f'<instance_attributes id="{rsc}-ia">{nvpairs}</instance_attributes>'
        f'<operations><op id="{rsc}-monitor-{interval}" name="monitor" interval="{interval}" '
        f'timeout="20s"/><op id="{rsc}-monitor-ready" name="monitor" interval="11s" '
        f'timeout="20s"><instance_attributes id="{rsc}-monitor-ready-ia"><nvpair '
        f'id="{rsc}-monitor-ready-level" name="OCF_CHECK_LEVEL" value="10"/>'
        "</instance_attributes></op></operations></primitive>"
    )


def configure(lab: Lab) -> None:
    """An active/passive web server and a worker clone, if not there yet."""
    first = lab.nodes[0]
    interval = lab.profile.monitor_interval
    found = lab.run(first, ["cibadmin", "--query", "--xpath", f"//primitive[@id='{WEB}']"],
                    check=False)  # fmt: skip
    if found.returncode == 0:
        return
    web = _primitive(
        WEB,
        {
            "binary": "/usr/bin/python3",
            "ready_port": "8080",
            "arguments": "-m http.server --bind 0.0.0.0 8080",
        },
        interval,
    )
    worker = _primitive(WORKER, {"binary": "sleep", "arguments": "infinity"}, interval)
    for xml in (web, f'<clone id="{WORKER}-clone">{worker}</clone>'):
        lab.run(first, ["cibadmin", "--create", "--scope", "resources", "--xml-text", xml])


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
    return lab.run(node, ["crm_mon", "--one-shot", "--inactive"], check=False).stdout


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
    print(f"== what happened (from the cluster's logs; t=0 is the cut at "
          f"{time.strftime('%H:%M:%S', time.localtime(cut_at))})")  # fmt: skip
    for event in failover_events(logs, since=cut_at - 0.5, target=victim, resource=WEB):
        print(f"   +{event.at - cut_at:6.3f}s  {event.what:<45} (log of {event.node})")
    print(f"== the cluster now (seen from {survivor}); {WEB} runs on {now}\n"
          f"{crm_mon(lab, survivor)}")  # fmt: skip
    print(
        "The lab keeps running. Explore: `.venv/bin/hakit lab status`, "
        "`.venv/bin/hakit lab exec node1 -- crm_mon -1`, `... lab cut node2`; "
        "take it down: `.venv/bin/hakit lab down [--purge]`."
    )
    return 0
