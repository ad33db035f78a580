"""One drill run: settle, watch, inject, hold, heal, wait for recovery, then judge.

Invariants (a failed one fails the drill, with what, when and on which node):

- ap-never-twice: the A/P resource's process never runs on two nodes at once (sampled
  every 50 ms on the nodes themselves, not from crm_mon);
- no-start-before-fencing: after a node loss, the resource starts elsewhere only after
  that node's fencing is confirmed;
- placement-as-policy: at the end every node is online, every clone runs everywhere,
  the A/P resource runs once, nothing has failed that the fault did not touch;
- timeline-complete: the scenario's milestones all happened, in order;
- no-alarm-lost: every notification the health publisher stored reached the lab's
  receiver (when the publisher is deployed);
- no-failure-during-outage: a broker or database outage leaves no fail count, and once
  the clients have service back (every probe answering for `steady` seconds: services
  reconnect one by one) they keep it (watched for `aftermath` seconds more: late
  failures, such as a service judged hung after reconnecting, come that late).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hakit.lab.cloud_access import any_token
from hakit.lab.drill.environment import DrillError, Environment, LabEnvironment
from hakit.lab.drill.observe import Probe, Watch, cinder_round_trip, http_any, log_events
from hakit.lab.drill.scenarios import Scenario
from hakit.ocf.status import ClusterStatus

AP_RESOURCE, AP_PORT, AP_PROCESS = "web", 8080, "http.server"  # the lab's demo.yaml
OPENSTACK_PORT = 6080  # nova-novncproxy in the lab's cloud
CINDER_API_PORT = 8776
RECEIVER_PORT = 8799
Progress = Callable[[dict[str, Any]], None]


@dataclass
class Options:
    resource: str = AP_RESOURCE
    port: int = AP_PORT
    process: str = AP_PROCESS
    target: str | None = None  # a node (default: where the resource runs)
    settle_timeout: float = 180.0
    recovery_timeout: float = 180.0
    aftermath: float = 30.0  # OpenStack scenarios: watched after recovery (3 monitors)
    steady: float = 5.0  # OpenStack scenarios: every probe answers this long to be back


@dataclass
class Judge:
    """Collects violations as the run goes."""

    violations: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, invariant: str, at: float, node: str, detail: str) -> None:
        with self.lock:
            if not any(v["invariant"] == invariant for v in self.violations):
                self.violations.append(
                    {"invariant": invariant, "at": at, "node": node, "detail": detail}
                )

    def status(self, invariant: str, checked: bool = True) -> str:
        if any(v["invariant"] == invariant for v in self.violations):
            return "failed"
        return "passed" if checked else "skipped"


def settled(env: Environment, options: Options) -> ClusterStatus | None:
    """The status when every node is online and every resource runs where it should."""
    status = env.status()
    if status is None or any(not n.online or n.standby for n in status.nodes):
        return None
    return status if not placement_problems(status, options) else None


def placement_problems(status: ClusterStatus, options: Options) -> list[str]:
    problems = []
    clones = {r.parent for r in status.resources if r.parent}
    for clone in sorted(c for c in clones if c):
        on = status.running_on(clone)
        if len(on) != len(status.nodes):
            problems.append(f"{clone} runs on {', '.join(on) or 'no node'}, not on every node")
    ap = status.running_on(options.resource) if options.resource else ["-"]
    if len(ap) != 1:
        problems.append(f"{options.resource} runs on {', '.join(ap) or 'no node'}")
    problems += [f"{r.id} failed on {', '.join(r.nodes)}" for r in status.resources if r.failed]
    return problems


def run_once(
    env: Environment,
    scenario: Scenario,
    options: Options,
    number: int,
    profile: str,
    progress: Progress,
) -> dict[str, Any]:
    """One run of `scenario`; its JSON-ready result."""
    if scenario.openstack:  # the lab's cloud: clones only, watched through novncproxy
        options = dataclasses.replace(options, resource="", target=options.target or env.nodes[0])
    known = env.status()
    if (
        known is not None
        and options.resource
        and options.resource not in {name for r in known.resources for name in (r.id, r.parent)}
    ):
        raise DrillError(
            f"the cluster has no resource {options.resource!r} (--target is a "
            f"node of {', '.join(env.nodes)} or a resource)"
        )
    status = wait_for(
        lambda: settled(env, options),
        options.settle_timeout,
        "the cluster settled (all nodes online, resources placed)",
    )
    target = options.target or status.running_on(options.resource)[0]
    if scenario.openstack and not status.running_on("nova-novncproxy-clone"):
        raise DrillError(
            f"{scenario.name} needs the lab's OpenStack services " "(`hakit lab openstack up`)"
        )
    judge = Judge()
    fails_before = dict(status.fail_counts)
    probes = _probes(env, scenario, options)
    samplers = [lambda: _sample_ap(env, options, judge)] if options.resource else []
    receiver = _receiver(env, status)
    drill: list[dict[str, Any]] = []

    def note(kind: str, what: str, node: str = "host") -> None:
        event = {"at": time.time(), "what": what, "node": node, "kind": kind}
        drill.append(event)
        progress(event)

    with Watch(env, probes, samplers):
        time.sleep(2.0)  # a baseline: the probes answer before the fault
        note("note", f"{scenario.name} on {target} ({scenario.summary})")
        fault_at = time.time()
        scenario.inject(env, target, options.process)
        note("fault", f"fault injected: {scenario.summary}", target)
        try:
            _hold_and_heal(env, scenario, target, options, fault_at, note)
        finally:
            _await_logged(env, scenario, target, options, fault_at)
            steady = options.steady if scenario.openstack else 0.0
            recovered = _await_recovery(env, options, probes, fault_at, steady)
        judged_from = [len(p.samples) for p in probes]  # in-flight requests count as after
        back_at = time.time()
        if recovered:
            time.sleep(options.aftermath if scenario.openstack else 1.0)
    timeline = _timeline(env, scenario, options, target, fault_at, drill, probes)
    for event in timeline:
        if event not in drill:
            progress(event)
    final = env.status()
    _judge_end(judge, scenario, options, timeline, fault_at, final, fails_before, recovered, probes)
    if scenario.openstack and recovered:
        _judge_aftermath(judge, probes, judged_from, back_at)
    checked_alarms = receiver is not None and _judge_alarms(judge, receiver, env, fault_at)
    if receiver is not None:
        receiver.stop()
        receiver.unsubscribe()
    return {
        "scenario": scenario.name,
        "target": target,
        "profile": profile,
        "run": number,
        "started": fault_at,
        "ended": time.time(),
        "passed": not judge.violations,
        "timeline": timeline,
        "figures": figures(timeline, probes, fault_at),
        "probes": [p.as_dict(fault_at) for p in probes],
        "violations": judge.violations,
        "invariants": {
            "ap-never-twice": judge.status("ap-never-twice"),
            "no-start-before-fencing": judge.status("no-start-before-fencing", scenario.node_loss),
            "placement-as-policy": judge.status("placement-as-policy"),
            "timeline-complete": judge.status("timeline-complete"),
            "no-alarm-lost": judge.status("no-alarm-lost", checked_alarms),
            "no-failure-during-outage": judge.status(
                "no-failure-during-outage", scenario.openstack
            ),
        },
    }


def scheduler_consumers(env: LabEnvironment) -> Callable[[], bool]:
    """nova-scheduler's queue has consumers (from the broker's point of view)."""

    def check() -> bool:
        listed = env.lab.rabbitmqctl("list_queues", "--quiet", "name", "consumers", timeout=10)
        counts = [line.split() for line in listed.splitlines()]
        return any(len(c) == 2 and c[0] == "scheduler" and int(c[1]) > 0 for c in counts)

    return check


def _probes(env: Environment, scenario: Scenario, options: Options) -> list[Probe]:
    """The client's view: the A/P resource over HTTP, the OpenStack services for outages."""
    addresses = [env.address(n) for n in env.nodes]
    probes: list[Probe] = []
    if options.resource:
        probes.append(
            Probe(f"{options.resource} http :{options.port}", http_any(addresses, options.port))
        )
    if scenario.openstack:
        probes.append(
            Probe(f"novncproxy http :{OPENSTACK_PORT}", http_any(addresses, OPENSTACK_PORT))
        )
        if isinstance(env, LabEnvironment):
            lab = env.lab
            volumes = cinder_round_trip(addresses, CINDER_API_PORT, lambda: any_token(lab))
            probes.append(Probe("cinder volume create/delete", volumes, 1.0, patience=20.0))
            probes.append(Probe("scheduler queue consumers", scheduler_consumers(env), 1.0))
    return probes


