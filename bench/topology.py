"""Topology speed: hakit render + validate vs building the same CIB with `pcs -f`, and a
large topology (32 nodes, 500 resources, 1,000 constraints) rendered and RNG-checked.

    python -m bench.topology [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.monitor import write
from hakit.ocf import cluster
from hakit.tools.topology import model
from hakit.tools.topology.export import pcs_script
from hakit.tools.topology.importer import to_yaml
from hakit.tools.topology.load import load
from hakit.tools.topology.render import render
from hakit.tools.topology.validate import relaxng, validate

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "openstack.yaml"
BEGIN, END = "<!-- bench:topology:begin -->", "<!-- bench:topology:end -->"


def large() -> model.Topology:
    nodes = [model.Node(name=f"node{i}") for i in range(1, 33)]
    resources = [
        model.Resource(
            name=f"rsc{i}",
            agent="ocf:heartbeat:Dummy",
            params={"fake": str(i)},
            ops=[model.Op(name="monitor", interval="10s")],
        )
        for i in range(500)
    ]
    locations = [
        model.Location(resource=f"rsc{i}", node=f"node{i % 32 + 1}", score="100")
        for i in range(500)
    ]
    orders = [model.Order(first=f"rsc{i}", then=f"rsc{i + 1}", kind="Optional") for i in range(499)]
    colocation = [model.Colocation(resource="rsc0", with_="rsc499", score="-100")]
    return model.Topology(
        cluster=model.Cluster(name="large"),
        nodes=nodes,
        resources=resources,
        constraints=model.Constraints(locations=locations, orders=orders, colocations=colocation),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    began = time.perf_counter()
    loaded = validate(EXAMPLE, agents=False)  # agent metadata needs the lab's fence agent
    render(loaded.topology)  # type: ignore[arg-type]
    hakit_s = time.perf_counter() - began
    topology = load(EXAMPLE).topology
    if topology is None:
        raise SystemExit(f"{EXAMPLE} does not load")
    with tempfile.TemporaryDirectory() as tmp:
        cib = Path(tmp) / "cib.xml"
        began = time.perf_counter()
        cib.write_text(cluster.empty_cib())
        commands = pcs_script(topology, str(cib)).splitlines()
        commands = [line for line in commands if not line.startswith("#")]
        for line in commands:
            words = shlex.split(line)
            if words[3] == "stonith":  # fence_hakit_lab exists only while a lab runs
                words.insert(3, "--force")
            subprocess.run(words, capture_output=True, check=False)
        pcs_s = time.perf_counter() - began
    big = large()
    began = time.perf_counter()
    cib_xml = render(big)
    valid = relaxng().validate(cib_xml)
    large_s = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as tmp:
        big_file = Path(tmp) / "large.yaml"
        big_file.write_text(to_yaml(big))
        began = time.perf_counter()
        big_loaded = validate(big_file, agents=False)
        render(big_loaded.topology)  # type: ignore[arg-type]
        large_file_s = time.perf_counter() - began
        big_problems, big_kib = len(big_loaded.problems), big_file.stat().st_size // 1024
    text = "\n".join(
        [
            f"{time.strftime('%Y-%m-%d')}, one run each.",
            "",
            "| task | hakit | pcs -f | ratio |",
            "|---|---:|---:|---:|",
            f"| OpenStack reference topology ({len(commands)} pcs commands): render + validate "
            "(YAML, types, "
            f"names, RNG, crm_verify) | {hakit_s:.2f} s | {pcs_s:.1f} s | {pcs_s / hakit_s:.0f}x |",
            f"| 32 nodes, 500 resources, 1,000 constraints: render + RNG "
            f"({'valid' if valid else 'INVALID'}) | {large_s:.2f} s | — | — |",
            f"| the same as a YAML file ({big_kib} KiB): validate "
            f"(YAML … crm_verify) + render ({big_problems} problems) | {large_file_s:.2f} s "
            "| — | — |",
            "",
            f"Goals: ≥ 50x faster than pcs -f — {pcs_s / hakit_s:.0f}x; large topology < 2 s — "
            f"{large_s:.2f} s; its file validated and rendered < 1 s — {large_file_s:.2f} s.",
        ]
    )
    print(text)
    if args.write:
        write(args.write, text, BEGIN, END, "Topology: render and validate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
