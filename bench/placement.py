"""Over-allocation of a burst of claims: placement's default retry (the anchor) against
hakit's `allocation_conflict_retry_count = 1` (docs/placement-overallocation.md).

Each run sends REQUESTS claims of 1 VCPU from THREADS threads to three new providers of
10 VCPU, through placement's own WSGI app (hakit.lab.placement_race), run inside
lab node1 against the lab's MariaDB at its default REPEATABLE-READ isolation. A claim
that gets a concurrent-update 409 is sent again up to 4 times, as nova does.

    python -m bench.placement [--runs N] [--requests 300] [--threads 8] [--write FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.monitor import write
from hakit.lab import cloud_config, openstack, placement_race
from hakit.lab.lab import Lab

BEGIN, END = "<!-- bench:placement:begin -->", "<!-- bench:placement:end -->"
SETTINGS = {"placement default (retry 10), anchor": False, "hakit (retry 1)": True}
DATABASE = "placement_bench"


def prepare(lab: Lab, venv: Path) -> dict[str, Path]:
    """A placement database and one config directory per setting."""
    url = lab.infra_up().mysql_url
    inside = lab.netns_prefix("node1")
    openstack.create_databases(venv, url, [DATABASE], prefix=inside)
    dirs = {}
    for number, (name, safe) in enumerate(SETTINGS.items()):
        config = openstack.placement_config(
            database_url=cloud_config.database_url(url, DATABASE), safe_claims=safe
        )
        dirs[name] = lab.dir / "placement-bench" / str(number)
        openstack.write_config(dirs[name] / "placement.conf", config)
    openstack.placement_db_sync(venv, [next(iter(dirs.values())) / "placement.conf"], prefix=inside)
    return dirs


def burst(lab: Lab, venv: Path, config_dir: Path, requests: int, threads: int) -> dict[str, Any]:
    env = openstack.service_env(venv, OS_PLACEMENT_CONFIG_DIR=str(config_dir))
    done = lab.run(
        "node1",
        [
            str(venv / "bin" / "python"),
            placement_race.__file__,
            "burst",
            str(requests),
            str(threads),
        ],
        env=env,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def table(results: dict[str, list[dict[str, Any]]], requests: int, threads: int) -> str:
    lines = [
        f"{requests} claims of 1 VCPU from {threads} threads on 3 providers of 10 VCPU, "
        f"{len(next(iter(results.values())))} runs per setting, MariaDB REPEATABLE-READ.",
        "",
        "| setting | VCPU over capacity, total | runs over capacity | claims/s, median |"
        " ratio to anchor |",
        "|---|---|---|---|---|",
    ]
    anchor_rate = None
    for name, runs in results.items():
        rate = statistics.median(requests / r["seconds"] for r in runs)
        anchor_rate = anchor_rate or rate
        over = sum(r["over"] for r in runs)
        lines.append(
            f"| {name} | {over} | {sum(1 for r in runs if r['over'])} | {rate:.0f} | "
            f"{rate / anchor_rate:.2f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--write", type=Path, help="update this markdown file")
    args = parser.parse_args()
    lab = Lab()
    lab.up(nodes=3, profile="fast")
    venv = openstack.ensure_venv()
    dirs = prepare(lab, venv)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in SETTINGS}
    for _ in range(args.runs):  # alternate the settings: the same machine state for both
        for name in SETTINGS:
            results[name].append(burst(lab, venv, dirs[name], args.requests, args.threads))
    text = table(results, args.requests, args.threads)
    print(text)
    if args.write:
        write(args.write, text, BEGIN, END, "Placement: over-allocation under a burst of claims")
    return 0


if __name__ == "__main__":
    sys.exit(main())
