"""`make drill-soak` (not in CI): N consecutive power cuts of the node running the lab's
active/passive resource with the fast profile, every invariant checked on every run;
the summary (violations, medians and maxima) goes into docs/benchmarks.md and the full
report into build/drill-soak/.

    python -m bench.drill [--runs 50] [--scenario power-cut] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bench.monitor import write
from hakit.lab import demo
from hakit.lab.drill import report
from hakit.lab.drill.cli import Progress
from hakit.lab.drill.environment import DrillError, lab_environment
from hakit.lab.drill.runner import Options, run_once
from hakit.lab.drill.scenarios import SCENARIOS

BEGIN, END = "<!-- bench:drill-soak:begin -->", "<!-- bench:drill-soak:end -->"
FIGURES = ("detection_s", "fencing_s", "recovery_s", "available_s", "probe_downtime_s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--scenario", default="power-cut", choices=sorted(SCENARIOS))
    parser.add_argument("--out", type=Path, default=Path("build/drill-soak"))
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    env = lab_environment("fast")
    demo.configure(env.lab)
    runs: list[dict[str, Any]] = []
    errors: list[str] = []  # runs that could not run (the cluster did not settle, ...)
    for number in range(1, args.runs + 1):
        print(f"== {args.scenario} {number}/{args.runs}", flush=True)
        try:
            runs.append(
                run_once(env, SCENARIOS[args.scenario], Options(), number, "fast", Progress())
            )
        except DrillError as error:
            errors.append(f"run {number}: {error}")
            print(f"   ERROR: {error}", flush=True)
            continue
        if not runs[-1]["passed"]:
            print(f"   FAIL: {runs[-1]['violations']}", flush=True)
    report.write_report(runs, args.out)
    violations = sum(len(r["violations"]) for r in runs)
    rows = [
        f"{args.runs} consecutive `{args.scenario}` drills, fast profile, "
        f"{time.strftime('%Y-%m-%d')}: **{violations} invariant violations** "
        f"({sum(r['passed'] for r in runs)}/{args.runs} runs passed"
        f"{f', {len(errors)} could not run' if errors else ''}). Seconds after the "
        "fault; median (max).",
        "",
        "| " + " | ".join(FIGURES) + " |",
        "|" + "---:|" * len(FIGURES),
    ]
    summary = report.summarize(runs)
    cells = [
        f"{s['median']:.2f} ({s['max']:.2f})" if (s := summary.get(name)) and s["count"] else "-"
        for name in FIGURES
    ]
    rows.append("| " + " | ".join(cells) + " |")
    if summary.get("available_s", {}).get("count"):
        rows += [
            "",
            "Goal: the A/P resource available again ≤ 5 s after a power cut (fast "
            f"profile) — median {summary['available_s']['median']:.2f} s.",
        ]
    rows += ["", *(f"- could not run: {error}" for error in errors)] if errors else []
    text = "\n".join(rows)
    print(text)
    if args.write:
        write(args.write, text, BEGIN, END, "Drill soak: consecutive power cuts")
    return 0 if violations == 0 and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