def _hold_and_heal(
    env: Environment,
    scenario: Scenario,
    target: str,
    options: Options,
    fault_at: float,
    note: Callable[[str, str, str], None],
) -> None:
    if scenario.heal is None:
        return
    if scenario.hold is None:  # heal once the cluster has fenced the target
        wait_for(
            lambda: any(e.kind == "fenced" for e in log_events(env.logs(), fault_at, target, None)),
            120,
            f"{target} fenced",
        )
    else:
        time.sleep(scenario.hold)
    scenario.heal(env, target, options.process)
    note("healed", "fault removed", target)


def _await_logged(
    env: Environment, scenario: Scenario, target: str, options: Options, fault_at: float
) -> None:
    """Until the cluster has logged the scenario's milestones (or the recovery timeout):
    right after a fault crm_mon still shows the old, settled state."""
    wanted = {k for k in (*scenario.milestones, *scenario.also) if k not in ("available", "healed")}
    node = target if scenario.node_loss else None
    deadline = time.monotonic() + options.recovery_timeout
    while time.monotonic() < deadline:
        logged = {e.kind for e in log_events(env.logs(), fault_at - 0.5, node, options.resource)}
        if wanted <= logged:
            return
        time.sleep(0.5)


def _await_recovery(
    env: Environment, options: Options, probes: list[Probe], fault_at: float, steady: float
) -> bool:
    """Until the cluster is settled and every probe has answered without a failure for
    `steady` seconds (after a shared outage clients reconnect one by one)."""
    deadline = time.monotonic() + options.recovery_timeout
    while time.monotonic() < deadline:
        answering = all(_answering_since(p, fault_at) <= time.time() - steady for p in probes)
        if answering and settled(env, options) is not None:
            return True
        time.sleep(0.5)
    return False


