"""Topology speed: hakit render + validate vs building the same CIB with `pcs -f`; a
large topology (32 nodes, 500 resources, 1,000 constraints) rendered and RNG-checked;
and generated topologies of 5,000 to 50,000 resources validated and rendered.

At scale each command runs as a user runs it (`hakit topology validate|render FILE
--no-agents`, a fresh process), timed with its peak RSS by GNU time. crm_verify, which
validate runs on the rendered CIB, is Pacemaker's own scheduler in its own process: it is
timed alone on the same CIB, and replaced by a no-op for the hakit rows, so that the two
add up to what `hakit topology validate` takes. The anchor is PyYAML's own
`yaml.compose` of the same file (libyaml's CSafeLoader): what the loader used to build
before converting.

    python -m bench.topology [--sizes 5000,10000,50000] [--runs 3] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.monitor import write
from hakit.ocf import cluster
from hakit.tools.topology import model
from hakit.tools.topology.export import pcs_script
from hakit.tools.topology.importer import to_yaml
from hakit.tools.topology.load import load
from hakit.tools.topology.render import render
from hakit.tools.topology.validate import validate
from hakit.tools.topology.verify import relaxng

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
        cluster=model.Cluster(name="large", properties={"stonith-enabled": False}),
        nodes=nodes,
        resources=resources,
        constraints=model.Constraints(locations=locations, orders=orders, colocations=colocation),
    )


def generated(count: int, nodes: int = 32) -> str:
    """A topology of `count` resources, written as an operator would: each an agent with
    params, meta and a monitor (every 50th a clone), a group of 3 per 100 resources, a
    location per 10, a colocation and an order per 20."""
    lines = ["cluster:", "  name: scale", "  properties:", "    stonith-enabled: false"]
    lines += ["nodes:", *(f"  - name: node{i}" for i in range(1, nodes + 1)), "resources:"]
    for i in range(count):
        lines += [
            f"  - name: rsc{i}",
            "    agent: ocf:heartbeat:Dummy",
            f"    params: {{fake: '{i}'}}",
            f"    meta: {{resource-stickiness: {i % 100}}}",
            "    ops: [{name: monitor, interval: 10s}]",
        ]
        if i % 50 == 7:
            lines.append("    clone: {max: 2, node_max: 1, meta: {interleave: true}}")
    lines.append("groups:")
    for g in range(0, count, 100):
        lines += [f"  - name: grp{g}", f"    members: [rsc{g + 1}, rsc{g + 2}, rsc{g + 3}]"]
        lines.append("    meta: {target-role: Started}")
    lines += ["constraints:", "  locations:"]
    lines += [
        f"    - {{resource: rsc{i}, node: node{i % nodes + 1}, score: '100'}}"
        for i in range(0, count, 10)
    ]
    lines.append("  colocations:")
    lines += [f"    - {{resource: rsc{i + 4}, with: rsc{i + 5}}}" for i in range(0, count, 20)]
    lines.append("  orders:")
    for i in range(0, count, 20):
        lines += [f"    - first: rsc{i + 4}", f"      then: rsc{i + 5}", "      kind: Optional"]
    return "\n".join(lines) + "\n"


@dataclass
class Measured:
    """One command's median wall time and peak RSS (GNU time's %e and %M)."""

    seconds: float
    mib: float
    code: int


def timed(argv: list[str], runs: int, env: dict[str, str] | None = None) -> Measured:
    """Run `argv` `runs` times under /usr/bin/time (forked from GNU time, so the peak is
    the command's own, not this process's image); medians."""
    walls, peaks, code = [], [], 0
    for _ in range(runs):
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", *argv],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall, kib = done.stderr.split()[-2:]
        walls.append(float(wall))
        peaks.append(int(kib) / 1024)
        code = done.returncode
    return Measured(statistics.median(walls), statistics.median(peaks), code)


@dataclass
class Scale:
    """validate, render, crm_verify and the anchor for one generated topology."""

    resources: int
    file_mib: float
    compose: Measured
    validate: Measured
    render: Measured
    crm_verify: Measured


def scale(sizes: list[int], runs: int) -> list[Scale]:
    results = []
    with tempfile.TemporaryDirectory(prefix="hakit-bench-") as tmp:
        stub = Path(tmp) / "bin"
        stub.mkdir()
        (stub / cluster.CRM_VERIFY).write_text("#!/bin/sh\nexit 0\n")
        (stub / cluster.CRM_VERIFY).chmod(0o755)
        without_crm_verify = {**os.environ, "PATH": f"{stub}:{os.environ.get('PATH', '')}"}
        hakit = [sys.executable, "-m", "hakit.tools.cli", "topology"]
        for count in sizes:
            path, cib = Path(tmp) / f"scale-{count}.yaml", Path(tmp) / f"scale-{count}.xml"
            path.write_text(generated(count))
            compose = [
                sys.executable,
                "-c",
                "import sys, yaml; yaml.compose(open(sys.argv[1]).read(), yaml.CSafeLoader)",
                str(path),
            ]
            validate_cmd = [*hakit, "validate", str(path), "--no-agents"]
            render_cmd = [*hakit, "render", str(path), "--no-agents", "-o", str(cib)]
            results.append(
                Scale(
                    resources=count,
                    file_mib=path.stat().st_size / 2**20,
                    compose=timed(compose, runs),
                    validate=timed(validate_cmd, runs, without_crm_verify),
                    render=timed(render_cmd, runs, without_crm_verify),
                    crm_verify=timed([cluster.CRM_VERIFY, "--verbose", "--xml-file", str(cib)], 1),
                )
            )
            print(results[-1], file=sys.stderr)
    return results


def scale_table(results: list[Scale], runs: int) -> list[str]:
    rows = [
        "Generated topologies (`bench.topology.generated`: Dummy resources with params, "
        "meta and a monitor, clones, groups, locations, colocations, orders; 32 nodes), "
        f"{runs} run{'s' if runs > 1 else ''} each (median): wall seconds and peak RSS of the "
        "process. hakit's rows run `hakit topology validate|render FILE --no-agents` with "
        "crm_verify replaced by a no-op (render validates first, then renders again and "
        "writes the CIB); crm_verify is timed alone on the rendered CIB, and `validate as "
        "run` is the sum. The anchor is PyYAML's `yaml.compose` (CSafeLoader) of the same "
        "file, what the loader built before converting; the ratio is validate's time to it.",
        "",
        "| resources (file) | anchor: yaml.compose | hakit validate | hakit render "
        "| validate vs anchor | crm_verify alone | validate as run |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ok = "" if r.validate.code == r.render.code == r.crm_verify.code == 0 else " (FAILED)"
        rows.append(
            f"| {r.resources:,} ({r.file_mib:.1f} MiB){ok} "
            f"| {r.compose.seconds:.1f} s, {r.compose.mib:.0f} MiB "
            f"| {r.validate.seconds:.1f} s, {r.validate.mib:.0f} MiB "
            f"| {r.render.seconds:.1f} s, {r.render.mib:.0f} MiB "
            f"| {r.validate.seconds / r.compose.seconds:.2f}x "
            f"| {r.crm_verify.seconds:.1f} s, {r.crm_verify.mib:.0f} MiB "
            f"| {r.validate.seconds + r.crm_verify.seconds:.1f} s |"
        )
    if results:
        big = results[-1]
        met = (
            max(big.validate.seconds, big.render.seconds) < 10
            and max(big.validate.mib, big.render.mib) < 500
        )
        rows += [
            "",
            f"Goal: validate and render of {big.resources:,} resources each < 10 s and "
            f"< 500 MiB — validate {big.validate.seconds:.1f} s / {big.validate.mib:.0f} MiB, "
            f"render {big.render.seconds:.1f} s / {big.render.mib:.0f} MiB "
            f"({'met' if met else 'NOT met'}). crm_verify (Pacemaker's scheduler over every "
            f"resource on every node) takes {big.crm_verify.seconds:.0f} s and "
            f"{big.crm_verify.mib:.0f} MiB on that CIB, in its own process"
            + (
                ": at this size it, not hakit, is most of `hakit topology validate`."
                if big.crm_verify.seconds > big.validate.seconds
                else "."
            ),
        ]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path)
    parser.add_argument(
        "--sizes",
        default="5000,10000,50000",
        help="resources per generated topology, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per measure (median)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",") if size]
    began = time.perf_counter()
    loaded = validate(EXAMPLE, agents=False)  # the model's time, no agent metadata calls
    render(loaded.topology)  # type: ignore[arg-type]
    hakit_s = time.perf_counter() - began
    topology = load(EXAMPLE).topology
    if topology is None:
        raise SystemExit(f"{EXAMPLE} does not load")
    with tempfile.TemporaryDirectory() as tmp:
        cib = Path(tmp) / "cib.xml"
        began = time.perf_counter()
        cib.write_text(cluster.empty_cib())
        script = pcs_script(topology, str(cib))
        commands = [
            line for line in script.splitlines() if line and line[0] != "#" and line != "set -e"
        ]
        built = subprocess.run(["sh", "-c", script], capture_output=True, check=False, cwd=tmp)
        pcs_s = time.perf_counter() - began
        if built.returncode != 0:
            print(f"pcs script failed: {built.stderr.decode()[-500:]}", file=sys.stderr)
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
    results = scale(sizes, args.runs)
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
            "",
            *scale_table(results, args.runs),
        ]
    )
    print(text)
    if args.write:
        write(args.write, text, BEGIN, END, "Topology: render and validate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
