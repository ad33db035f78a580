"""Ansible deployment of a 3-node cluster onto a bare lab, in one run: converge from bare
nodes (cluster stopped, nothing installed), the re-run on the converged cluster, the
check-mode run, and a fourth node joining; the anchor is Ansible's own floor on the same
nodes (facts and a ping, no change), so the ratios say what hakit's role costs on top.
linux-system-roles/ha_cluster cannot run here (it drives pcsd through systemd).

    python -m bench.ansible [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.monitor import write
from hakit.lab.deploy import Deployment, Run, wheelhouse
from hakit.lab.lab import Lab
from tests.unit.test_packaging import build_wheel

BEGIN, END = "<!-- bench:ansible:begin -->", "<!-- bench:ansible:end -->"
FLOOR = """- hosts: hakit_cluster
  gather_facts: true
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def timed(deployment: Deployment, playbook: str, *extra: str) -> Run:
    run = deployment.playbook(playbook, *extra)
    if run.returncode != 0:
        raise SystemExit(f"{playbook} {' '.join(extra)} failed:\n{run.tail()}")
    return run


def measure(workdir: Path) -> dict[str, float]:
    lab = Lab()
    if lab.state_exists() and any(lab.powered(n) for n in lab.nodes):
        raise SystemExit("a lab is running: take it down first (hakit lab down)")
    wheel = build_wheel(workdir)
    deployment = Deployment(lab, workdir, wheel, wheelhouse(wheel, workdir / "wheelhouse"))
    began = time.monotonic()
    lab.up(nodes=4, profile="fast", bare=True)
    figures = {"bare lab up (4 nodes)": time.monotonic() - began}
    try:
        deployment.write(["node1", "node2", "node3"])
        floor = workdir / "floor.yml"
        floor.write_text(FLOOR)
        figures["anchor: facts + ping"] = timed(deployment, str(floor)).seconds
        figures["converge from bare"] = timed(deployment, "site.yml").seconds
        figures["re-run (changed=0)"] = timed(deployment, "site.yml").seconds
        figures["check mode --diff"] = timed(deployment, "site.yml", "--check", "--diff").seconds
        deployment.write(["node1", "node2", "node3", "node4"])
        figures["add a fourth node"] = timed(deployment, "site.yml").seconds
    finally:
        lab.down(purge=True)
    return figures


def table(figures: dict[str, float]) -> str:
    floor = figures["anchor: facts + ping"]
    rows = "".join(
        f"| {name} | {seconds:.1f} | {seconds / floor:.1f}x |\n"
        for name, seconds in figures.items()
    )
    converge, rerun = figures["converge from bare"], figures["re-run (changed=0)"]
    return (
        f"playbooks/site.yml on a bare lab (nodes over SSH from a controller namespace), "
        f"{time.strftime('%Y-%m-%d')}, 2 cores; seconds, and the ratio to the anchor "
        "(Ansible's floor: facts and a ping on the same 3 nodes).\n\n"
        "| run | seconds | x anchor |\n|---|---:|---:|\n"
        f"{rows}\n"
        f"Goals: converge ≤ 300 s — {converge:.0f} s; re-run ≤ 60 s — {rerun:.0f} s."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="update this markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hakit-bench-") as tmp:
        text = table(measure(Path(tmp)))
    print(text)
    if args.write:
        write(args.write, text, BEGIN, END, "Ansible: converge and re-run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
