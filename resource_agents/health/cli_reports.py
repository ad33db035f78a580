"""`hakit health reports` and `hakit health correlations`: what VNFs reported, what that
was correlated into and why, and what edited rules would have made of it.

    hakit health reports list [--after SEQ] [--limit N] [--json]
    hakit health reports replay RULES [--since EPOCH] [--until EPOCH] [--json]
    hakit health correlations list [--json]
    hakit health correlations explain ID [--json]

RULES is the publisher's JSON rules, e.g. from an edited topology: `hakit topology
correlation-rules FILE > rules.json`. Everything is read from the outbox file the
publisher and its API share.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hakit.ocf import exits
from hakit.resource_agents.health import constants
from hakit.resource_agents.health.cli_common import JSON_FLAG, friendly


def add_verbs(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reports = verbs.add_parser("reports", help="VNF error reports: list, replay against rules")
    report_verbs = reports.add_subparsers(dest="reports_verb", required=True)
    listing = report_verbs.add_parser("list", help="stored reports, oldest first")
    _outbox(listing)
    listing.add_argument("--after", type=int, default=0, help="after this sequence number")
    listing.add_argument("--limit", type=int, default=100, help="at most this many")
    listing.add_argument("--json", **JSON_FLAG, help='JSON: {"reports": [...]}')
    listing.set_defaults(func=friendly(_reports_list))
    replay = report_verbs.add_parser(
        "replay", help="what these rules would have raised from the stored reports"
    )
    _outbox(replay)
    replay.add_argument("rules", help="JSON rules (hakit topology correlation-rules FILE)")
    replay.add_argument("--since", type=float, default=0.0, help="reports observed from (epoch)")
    replay.add_argument("--until", type=float, default=None, help="... until (epoch)")
    replay.add_argument("--json", **JSON_FLAG, help='JSON: {"events": [...]}')
    replay.set_defaults(func=friendly(_replay))

    correlations = verbs.add_parser("correlations", help="correlations: list, explain one")
    correlation_verbs = correlations.add_subparsers(dest="correlations_verb", required=True)
    listing = correlation_verbs.add_parser("list", help="open and recent correlations")
    _outbox(listing)
    listing.add_argument("--json", **JSON_FLAG, help='JSON: {"correlations": [...]}')
    listing.set_defaults(func=friendly(_correlations_list))
    explain = correlation_verbs.add_parser(
        "explain", help="one correlation: its rule, window, reports and evidence"
    )
    _outbox(explain)
    explain.add_argument("id", help="the correlation's id (its root alarm's, for a suspect)")
    explain.add_argument("--json", **JSON_FLAG, help="JSON: the correlation with its reports")
    explain.set_defaults(func=friendly(_explain))


def _outbox(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outbox", default=constants.OUTBOX_PATH, help="the publisher's outbox")


def _reports_list(args: argparse.Namespace) -> int:
    from hakit.resource_agents.health.vnf_reports import ReportStore

    _require(args.outbox)
    with ReportStore(args.outbox) as store:
        found = [r.as_resource() for r in store.after(args.after, max(1, args.limit))]
    if getattr(args, "json", False):
        print(json.dumps({"reports": found}, indent=2))
        return 0
    for r in found:
        where = r["resolution"]
        place = where.get("host") or where.get("backend") or where.get("physnet") or "-"
        print(
            f"{r['seq']:>6}  {r['observedTime']}  {r['vnfInstanceId']}  {r['errorClass']:<8} "
            f"{r['resource']['type']} {r['resource']['id']}  {where['state']} {place}"
        )
    return 0


def _correlations_list(args: argparse.Namespace) -> int:
    from hakit.resource_agents.health.reports_api import correlations_answer

    _require(args.outbox)
    found: Any = correlations_answer(args.outbox, None)
    if getattr(args, "json", False):
        print(json.dumps({"correlations": found}, indent=2))
        return 0
    for c in found:
        state = "open" if c["cleared"] is None else "cleared"
        print(
            f"{c['id']}  {c['kind']:<7} {c['scope']} {c['key']}  {state}  "
            f"{len(c['vnfs'])} VNFs, {len(c['report_ids'])} reports  rule {c['rule']}"
        )
    return 0


def _explain(args: argparse.Namespace) -> int:
    from hakit.resource_agents.health.reports_api import correlations_answer

    _require(args.outbox)
    found: Any = correlations_answer(args.outbox, args.id)
    if found is None:
        raise ValueError(f"no correlation {args.id} (`hakit health correlations list`)")
    if getattr(args, "json", False):
        print(json.dumps(found, indent=2))
        return 0
    print("\n".join(found["explanation"]))
    for r in found["reports"]:
        print(
            f"  report {r['id']}: {r['vnfInstanceId']} {r['errorClass']} "
            f"{r['perceivedSeverity']} at {r['observedTime']} on {r['resource']['type']} "
            f"{r['resource']['id']}: {r.get('details') or '-'}"
        )
    return 0


def _replay(args: argparse.Namespace) -> int:
    from hakit.resource_agents.health.correlation import replay
    from hakit.resource_agents.health.correlator import observation
    from hakit.resource_agents.health.vnf_reports import ReportStore

    rules = read_rules(Path(args.rules))
    _require(args.outbox)
    until = float("inf") if args.until is None else args.until
    with ReportStore(args.outbox) as store:
        stored = [r for r in store.observed_since(args.since) if r.report.observed <= until]
    observations = [observation(r) for r in stored if r.resolution == "resolved"]
    events = replay(observations, rules)
    if getattr(args, "json", False):
        print(json.dumps({"events": [e.__dict__ for e in events]}, indent=2, default=list))
        return 0
    from hakit.resource_agents.health.model import rfc3339

    print(f"{len(observations)} resolved reports ({len(stored)} stored), {len(events)} events")
    for e in events:
        print(
            f"{rfc3339(e.at)}  {e.event:<7} {e.kind:<7} {e.scope} {e.key}  rule {e.rule}  "
            f"VNFs {', '.join(e.vnfs)}"
        )
    return 0


def read_rules(path: Path) -> Any:
    """The publisher's JSON rules in a file (`hakit topology correlation-rules FILE` makes
    them from a topology)."""
    from hakit.resource_agents.health.correlation import parse_rules

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise exits.UsageError(f"{path}: {error}") from None
    if not text.lstrip().startswith("{"):
        raise exits.UsageError(
            f"{path}: not JSON rules; from a topology file: "
            f"hakit topology correlation-rules FILE > rules.json"
        )
    return parse_rules(text)


def _require(outbox: str) -> None:
    if not Path(outbox).exists():
        raise exits.UsageError(f"{outbox}: no outbox here (--outbox: the publisher's)")
