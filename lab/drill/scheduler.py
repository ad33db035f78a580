"""The scheduler drill (`hakit drill run scheduler-burst`) on the lab's mini cloud
(`hakit lab cloud up`): N active nova-schedulers (the clone's clone-max), a burst of
boots beyond capacity through every node's nova-api at once, optionally one scheduler
SIGKILLed mid-burst; then placement is checked provider by provider.

Invariants (a failed one fails the drill):

- no-over-allocation: VCPU used <= (total - reserved) x allocation_ratio on every provider;
- every-boot-settled: every boot ends ACTIVE or ERROR within the timeout;
- claims-match-servers: every ACTIVE server holds its claim and every claim belongs to a
  server of the burst (none lost, none without its server);
- scheduler-recovered (`--kill-scheduler`): Pacemaker restarted the killed scheduler.

Counted: ACTIVE, ERROR, the errors' faults ("No valid host", or the conductor's RPC
timeout when the schedulers' backlog outlasts `rpc_response_timeout`: such a server may
still hold the claim its scheduler made late, until it is deleted), reschedules (builds
that compute handed back to the conductor: more than one build event on a server), claims
placement refused as a concurrent update (nova sends them again) or over capacity.

`--unsafe` runs placement with its default claim retry (`allocation_conflict_retry_count
= 10`, see docs/placement-overallocation.md) for the drill and restores hakit's setting
afterwards: that drill is expected to fail no-over-allocation, which proves the check can.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hakit.lab import cloud, cloud_access, cloud_config
from hakit.lab.drill.environment import DrillError, LabEnvironment
from hakit.lab.drill.runner import Judge, wait_for
from hakit.ocf import cluster

if TYPE_CHECKING:
    from hakit.lab.lab import Lab

SCHEDULERS = "nova-scheduler-clone"
SCHEDULER_PROGRAM = "/bin/nova-scheduler"
#: nova-scheduler's warning for every claim placement refused ("Failed to save allocation")
REFUSED_CLAIM = "Failed to save allocation for"
BUILD_EVENT = "compute__do_build_and_run_instance"
POSTERS = 40  # boots in flight from the client at once (nova-api answers in ~1 s each)


@dataclass(frozen=True)
class BurstOptions:
    schedulers: int = 3
    boots: int = 200
    kill_scheduler: bool = False
    kill_after: float = 2.0  # seconds into the burst
    unsafe: bool = False
    settle_timeout: float = 900.0


@dataclass
class BurstResult:
    schedulers: int
    boots: int
    unsafe: bool
    killed: str | None = None
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    no_valid_host: int = 0
    faults: dict[str, int] = field(default_factory=dict)  # the ERROR servers' fault messages
    error_claims: int = 0  # VCPU claimed by ERROR servers
    reschedules: int = 0
    claim_conflicts: int = 0
    claims_over_capacity: int = 0
    usages: dict[str, tuple[int, int]] = field(default_factory=dict)  # (used, capacity)
    over_allocated: int = 0  # VCPU used beyond capacity, summed over providers
    violations: list[dict[str, Any]] = field(default_factory=list)
    #: seconds of each phase: prepare (schedulers, old servers), boot (posted and settled),
    #: inspect (actions, logs, placement), delete
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "passed": self.passed,
            "active_per_s": round(self.statuses.get("ACTIVE", 0) / self.seconds, 3)
            if self.seconds
            else None,
        }


def run_burst(env: LabEnvironment, options: BurstOptions) -> BurstResult:
    """One burst with `options.schedulers` schedulers; the servers are deleted after."""
    lab = env.lab
    if not cloud.running(lab, compute=True).get("nova-api-clone"):
        raise DrillError("scheduler-burst needs the lab's mini cloud (`hakit lab cloud up`)")
    prepared = time.monotonic()
    set_schedulers(lab, options.schedulers)
    cloud.ensure_flavor(lab)
    cloud.delete_servers(lab)
    result = BurstResult(options.schedulers, options.boots, options.unsafe)
    judge = Judge()
    logs_before = _scheduler_log_sizes(env)
    fails_before = _scheduler_fails(env)
    killer = threading.Timer(options.kill_after, _kill_one_scheduler, (env, result))
    began = time.monotonic()
    if options.kill_scheduler:
        killer.start()
    try:
        ids = env.in_client(lambda: _post_all(lab, options.boots))
    finally:
        killer.cancel()
    details = _await_settled(lab, ids, options, judge)
    result.seconds = round(time.monotonic() - began, 2)
    inspected = time.monotonic()
    result.statuses = dict(Counter(s["status"] for s in details.values()))
    faults = [_fault(s) for s in details.values() if s["status"] == "ERROR"]
    result.faults = dict(Counter(faults).most_common())
    result.no_valid_host = sum(1 for fault in faults if "No valid host" in fault)
    result.reschedules = env.in_client(lambda: _reschedules(lab, list(details)))
    refused = _refused_claims(env, logs_before)
    result.claim_conflicts = sum(1 for line in refused if "concurrent_update" in line)
    result.claims_over_capacity = len(refused) - result.claim_conflicts
    providers = cloud_access.placement_providers(lab)
    result.usages = {name: (used, capacity) for name, (used, capacity, _) in providers.items()}
    claims = {consumer for *_, consumers in providers.values() for consumer in consumers}
    active = {i for i, s in details.items() if s["status"] == "ACTIVE"}
    result.error_claims = len(claims & (set(details) - active))
    _judge(judge, result, env, fails_before, options.kill_scheduler)
    _judge_claims(judge, active - claims, claims - set(details))
    result.violations = judge.violations
    deleted = time.monotonic()
    cloud.delete_servers(lab, timeout=max(180.0, options.boots * 2.0))
    ended = time.monotonic()
    marks = {"prepare": began - prepared, "boot": result.seconds, "inspect": deleted - inspected}
    result.phases = {k: round(v, 1) for k, v in {**marks, "delete": ended - deleted}.items()}
    return result


def _judge(
    judge: Judge,
    result: BurstResult,
    env: LabEnvironment,
    fails_before: dict[str, int],
    killing: bool,
) -> None:
    now = time.time()
    over = {p: u for p, u in result.usages.items() if u[0] > u[1]}
    result.over_allocated = sum(used - capacity for used, capacity in over.values())
    if over:
        judge.fail(
            "no-over-allocation",
            now,
            ", ".join(sorted(over)),
            "VCPU used/capacity " + ", ".join(f"{p} {u}/{c}" for p, (u, c) in sorted(over.items())),
        )
    if killing and not result.killed:
        judge.fail("scheduler-recovered", now, "cluster", "no running scheduler to kill")
    if result.killed:
        node = result.killed
        try:
            wait_for(
                lambda: len(cloud.running(env.lab)[SCHEDULERS]) == result.schedulers
                and _scheduler_fails(env).get(node, 0) > fails_before.get(node, 0),
                180,
                "the killed scheduler restarted",
            )
        except DrillError as error:
            judge.fail("scheduler-recovered", time.time(), node, str(error))


def _judge_claims(judge: Judge, unclaimed: set[str], strays: set[str]) -> None:
    if unclaimed or strays:
        judge.fail(
            "claims-match-servers",
            time.time(),
            "placement",
            f"{len(unclaimed)} ACTIVE server(s) without a claim, {len(strays)} claim(s) "
            f"of no server of the burst, e.g. {sorted(unclaimed | strays)[0]}",
        )


def _fault(server: dict[str, Any]) -> str:
    """The fault's message, its ids and numbers blanked (so that faults can be counted)."""
    import re

    message = str((server.get("fault") or {}).get("message") or "no fault recorded")
    return re.sub(r"[0-9a-f]{32}|[0-9a-f-]{36}|\d+", "#", message)[:120]