def _answering_since(probe: Probe, fault_at: float) -> float:
    """When the probe's current run of answers began (infinity when it does not answer)."""
    samples = [(at, ok) for at, ok in list(probe.samples) if at > fault_at]
    if not samples or not samples[-1][1]:
        return float("inf")
    failures = [at for at, ok in samples if not ok]
    return min(at for at, ok in samples if ok and (not failures or at > failures[-1]))


def _judge_end(
    judge: Judge,
    scenario: Scenario,
    options: Options,
    timeline: list[dict[str, Any]],
    fault_at: float,
    final: ClusterStatus | None,
    fails_before: dict[Any, int],
    recovered: bool,
    probes: list[Probe],
) -> None:
    if scenario.node_loss:
        fenced = [e["at"] for e in timeline if e["kind"] == "fenced"]
        for event in timeline:
            if event["kind"] == "started" and (not fenced or event["at"] < fenced[0]):
                judge.fail(
                    "no-start-before-fencing",
                    event["at"],
                    event["what"].split()[-1],
                    f"{event['what']} before the lost node's fencing was confirmed"
                    + ("" if fenced else " (it never was)"),
                )
                break
    problems = (
        ["the cluster has no quorate partition"]
        if final is None
        else placement_problems(final, options)
    )
    if not recovered or problems:
        silent = [p.name for p in probes if not (p.samples and p.samples[-1][1])]
        detail = problems + [f"probe {name} not answering" for name in silent]
        judge.fail(
            "placement-as-policy",
            time.time(),
            "cluster",
            "; ".join(detail) or "not recovered in time",
        )
    position, missing = 0, []
    kinds = [e["kind"] for e in timeline if e["at"] >= fault_at]
    for wanted in scenario.milestones:
        try:
            position = kinds.index(wanted, position) + 1
        except ValueError:
            missing.append(wanted)
    missing += [wanted for wanted in scenario.also if wanted not in kinds]
    if missing:
        saw = ", ".join(kinds)
        judge.fail(
            "timeline-complete",
            time.time(),
            "cluster",
            f"missing or out of order: {', '.join(missing)} (saw {saw})",
        )
    if scenario.openstack and final is not None:
        grown = {k: v for k, v in final.fail_counts.items() if v > fails_before.get(k, 0)}
        if grown:
            (resource, node), count = next(iter(grown.items()))
            why = [
                f"{f.op_key}: {f.exit_reason or f'exit {f.exit_code}'}"
                for f in final.failures
                if f.node == node and f.op_key.startswith(f"{resource}_")
            ]
            judge.fail(
                "no-failure-during-outage",
                time.time(),
                node,
                f"{resource} fail count {count} on {node}"
                + (f" ({'; '.join(why)})" if why else ""),
            )


