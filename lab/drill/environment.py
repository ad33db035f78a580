"""Where a drill runs: the nodes, the fault verbs, the logs and the client's vantage point.

`LabEnvironment` is hakit's lab (real Pacemaker/Corosync in network namespaces, a
fence agent that kills a namespace, MariaDB and RabbitMQ in the infra namespace).
`CommandEnvironment` is any other cluster, its verbs declared as shell commands in a
YAML file (`hakit drill run --environment FILE`):

    nodes: [ctl1, ctl2, ctl3]
    run: ssh root@{node} {command}          # a command on a node (crm_mon, logs)
    log: /var/log/pacemaker/pacemaker.log   # read with `run` + tail
    addresses: {ctl1: 192.0.2.11, ...}      # where probes reach a node (default: its name)
    processes: ...                          # prints the PIDs matching {needle} on {node}
                                            # (default: `run` + pgrep -f)
    client_netns: probe-ns                  # probe from this network namespace (optional)
    verbs:                                  # {node}, {pid}, {signal} are filled in
      power-cut: ipmitool -I lanplus -H {node}-bmc chassis power off
      isolate: ssh root@{node} nft add table inet drill ...
      heal: ...
      kill: ssh root@{node} kill -{signal} {pid}
      broker-stop: ... / broker-start: ... / database-stop: ... / database-start: ...
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from hakit.lab.errors import LabError
from hakit.lab.lab import INFRA_NETNS, Lab, pids_in_netns
from hakit.lab.namespaces import cmdline
from hakit.ocf import cluster, proc
from hakit.ocf.status import ClusterStatus

VERBS = (
    "power-cut",
    "isolate",
    "heal",
    "kill",
    "broker-stop",
    "broker-start",
    "database-stop",
    "database-start",
    "fence-fail",
    "fence-repair",
)


class DrillError(Exception):
    """The drill cannot run here (a missing verb, a cluster not settled, ...)."""


class Environment(Protocol):
    """What a drill needs from a cluster."""

    name: str
    nodes: list[str]

    def status(self) -> ClusterStatus | None: ...
    def logs(self) -> dict[str, Path]: ...
    def processes(self, node: str, needle: str) -> list[int]: ...
    def address(self, node: str) -> str: ...
    def verb(self, verb: str, **values: str) -> None: ...
    def in_client(self, func: Callable[[], Any]) -> Any: ...


class LabEnvironment:
    """hakit's lab: every verb is real (SIGKILL of a namespace, link down, stop_app, ...)."""

    name = "lab"

    def __init__(self, lab: Lab | None = None) -> None:
        self.lab = lab or Lab()
        self.nodes = self.lab.nodes

    def status(self) -> ClusterStatus | None:
        for node in self.nodes:
            if self.lab.powered(node):
                found = self.lab.cluster_status(node, timeout=5)
                if found is not None and found.dc and found.quorate:
                    return found
        return None

    def logs(self) -> dict[str, Path]:
        return {n: self.lab.node_dir(n) / "var-log-pacemaker" / "pacemaker.log" for n in self.nodes}

    def processes(self, node: str, needle: str) -> list[int]:
        """PIDs on `node` whose command line contains `needle`."""
        found = []
        for pid in pids_in_netns(self.lab.netns(node)):
            if needle in cmdline(pid):
                found.append(pid)
        return found

    def address(self, node: str) -> str:
        return self.lab.address(node)

    def verb(self, verb: str, **values: str) -> None:
        node = values.get("node", "")
        actions: dict[str, Callable[[], object]] = {
            "power-cut": lambda: self.lab.cut(node),
            "isolate": lambda: self.lab.isolate(node),
            "heal": self.lab.restore,
            "kill": lambda: _signal(int(values["pid"]), values["signal"]),
            "broker-stop": lambda: self.lab.rabbitmqctl("stop_app"),
            "broker-start": lambda: self.lab.rabbitmqctl("start_app"),
            "database-stop": self._stop_mariadb,
            "database-start": self.lab.infra_up,
            "fence-fail": lambda: (self.lab.dir / f"fence_fail.{values['device']}").touch(),
            "fence-repair": lambda: (self.lab.dir / f"fence_fail.{values['device']}").unlink(
                missing_ok=True
            ),
        }
        if verb not in actions:
            raise DrillError(f"the lab has no verb {verb!r}")
        actions[verb]()

    def in_client(self, func: Callable[[], Any]) -> Any:
        """Run `func` in the infra namespace: a client outside the cluster."""
        return self.lab.as_client(func)

    def _stop_mariadb(self) -> None:
        pids = [
            p
            for p in pids_in_netns(INFRA_NETNS)
            if (s := proc.stat(p)) is not None and s.comm in ("mariadbd", "mysqld")
        ]
        if not pids:
            raise DrillError("no MariaDB runs in the infra namespace (`hakit lab infra up`)")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)  # an outage, not a clean shutdown; `database-start`