def set_schedulers(lab: Lab, count: int | None) -> None:
    """clone-max of the scheduler clone (None: every node), and wait for it."""
    wanted = count or len(lab.nodes)
    if not 1 <= wanted <= len(lab.nodes):
        raise DrillError(f"{wanted} schedulers: the lab has {len(lab.nodes)} nodes")
    with lab.on("node1"), contextlib.suppress(cluster.ClusterCommandError):
        # deleting a clone-max that is not set fails: nothing to do
        cluster.set_resource_meta(SCHEDULERS, "clone-max", str(count) if count else None)
    wait_for(
        lambda: len(cloud.running(lab)[SCHEDULERS]) == wanted,
        180,
        f"{wanted} nova-scheduler(s) running",
    )
    wait_for(
        lambda: _scheduler_consumers(lab) == wanted,
        120,
        f"{wanted} scheduler(s) consuming the scheduler queue",
    )


def _scheduler_consumers(lab: Lab) -> int:
    listed = lab.rabbitmqctl("list_queues", "--quiet", "name", "consumers", timeout=10)
    counts = dict(line.split() for line in listed.splitlines() if len(line.split()) == 2)
    return int(counts.get("scheduler", 0))


def _post_all(lab: Lab, boots: int) -> list[str]:
    apis = [cloud_access.compute_api(lab, node, timeout=300) for node in lab.nodes]

    def post(i: int) -> str:
        return cloud.boot(apis[i % len(apis)], f"burst-{i:03d}")

    with ThreadPoolExecutor(min(boots, POSTERS)) as pool:
        return list(pool.map(post, range(boots)))


