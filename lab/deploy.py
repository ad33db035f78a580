"""playbooks/ run against a bare lab (`hakit lab up --bare`) from its controller
namespace: the inventory and topology for a set of nodes, ansible-playbook runs and what
they report. tests/ansible and bench/ansible drive deployments through it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import yaml

from hakit.lab.lab import Lab
from hakit.lab.remotes import is_remote
from hakit.ocf import cluster

REPO = Path(__file__).resolve().parents[1]
PLAYBOOKS = REPO / "playbooks"
#: The topology site.yml deploys onto a bare lab.
TOPOLOGY = Path(__file__).with_name("ansible-cluster.yaml")
VENV_BIN = Path(sys.executable).parent
TASK = re.compile(r"^TASK \[(.+?)\] \*+$", flags=re.MULTILINE)
#: The lab's fence device in TOPOLOGY (it fences remotes too).
FENCE_DEVICE = "lab-fence"
#: The clone that runs only on remotes when a deployment has some.
COMPUTE = {
    "name": "compute",
    "template": "hakit-service",
    "params": {"binary": "sleep", "arguments": "infinity"},
    "clone": {"meta": {"interleave": True}},
}


@dataclass
class Run:
    """One ansible-playbook run: its exit code and output."""

    returncode: int
    output: str
    seconds: float = 0.0

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        """PLAY RECAP: host → {ok, changed, failed, ...}."""
        recap = self.output.rpartition("PLAY RECAP")[2]
        return {
            host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
            for host, counts in re.findall(r"^(\S+)\s+:\s+(.*)$", recap, flags=re.MULTILINE)
        }

    def _tasks(self) -> list[tuple[str, str]]:
        blocks = TASK.split(self.output)
        return list(zip(blocks[1::2], blocks[2::2], strict=True))

    def changed_tasks(self) -> list[str]:
        """Names of the tasks that reported `changed` on some host."""
        return [name for name, body in self._tasks() if re.search(r"^changed:", body, re.M)]

    def task_output(self, name: str) -> str:
        return "".join(body for task, body in self._tasks() if task == name)

    def tail(self, size: int = 6000) -> str:
        return self.output[-size:]


class Deployment:
    """A bare lab, the controller's inventory and topology, and playbook runs."""

    def __init__(self, lab: Lab, workdir: Path, wheel: Path, wheelhouse: Path) -> None:
        self.lab, self.workdir = lab, workdir
        self.wheel, self.wheelhouse = wheel, wheelhouse
        self.topology = workdir / "topology.yaml"
        self.inventory = workdir / "inventory.yml"
        self.members: list[str] = []
        self.remotes: list[str] = []
        self.runs = 0  # each run's output is kept in workdir/run-NN-PLAYBOOK.log

    def write(
        self, members: list[str], leaving: tuple[str, ...] = (), remotes: tuple[str, ...] = ()
    ) -> None:
        """Inventory and topology for these nodes (the topology's order gives node ids);
        `leaving` nodes stay in the inventory only (remove_node.yml stops them). `remotes`:
        Pacemaker Remote nodes (the group hakit_remotes), each fenced by the lab's device,
        running the topology's remote-only clone `compute` (a leaving remote stays in
        that group)."""
        self.members, self.remotes = list(members), list(remotes)
        topology = yaml.safe_load(TOPOLOGY.read_text())
        topology["nodes"] = [{"name": node} for node in members]
        if remotes:
            nodes = [
                {"name": name, "address": self.lab.address(name), "fence": [FENCE_DEVICE]}
                for name in remotes
            ]
            section = {"reconnect_interval": "5s", "resources": [COMPUTE["name"]]}
            topology["remotes"] = {**section, "nodes": nodes}
            topology["resources"].append(COMPUTE)
        self.topology.write_text(yaml.safe_dump(topology, sort_keys=False))
        leaving_remotes = [node for node in leaving if is_remote(node)]
        stay = [*members, *(node for node in leaving if not is_remote(node))]
        hosts = {node: self.lab.ansible_host_vars(node) for node in stay}
        group_vars = {
            "hakit_topology_file": str(self.topology),
            "hakit_wheel": str(self.wheel),
            "hakit_pip_extra_args": f"--no-index --find-links {self.wheelhouse}",
            "hakit_service_manager": "hakit-lab",
            "hakit_controller_cli": str(VENV_BIN / "hakit"),
            "hakit_authkey_file": str(self.workdir / "secrets" / "authkey"),
        }
        cluster = {"hosts": hosts, "vars": group_vars}
        groups: dict[str, object] = {"hakit_cluster": cluster}
        if remotes or leaving_remotes:
            groups["hakit_remotes"] = {
                "hosts": {n: self.lab.ansible_host_vars(n) for n in [*remotes, *leaving_remotes]},
                # the lab's remotes share the host's packages, and pacemaker-remote
                # conflicts with its pacemaker: their remoted is the lab's (hakit.lab.remotes)
                "vars": {**group_vars, "hakit_remote_packages": ["resource-agents"]},
            }
        inventory = {"all": {"children": groups}}
        self.inventory.write_text(yaml.safe_dump(inventory, sort_keys=False))

    def playbook(self, name: str, *extra: str, timeout: float = 900) -> Run:
        argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory)]
        argv += [str(PLAYBOOKS / name), *extra]
        began = time.monotonic()
        done = self.lab.controller_run(argv, timeout=timeout, env=self.lab.controller_env())
        run = Run(done.returncode, done.stdout + done.stderr, time.monotonic() - began)
        self.runs += 1
        log = self.workdir / f"run-{self.runs:02d}-{Path(name).stem}.log"
        log.write_text(f"$ {' '.join(argv)}\n{run.output}")
        return run

    def cib(self, node: str = "node1") -> ET.Element:
        with self.lab.on(node):
            return ET.fromstring(cluster.cib_text())  # noqa: S314 — the lab's own CIB


def wheelhouse(wheel: Path, dest: Path, timeout: float = 600) -> Path:
    """The wheel's dependencies as wheels (from the package index or pip's cache): what
    the lab's nodes install from."""
    pip = [str(VENV_BIN / "pip"), "download", "-q", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, "--dest", str(dest), "--only-binary=:all:", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip download: {done.stderr.strip().splitlines()[-1:]}")
    return dest


def epoch(cib: ET.Element) -> tuple[str | None, str | None]:
    """(admin_epoch, epoch): changes with every configuration change."""
    return cib.get("admin_epoch"), cib.get("epoch")


def last_operations(cib: ET.Element) -> dict[tuple[str, str], tuple[str, str]]:
    """(node, resource) → (last non-recurring operation, its call id): a restart or a
    move changes it."""
    found = {}
    for state in cib.iter("node_state"):
        for op in state.iter("lrm_rsc_op"):
            op_id = op.get("id") or ""
            if op_id.endswith("_last_0"):
                key = (state.get("uname") or "", op_id.removesuffix("_last_0"))
                found[key] = (op.get("operation") or "", op.get("call-id") or "")
    return found


def online(lab: Lab, members: list[str], via: str = "node1") -> bool:
    """Every member online, seen from `via` with quorum."""
    status = lab.cluster_status(via)
    if status is None or not status.quorate:
        return False
    return set(members) <= {node.name for node in status.nodes if node.online}