def _signal(pid: int, name: str) -> None:
    try:
        os.kill(pid, getattr(signal, f"SIG{name.upper().removeprefix('SIG')}"))
    except ProcessLookupError:
        pass
    except AttributeError:
        raise DrillError(f"no signal {name!r}") from None


class CommandEnvironment:
    """A cluster whose verbs are shell commands (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise DrillError(f"{path}: {error}") from None
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
            raise DrillError(f"{path}: expected a mapping with `nodes`, `run` and `verbs`")
        self.name = str(data.get("name") or path.stem)
        self.nodes = [str(n) for n in data["nodes"]]
        self.run_template = str(data.get("run") or "{command}")
        self.log_path = str(data.get("log") or "/var/log/pacemaker/pacemaker.log")
        verbs = data.get("verbs") or {}
        unknown = sorted(set(verbs) - set(VERBS))
        if unknown:
            raise DrillError(
                f"{path}: unknown verbs {', '.join(unknown)}; known: " f"{', '.join(VERBS)}"
            )
        self.verbs = {str(k): str(v) for k, v in verbs.items()}
        self.addresses = {str(k): str(v) for k, v in (data.get("addresses") or {}).items()}
        self.processes_template = data.get("processes")
        self.client_netns = data.get("client_netns")
        self.cache = Path(tempfile.mkdtemp(prefix="hakit-drill-logs-"))

    def _on(self, node: str, command: str, timeout: float = 30) -> str:
        line = self.run_template.format(node=node, command=shlex.quote(command))
        return _shell(line, timeout, f"{node}: {command}")

    def runner(self, node: str) -> cluster.Runner:
        """Cluster programs on `node` through the environment's `run` command line."""
        return TemplateRunner(self.run_template, node)

    def status(self) -> ClusterStatus | None:
        for node in self.nodes:
            try:
                with cluster.using(self.runner(node)):
                    found = cluster.cluster_status(timeout=30)
            except cluster.ClusterCommandError:
                continue
            if found.dc and found.quorate:
                return found
        return None

    def logs(self) -> dict[str, Path]:
        copies = {}
        for node in self.nodes:
            target = self.cache / f"{node}.log"
            try:
                target.write_text(self._on(node, f"tail -n 20000 {self.log_path}", timeout=60))
            except (DrillError, subprocess.TimeoutExpired):
                continue
            copies[node] = target
        return copies

    def processes(self, node: str, needle: str) -> list[int]:
        try:
            if self.processes_template:
                line = str(self.processes_template).format(node=node, needle=shlex.quote(needle))
                out = _shell(line, 30, f"processes on {node}")
            else:
                out = self._on(node, f"pgrep -f -- {shlex.quote(needle)}")
        except (DrillError, subprocess.TimeoutExpired):
            return []
        return [int(p) for p in out.split() if p.isdigit()]

    def address(self, node: str) -> str:
        return self.addresses.get(node, node)

    def verb(self, verb: str, **values: str) -> None:
        if verb not in self.verbs:
            raise DrillError(f"environment {self.name!r} declares no {verb!r} verb")
        command = self.verbs[verb].format(**values)
        _shell(command, 120, f"{verb}: {command}")

    def in_client(self, func: Callable[[], Any]) -> Any:
        if not self.client_netns:
            return func()
        from hakit.lab import infra

        return infra.in_netns(str(self.client_netns), func)


class TemplateRunner(cluster.Runner):
    """Runs cluster programs with an operator's command line: `{command}` in `template` is
    replaced by the program and its arguments (quoted as one word), `{node}` by the node."""

    def __init__(self, template: str, node: str) -> None:
        super().__init__(name=node)
        self.template = template

    def command(self, args: Sequence[str]) -> list[str]:
        line = self.template.format(node=self.name, command=shlex.quote(shlex.join(args)))
        return ["/bin/sh", "-c", line]

    @property
    def where(self) -> str:
        return self.name


def _shell(line: str, timeout: float, what: str) -> str:
    """Run an operator-declared command line; its output."""
    done = subprocess.run(  # noqa: S602 — an operator-declared command line
        line,
        shell=True,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise DrillError(f"{what}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def lab_environment(profile: str) -> LabEnvironment:
    """The lab, brought up (3 nodes, `profile`) if it is not running."""
    lab = Lab()
    try:
        lab.up(nodes=3, profile=profile)
    except LabError as error:
        raise DrillError(str(error)) from None
    return LabEnvironment(lab)