def _details(lab: Lab) -> dict[str, dict[str, Any]]:
    api = cloud_access.compute_api(lab, "node1", timeout=120)
    answer: Any = lab.as_client(lambda: api.request("GET", "/servers/detail?all_tenants=1"))
    return {s["id"]: s for s in answer["servers"]}


def _await_settled(
    lab: Lab, ids: list[str], options: BurstOptions, judge: Judge
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + options.settle_timeout
    while True:
        listed = _details(lab)
        mine = {i: listed[i] for i in ids if i in listed}
        pending = [i for i in ids if mine.get(i, {}).get("status") not in ("ACTIVE", "ERROR")]
        if not pending:
            return mine
        if time.monotonic() > deadline:
            judge.fail(
                "every-boot-settled",
                time.time(),
                "nova",
                f"{len(pending)} of {len(ids)} boots neither ACTIVE nor ERROR after "
                f"{options.settle_timeout:g} s, e.g. {pending[0]}",
            )
            return mine
        time.sleep(max(2.0, options.boots / 40))  # each look lists every server


def _reschedules(lab: Lab, ids: list[str]) -> int:
    """Builds beyond the first: compute handed the server back to the conductor."""
    apis = [cloud_access.compute_api(lab, node, timeout=60) for node in lab.nodes]

    def extra_builds(index: int, server: str) -> int:
        api = apis[index % len(apis)]  # every node's nova-api, as the burst's posts
        actions: Any = api.request("GET", f"/servers/{server}/os-instance-actions")
        builds = 0
        for action in actions["instanceActions"]:
            if action["action"] == "create":
                shown: Any = api.request(
                    "GET", f"/servers/{server}/os-instance-actions/{action['request_id']}"
                )
                builds += sum(
                    1
                    for e in shown["instanceAction"].get("events", [])
                    if e["event"] == BUILD_EVENT
                )
        return max(0, builds - 1)

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(extra_builds, range(len(ids)), ids))


def _scheduler_logs(env: LabEnvironment) -> dict[str, list[Path]]:
    """Each node's nova-scheduler logs (the agent's per-instance log file)."""
    return {
        node: sorted(env.lab.node_dir(node).glob("var-log-hakit/nova-scheduler*.log"))
        for node in env.nodes
    }


def _scheduler_log_sizes(env: LabEnvironment) -> dict[Path, int]:
    return {p: p.stat().st_size for paths in _scheduler_logs(env).values() for p in paths}


def _refused_claims(env: LabEnvironment, since: dict[Path, int]) -> list[str]:
    lines: list[str] = []
    for paths in _scheduler_logs(env).values():
        for path in paths:
            with path.open("rb") as handle:
                handle.seek(since.get(path, 0))
                text = handle.read().decode(errors="replace")
            lines += [line for line in text.splitlines() if REFUSED_CLAIM in line]
    return lines