def _timeline(
    env: Environment,
    scenario: Scenario,
    options: Options,
    target: str,
    fault_at: float,
    drill: list[dict[str, Any]],
    probes: list[Probe],
) -> list[dict[str, Any]]:
    """The drill's own events, the cluster's logged ones and the probes' recoveries."""
    logged = log_events(
        env.logs(), fault_at - 0.5, target if scenario.node_loss else None, options.resource
    )
    timeline = drill + [_as_dict(e) for e in logged]
    for probe in probes:
        _, back = probe.downtime(fault_at)
        if back is not None:
            timeline.append(
                {
                    "at": back,
                    "what": f"{probe.name} answers again",
                    "node": "client",
                    "kind": "available",
                }
            )
    return sorted(timeline, key=lambda e: e["at"])


def _judge_aftermath(
    judge: Judge, probes: list[Probe], judged_from: list[int], back_at: float
) -> None:
    """Once every probe answered steadily again, none fails anymore (in-flight too)."""
    for probe, first in zip(probes, judged_from, strict=True):
        late = [at for at, ok in probe.samples[first:] if not ok]
        if late:
            judge.fail(
                "no-failure-during-outage",
                late[0],
                "client",
                f"{probe.name} failed again {late[0] - back_at:.1f}s after service was "
                f"back ({len(late)} failures)",
            )
            return


def _sample_ap(env: Environment, options: Options, judge: Judge) -> None:
    running = [n for n in env.nodes if env.processes(n, options.process)]
    if len(running) > 1:
        judge.fail(
            "ap-never-twice",
            time.time(),
            running[-1],
            f"{options.resource} ran on {' and '.join(running)} at once",
        )


def _receiver(env: Environment, status: ClusterStatus) -> Any:
    """The lab's receiver, subscribed, when the health publisher is deployed."""
    if not isinstance(env, LabEnvironment) or not any(
        r.agent.endswith("hakit:publisher") for r in status.resources
    ):
        return None
    from hakit.lab.health import LabReceiver

    receiver = LabReceiver(env.lab, port=RECEIVER_PORT)
    receiver.start()
    receiver.subscribe()
    time.sleep(6)  # the publishers' next resync reads the subscription
    return receiver


def _judge_alarms(judge: Judge, receiver: Any, env: Environment, fault_at: float) -> bool:
    """Every notification the DC stored since the fault was accepted by the receiver."""
    from hakit.lab.health import dc

    outbox = env.lab.health_dir(dc(env.lab)) / "outbox.db"  # type: ignore[attr-defined]
    stored: list[str] = []

    def delivered() -> bool:
        stored[:] = _stored_since(outbox, fault_at)
        accepted = {e["key"] for e in receiver.entries()}
        return all(key in accepted for key in stored)

    try:
        wait_for(delivered, 60, "every alarm delivered")
    except DrillError:
        accepted = {e["key"] for e in receiver.entries()}
        lost = [k for k in stored if k not in accepted]
        judge.fail(
            "no-alarm-lost",
            time.time(),
            "receiver",
            f"{len(lost)} of {len(stored)} "
            f"notifications not received, e.g. {lost[0] if lost else '?'}",
        )
    return True


def _stored_since(outbox: Any, since: float) -> list[str]:
    import sqlite3

    db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute(
            "SELECT event_id FROM records WHERE stream = 'notifications' AND "
            "recorded >= ? ORDER BY seq",
            (since,),
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()
    return [row[0] for row in rows]


def figures(
    timeline: list[dict[str, Any]], probes: list[Probe], fault_at: float
) -> dict[str, float | None]:
    """Seconds from the fault to each first milestone, and the probes' downtime."""

    def first(kind: str) -> float | None:
        found = [e["at"] for e in timeline if e["kind"] == kind and e["at"] >= fault_at]
        return round(min(found) - fault_at, 3) if found else None

    downtime = max((p.downtime(fault_at)[0] for p in probes), default=0.0)
    return {
        "detection_s": first("detected"),
        "fencing_s": first("fenced"),
        "recovery_s": first("started"),
        "available_s": first("available"),
        "probe_downtime_s": round(downtime, 3),
    }


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise DrillError(f"not within {timeout:g} s: {what}")
        time.sleep(0.5)


def _as_dict(event: Any) -> dict[str, Any]:
    return {"at": event.at, "what": event.what, "node": event.node, "kind": event.kind}
