"""`hakit drill list` and `hakit drill run SCENARIO`: faults with measured timelines,
invariants and a report (JSON, HTML with a timeline plot per run, summary over repeats).

Exit codes: 0 every invariant held in every run; 1 an invariant failed (said: which,
when, on which node); 2 the drill could not run (a cluster not settled, a missing verb).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from hakit.lab.drill.scenarios import SCENARIOS
from hakit.ocf import exits


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    drill = commands.add_parser("drill", help="failover drills: faults, timelines, invariants")
    verbs = drill.add_subparsers(dest="drill_verb", required=True)
    listing = verbs.add_parser("list", help="the scenarios")
    listing.add_argument(
        "--json",
        action="store_true",
        help='JSON: {"scenarios": [{"name", "summary", "kind", "needs"}]}',
    )
    listing.set_defaults(func=_list)
    run = verbs.add_parser(
        "run",
        help="inject a real fault: say where (--lab or --environment) and confirm (--yes)",
        description="Injects the scenario's fault into the cluster you name: --lab (this "
        "machine's hakit lab, brought up if it is down) or --environment FILE (another "
        "cluster's nodes and fault verbs). Nodes are cut, processes killed, links cut; "
        "--dry-run prints what would be hit, --yes goes ahead without asking.",
    )
    run.add_argument("scenario", choices=sorted([*SCENARIOS, *CLOUD_DRILLS]))
    where = run.add_mutually_exclusive_group()
    where.add_argument(
        "--lab", action="store_true", help="this machine's hakit lab (brought up if down)"
    )
    run.add_argument(
        "--target",
        metavar="NODE|RESOURCE",
        help="a node to hit, or the A/P resource to watch (default: the node "
        "where --resource runs)",
    )
    run.add_argument("--repeat", type=exits.count, default=1, help="runs (a summary across them)")
    run.add_argument(
        "--profile",
        choices=("default", "fast"),
        default="fast",
        help="the lab's corosync timing profile",
    )
    where.add_argument(
        "--environment", type=Path, help="YAML declaring another cluster's nodes and fault verbs"
    )
    exits.add_confirmation(run)
    run.add_argument("--resource", default="web", help="the active/passive resource watched")
    run.add_argument("--port", type=exits.port, default=8080, help="its client port (HTTP probe)")
    run.add_argument("--process", default="http.server", help="its process (command line)")
    run.add_argument("--out", type=Path, help="report directory (default: ./drill-<time>)")
    burst = run.add_argument_group("scheduler-burst")
    burst.add_argument(
        "--schedulers",
        type=_counts,
        default=[1, 2, 3],
        metavar="N[,N...]",
        help="active nova-scheduler counts, a burst each (default: 1,2,3)",
    )
    burst.add_argument(
        "--boots", type=_positive, default=200, help="boots per burst (default: 200)"
    )
    burst.add_argument(
        "--kill-scheduler", action="store_true", help="SIGKILL one scheduler 2 s into each burst"
    )
    burst.add_argument(
        "--unsafe",
        action="store_true",
        help="placement's default claim retry: expected to over-allocate",
    )
    run.set_defaults(func=_run)


#: drills of the lab's mini cloud (`hakit lab cloud up`) rather than of a fault's timeline
CLOUD_DRILLS = {
    "scheduler-burst": "boots beyond capacity through 1, 2 and 3 active nova-schedulers; "
    "no provider over-allocated",
    "console-tokens": "one console token through every nova-novncproxy, also after its "
    "proxy is killed and recovered; bogus and expired tokens refused",
}


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"scheduler counts start at 1: {text!r}")
    return counts


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return int(text)


def _list(args: argparse.Namespace) -> int:
    if args.json:
        import json

        scenarios = [
            {
                "name": name,
                "summary": scenario.summary,
                "kind": "fault",
                "needs": "hakit lab openstack up" if scenario.openstack else None,
            }
            for name, scenario in SCENARIOS.items()
        ]
        scenarios += [
            {"name": name, "summary": summary, "kind": "cloud", "needs": "hakit lab cloud up"}
            for name, summary in CLOUD_DRILLS.items()
        ]
        print(json.dumps({"scenarios": scenarios}, indent=2))
        return 0
    width = max(len(name) for name in [*SCENARIOS, *CLOUD_DRILLS])
    for name, scenario in SCENARIOS.items():
        extra = " [needs `hakit lab openstack up`]" if scenario.openstack else ""
        print(f"{name:<{width}}  {scenario.summary}{extra}")
    for name, summary in CLOUD_DRILLS.items():
        print(f"{name:<{width}}  {summary} [needs `hakit lab cloud up`]")
    return 0


def _run_cloud_drill(args: argparse.Namespace, out: Path) -> int:
    from hakit.lab.drill import console, scheduler
    from hakit.lab.drill.environment import DrillError, lab_environment
    from hakit.lab.errors import LabError
    from hakit.resource_agents.health.nova import NovaError

    try:
        env = lab_environment(args.profile)
        if args.scenario == "console-tokens":
            print("== console-tokens", flush=True)
            passed = [console.run(env, out).passed]
        else:
            options = scheduler.BurstOptions(
                boots=args.boots, kill_scheduler=args.kill_scheduler, unsafe=args.unsafe
            )
            passed = [r.passed for r in scheduler.run(env, args.schedulers, options, out)]
    except DrillError as error:  # a target or a setup the drill cannot use
        print(f"hakit drill: {error}", file=sys.stderr)
        return exits.USAGE
    except (LabError, NovaError) as error:
        print(f"hakit drill: {error}", file=sys.stderr)
        return exits.ENVIRONMENT
    print(f"report: {out / 'result.json'}")
    return 0 if all(passed) else 1


def _plan(args: argparse.Namespace) -> str:
    """What the drill would do, and where: for --dry-run and the confirmation."""
    where = (
        f"the cluster declared in {args.environment}"
        if args.environment
        else f"this machine's hakit lab ({args.profile} profile; brought up if down)"
    )
    if args.scenario in CLOUD_DRILLS:
        what = CLOUD_DRILLS[args.scenario]
    else:
        hit = args.target or f"the node where {args.resource} runs"
        what = f"{SCENARIOS[args.scenario].summary}, on {hit}"
    times = f", {args.repeat} times" if args.repeat > 1 else ""
    return f"drill {args.scenario} on {where}: {what}{times}"


def _run(args: argparse.Namespace) -> int:
    from hakit.lab.drill import report
    from hakit.lab.drill.environment import CommandEnvironment, DrillError, lab_environment
    from hakit.lab.drill.runner import Options, run_once

    if not (args.lab or args.environment):
        raise exits.UsageError(
            "say where the drill runs: --lab (this machine's hakit lab) or --environment FILE"
        )
    if args.scenario in CLOUD_DRILLS and args.environment:
        raise exits.UsageError(f"{args.scenario} runs on the lab's mini cloud only (--lab)")
    if args.dry_run:
        print(f"would run {_plan(args)}")
        return 0
    exits.confirm(args, _plan(args))
    out = args.out or Path(f"drill-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.scenario in CLOUD_DRILLS:
        return _run_cloud_drill(args, out)
    scenario = SCENARIOS[args.scenario]
    options = Options(args.resource, args.port, args.process, args.target)
    runs: list[dict[str, Any]] = []
    try:
        env = (
            CommandEnvironment(args.environment)
            if args.environment
            else lab_environment(args.profile)
        )
        if args.target and args.target not in env.nodes:  # a resource: hit where it runs
            options = dataclasses.replace(options, resource=args.target, target=None)
        for number in range(1, args.repeat + 1):
            print(f"== {scenario.name}, run {number}/{args.repeat} ({env.name})", flush=True)
            progress = Progress()
            runs.append(run_once(env, scenario, options, number, args.profile, progress))
            _say_result(runs[-1])
    except DrillError as error:
        print(f"hakit drill: {error}", file=sys.stderr)
        if not runs:
            return exits.USAGE
    try:
        index = report.write_report(runs, out)
        print(f"report: {index} (JSON: {out / 'result.json'})")
    except report.ReportError as error:
        print(f"hakit drill: no HTML report: {error}", file=sys.stderr)
    return 0 if all(r["passed"] for r in runs) and len(runs) == args.repeat else 1


class Progress:
    """Prints each timeline event as it becomes known, relative to the fault."""

    def __init__(self) -> None:
        self.origin: float | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        from hakit.lab.drill import report

        if self.origin is None and event["kind"] == "fault":
            self.origin = event["at"]
        print(report.format_progress(event, self.origin or event["at"]), flush=True)


def _say_result(run: dict[str, Any]) -> None:
    figures = ", ".join(
        f"{k.removesuffix('_s')} {v:.2f}s"
        for k, v in run["figures"].items()
        if isinstance(v, float | int)
    )
    print(f"   {'PASS' if run['passed'] else 'FAIL'}: {figures}")
    for violation in run["violations"]:
        offset = violation["at"] - run["started"]
        print(
            f"   invariant {violation['invariant']} failed at +{offset:.3f}s on "
            f"{violation['node']}: {violation['detail']}"
        )
