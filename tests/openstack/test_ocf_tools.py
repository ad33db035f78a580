"""Every OpenStack agent as Pacemaker's tooling sees it: metadata valid against
metadata.rng, and ocf-tester's behavioural run against the real service (the four runs
go in parallel: each starts and stops its service several times)."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import HAKIT_AGENTS, run_installed
from tests.openstack.conftest import Cloud

AGENTS = ("openstack-service", "cinder-volume", "nova-scheduler", "nova-consoleauth")
METADATA_RNG = "/usr/share/resource-agents/metadata.rng"


@pytest.mark.parametrize("agent", AGENTS)
def test_metadata_validates(agent: str, installed_agents: Path) -> None:
    done = subprocess.run(
        [str(installed_agents / agent), "meta-data"], capture_output=True, check=True
    )
    schema = etree.RelaxNG(etree.parse(METADATA_RNG))
    document = etree.fromstring(done.stdout)
    assert schema.validate(document), schema.error_log
    stop = document.find("actions/action[@name='stop']")
    assert stop is not None
    if agent == "cinder-volume":
        assert float(stop.get("timeout", "0s").rstrip("s")) >= 60
    depths = {a.get("depth") for a in document.findall("actions/action[@name='monitor']")}
    assert depths == {None, "10", "20"}
    secret = document.find("parameters/parameter[@name='management_password']/content")
    assert secret is not None and secret.get("default") is None


def test_ocf_tester_passes_for_every_agent(cloud: Cloud, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    novnc = tmp_path / "novnc.conf"  # a second proxy next to any other: its own port
    novnc.write_text(
        cloud.nova_conf.read_text().replace("novncproxy_port = 16080", "novncproxy_port = 16081")
    )
    runs = {
        "openstack-service": [
            f"binary={cloud.bin('cinder-scheduler')}",
            f"config={cloud.cinder_conf}",
            "host=tester-sched",
        ],
        "cinder-volume": [
            f"binary={cloud.bin('cinder-volume')}",
            f"config={cloud.cinder_conf}",
            "host=tester-cv",
        ],
        "nova-scheduler": [
            f"binary={cloud.bin('nova-scheduler')}",
            f"config={cloud.nova_conf}",
            "host=tester-ns",
        ],
        "nova-consoleauth": [
            f"binary={cloud.bin('nova-novncproxy')}",
            f"config={novnc}",
            "port=16081",
        ],
    }

    def options(agent: str) -> list[str]:
        return [*runs[agent], f"log_file={tmp_path / agent}.log"]

    def run(agent: str) -> subprocess.CompletedProcess[str]:
        args = ["ocf-tester", "-n", f"tester-{agent}"]
        for option in options(agent):
            args += ["-o", option]
        return subprocess.run(
            [*args, str(HAKIT_AGENTS / agent)],
            capture_output=True,
            text=True,
            timeout=600,
            env=environment(agent),
            check=False,
        )

    def environment(agent: str) -> dict[str, str]:
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HAKIT_RUN_DIR": str(tmp_path / agent)}

    def stop(agent: str) -> None:
        """Whatever ocf-tester left running when one of its steps failed."""
        params = dict(option.split("=", 1) for option in options(agent))
        env = {f"OCF_RESKEY_{k}": v for k, v in params.items()}
        env |= {"OCF_RESOURCE_INSTANCE": f"tester-{agent}", **environment(agent)}
        run_installed(agent, "stop", env, timeout=180)

    try:
        with ThreadPoolExecutor(len(runs)) as pool:
            results = dict(zip(runs, pool.map(run, runs), strict=True))
    finally:
        for agent in runs:
            stop(agent)
    for agent, done in results.items():
        assert done.returncode == 0, (agent, done.stdout[-3000:], done.stderr[-3000:])
        assert f"{HAKIT_AGENTS / agent} passed all tests" in done.stdout
