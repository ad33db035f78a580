"""Monitor-action cost of ocf:hakit:service against shell and Python anchors.

Every contender runs as Pacemaker runs it (a fresh process with OCF_* variables),
round-robin in one run so machine load hits all alike. Wall time, CPU time and peak
RSS come from wait4(); medians are reported, with the ratio to ocf:heartbeat:Dummy.

    python -m bench.monitor [--runs N] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

OCF = Path("/usr/lib/ocf/resource.d")
ANCHOR = "ocf:heartbeat:Dummy monitor"
BEGIN, END = "<!-- bench:monitor:begin -->", "<!-- bench:monitor:end -->"


@dataclass
class Contender:
    name: str
    argv: list[str]
    env: dict[str, str]
    expect: int = 0
    #: False: an unexpected exit code is counted in `failures` (and still timed)
    strict: bool = True
    failures: int = 0
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)

    def run_once(self) -> None:
        """Time one run (wall, CPU) with posix_spawn, the cheapest way to start it."""
        _, usage, wall = self._spawn(self.argv)
        self.wall.append(wall)
        self.cpu.append((usage.ru_utime + usage.ru_stime) * 1000)

    def measure_rss(self) -> None:
        """Peak RSS as GNU time reports it: Linux carries the peak of the pre-exec memory
        image into ru_maxrss, so our own 14 MiB would hide the agent's; time's fork does not."""
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *self.argv],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        self.rss.append(int(done.stderr.split()[-1]))

    def _spawn(self, argv: list[str]) -> tuple[int, os.struct_rusage, float]:  # type: ignore[name-defined]
        devnull = os.open(os.devnull, os.O_WRONLY)
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
        began = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, self.env, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        wall = (time.perf_counter() - began) * 1000
        os.close(devnull)
        code = os.waitstatus_to_exitcode(status)
        if code != self.expect:
            if self.strict:
                raise SystemExit(f"{self.name}: exit {code}, expected {self.expect}")
            self.failures += 1
        return code, usage, wall


def setup(workdir: Path) -> list[Contender]:
    """Start one daemon per agent and return the monitors to time."""
    base = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "OCF_ROOT": "/usr/lib/ocf",
        "OCF_RESKEY_CRM_meta_interval": "10000",
        "OCF_RESKEY_CRM_meta_timeout": "20000",
        "HA_LOGFACILITY": "none",
        "HA_LOGFILE": str(workdir / "agents.log"),
    }
    service = {
        **base,
        "OCF_RESOURCE_INSTANCE": "bench",
        "HAKIT_RUN_DIR": str(workdir),
        "OCF_RESKEY_binary": "/usr/bin/python3",
        "OCF_RESKEY_ready_port": "18999",
        "OCF_RESKEY_arguments": "-m http.server --bind 127.0.0.1 18999",
        "OCF_RESKEY_log_file": str(workdir / "daemon.log"),
    }
    dummy = {
        **base,
        "OCF_RESOURCE_INSTANCE": "bench",
        "OCF_RESKEY_state": str(workdir / "dummy.state"),
    }
    dummypy = {**dummy, "OCF_RESKEY_state": str(workdir / "dummypy.state")}
    hakit = str(OCF / "hakit" / "service")
    for argv, env in (
        ([hakit, "start"], service),
        ([str(OCF / "heartbeat" / "Dummy"), "start"], dummy),
        ([str(OCF / "heartbeat" / "dummypy"), "start"], dummypy),
    ):
        subprocess.run(argv, env=env, check=True, capture_output=True)
    return [
        Contender(ANCHOR, [str(OCF / "heartbeat" / "Dummy"), "monitor"], dummy),
        Contender(
            "shell equivalent (pid file + kill -0)",
            [str(Path(__file__).with_name("shell_service_monitor.sh"))],
            service,
        ),
        Contender("ocf:hakit:service monitor, depth 0", [hakit, "monitor"], service),
        Contender(
            "ocf:hakit:service monitor, depth 10 (port)",
            [hakit, "monitor"],
            {**service, "OCF_CHECK_LEVEL": "10"},
        ),
        Contender(
            "ocf:heartbeat:dummypy monitor (resource-agents ocf.py)",
            [str(OCF / "heartbeat" / "dummypy"), "monitor"],
            dummypy,
        ),
    ]


def teardown(workdir: Path, contenders: list[Contender]) -> None:
    env = contenders[2].env
    subprocess.run(
        [str(OCF / "hakit" / "service"), "stop"], env=env, check=False, capture_output=True
    )


def table(contenders: list[Contender], runs: int) -> str:
    anchor = statistics.median(contenders[0].wall)
    rows = [
        f"Monitor action, {runs} runs each, round-robin; medians. Machine: {os.cpu_count()} "
        f"cores, {platform.python_implementation()} {platform.python_version()} "
        "(/usr/bin/python3), "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        "| contender | wall ms | CPU ms | peak RSS MiB | wall ratio to Dummy |",
        "|---|---:|---:|---:|---:|",
    ]
    for c in contenders:
        wall = statistics.median(c.wall)
        rows.append(
            f"| {c.name} | {wall:.1f} | {statistics.median(c.cpu):.1f} | "
            f"{statistics.median(c.rss) / 1024:.1f} | {wall / anchor:.1f}x |"
        )
    hakit = statistics.median(contenders[2].wall)
    rows += [
        "",
        "Peak RSS: GNU time's %M over 5 runs (wall and CPU come from posix_spawn + wait4).",
    ]
    rows += [
        "",
        f"Target: ocf:hakit:service monitor < 40 ms wall — measured {hakit:.1f} ms "
        f"({'met' if hakit < 40 else 'NOT met'}).",
    ]
    return "\n".join(rows)


def write(
    path: Path,
    text: str,
    begin: str = BEGIN,
    end: str = END,
    title: str = "Agent monitor start-up",
) -> None:
    """Replace the block between `begin` and `end` (or add it under `title`)."""
    old = path.read_text() if path.exists() else "# Benchmarks\n\nWritten by `make bench`.\n"
    block = f"{begin}\n{text}\n{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + f"\n\n## {title}\n\n" + block + "\n"
    path.write_text(new)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--write", type=Path, help="update this markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hakit-bench-") as tmp:
        contenders = setup(Path(tmp))
        try:
            for contender in contenders:  # warm-up: page cache, .pyc
                contender.run_once()
                contender.wall.clear()
                contender.cpu.clear()
            for _ in range(args.runs):
                for contender in contenders:
                    contender.run_once()
            for _ in range(5):
                for contender in contenders:
                    contender.measure_rss()
        finally:
            teardown(Path(tmp), contenders)
    text = table(contenders, args.runs)
    print(text)
    if args.write:
        write(args.write, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
