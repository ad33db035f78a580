"""The drill scenarios: what fault, on what, held how long, and which timeline milestones
must follow it (in this order) for the recovery to count as complete."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hakit.lab.drill.environment import DrillError, Environment

Inject = Callable[[Environment, str, str], None]  # (env, target node, resource)


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    inject: Inject
    heal: Inject | None = None
    #: seconds the fault lasts before `heal` (None: heal once the target is fenced)
    hold: float | None = 0.0
    #: milestone kinds that must appear after the fault, in this order
    milestones: tuple[str, ...] = ()
    #: kinds that must appear too, in any order (a start is logged when it returns, after
    #: the service may already answer)
    also: tuple[str, ...] = ("started",)
    node_loss: bool = False  # the target node is lost: fencing must precede recovery
    openstack: bool = False  # probes and checks of the lab's OpenStack services


def main_pid(env: Environment, node: str, needle: str) -> str:
    pids = env.processes(node, needle)
    if not pids:
        raise DrillError(f"no process matching {needle!r} on {node}")
    return str(min(pids))


def _signal(name: str) -> Inject:
    def inject(env: Environment, node: str, needle: str) -> None:
        env.verb("kill", node=node, pid=main_pid(env, node, needle), signal=name)

    return inject


def _verb(verb: str, **values: str) -> Inject:
    def inject(env: Environment, node: str, _needle: str) -> None:
        env.verb(verb, node=node, **values)

    return inject


def _resume(env: Environment, node: str, needle: str) -> None:
    for pid in env.processes(node, needle):  # a hung process Pacemaker did not kill
        env.verb("kill", node=node, pid=str(pid), signal="CONT")


def _fence_primary_then_cut(env: Environment, node: str, needle: str) -> None:
    env.verb("fence-fail", device=PRIMARY_DEVICE)
    env.verb("power-cut", node=node)


PRIMARY_DEVICE = "primary"  # the `device` of the lab's first fencing level (demo.yaml)
NODE_LOSS = ("detected", "fenced", "available")

SCENARIOS = {
    s.name: s
    for s in [
        Scenario(
            "process-kill",
            "SIGKILL the A/P resource's main process",
            _signal("KILL"),
            milestones=("detected", "recovery", "available"),
        ),
        Scenario(
            "process-hang",
            "SIGSTOP the A/P resource's main process (it keeps its port)",
            _signal("STOP"),
            heal=_resume,
            hold=15.0,
            milestones=("detected", "recovery", "available"),
        ),
        Scenario(
            "power-cut",
            "power cut of the node running the A/P resource",
            _verb("power-cut"),
            milestones=NODE_LOSS,
            node_loss=True,
        ),
        Scenario(
            "isolation",
            "the A/P resource's node loses its network (a partition)",
            _verb("isolate"),
            heal=_verb("heal"),
            hold=None,
            milestones=NODE_LOSS,
            node_loss=True,
        ),
        Scenario(
            "fence-device-failure",
            "power cut; the first fencing level fails, the second " "succeeds",
            _fence_primary_then_cut,
            heal=_verb("fence-repair", device=PRIMARY_DEVICE),
            hold=None,
            milestones=("detected", "fence-failed", "fenced", "available"),
            node_loss=True,
        ),
        Scenario(
            "broker-outage",
            "RabbitMQ stopped (stop_app) for 20 s under the OpenStack " "services",
            _verb("broker-stop"),
            heal=_verb("broker-start"),
            hold=20.0,
            milestones=("healed", "available"),
            also=(),
            openstack=True,
        ),
        Scenario(
            "database-outage",
            "MariaDB killed for 20 s under the OpenStack services",
            _verb("database-stop"),
            heal=_verb("database-start"),
            hold=20.0,
            milestones=("healed", "available"),
            also=(),
            openstack=True,
        ),
    ]
}