def _scheduler_fails(env: LabEnvironment) -> dict[str, int]:
    status = env.status()
    if status is None:
        return {}
    return {
        node: count
        for (resource, node), count in status.fail_counts.items()
        if resource.split(":")[0] == SCHEDULERS.removesuffix("-clone")
    }


def _kill_one_scheduler(env: LabEnvironment, result: BurstResult) -> None:
    """SIGKILL a running scheduler and its workers (the highest-named node running one)."""
    try:
        status = env.status()
        node = status.running_on(SCHEDULERS)[-1] if status else ""
        pids = env.processes(node, SCHEDULER_PROGRAM) if node else []
        for pid in pids:
            env.verb("kill", node=node, pid=str(pid), signal="KILL")
        result.killed = node if pids else None
    except (DrillError, OSError, IndexError):  # judged: no scheduler was killed
        result.killed = None


def set_placement_claims(lab: Lab, *, safe: bool) -> bool:
    """Rewrite the lab's placement.conf with hakit's claim retry (`safe`) or placement's
    default, and restart placement on every node when it changed."""
    from hakit.lab import openstack

    infra = lab.infra_up()
    path = cloud_config.config_dir(lab) / "placement" / "placement.conf"
    old = path.read_text() if path.exists() else ""
    database = cloud_config.database_url(infra.mysql_url, "placement")
    sections = openstack.placement_config(
        database_url=database, identity=cloud_access.identity(lab), safe_claims=safe
    )
    openstack.write_config(path, sections)
    if path.read_text() == old:
        return False
    # nova-compute keeps running (an optional order): it only reports to placement again
    with lab.on("node1"):
        cluster.restart_resource("placement-clone", timeout=300)
        cluster.wait_for_idle(timeout=300)
    wait_for(
        lambda: cloud.compute_states(lab) == dict.fromkeys(lab.nodes, "up"),
        300,
        "every nova-compute up after placement's restart",
    )
    return True


def run(
    env: LabEnvironment, counts: list[int], options: BurstOptions, out: Path
) -> list[BurstResult]:
    """A burst per scheduler count; result.json in `out`. Restores every scheduler and,
    after `--unsafe`, hakit's placement setting."""
    results: list[BurstResult] = []
    try:
        set_placement_claims(env.lab, safe=not options.unsafe)
        for count in counts:
            print(
                f"== scheduler-burst: {options.boots} boots, {count} scheduler(s)"
                + (", one killed mid-burst" if options.kill_scheduler else "")
                + (", placement's default retry (unsafe)" if options.unsafe else ""),
                flush=True,
            )
            results.append(run_burst(env, dataclasses.replace(options, schedulers=count)))
            say(results[-1])
    finally:
        set_placement_claims(env.lab, safe=True)
        set_schedulers(env.lab, None)
        out.mkdir(parents=True, exist_ok=True)
        (out / "result.json").write_text(json.dumps([r.as_dict() for r in results], indent=2))
    return results


def say(result: BurstResult) -> None:
    usage = ", ".join(f"{p} {u}/{c}" for p, (u, c) in sorted(result.usages.items()))
    print(
        f"   {'PASS' if result.passed else 'FAIL'}: {result.statuses} in {result.seconds:.1f}s "
        f"(faults: {result.faults}; {result.error_claims} VCPU claimed by ERROR servers); "
        f"No valid host {result.no_valid_host}, reschedules {result.reschedules}, claims "
        f"refused: {result.claim_conflicts} concurrent, {result.claims_over_capacity} over "
        f"capacity; VCPU used {usage}"
        + (f"; killed the scheduler on {result.killed}" if result.killed else "")
        + "; seconds "
        + ", ".join(f"{phase} {seconds:g}" for phase, seconds in result.phases.items()),
        flush=True,
    )
    for violation in result.violations:
        print(
            f"   invariant {violation['invariant']} failed on {violation['node']}: "
            f"{violation['detail']}",
            flush=True,
        )
